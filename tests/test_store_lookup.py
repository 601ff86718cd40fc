"""Teachers named from the store: by experiment name, or by group key when a name is shared."""

from __future__ import annotations

import pytest
from conftest import tiny_experiment

from kdtui import launcher
from kdtui.executors import local
from kdtui.spec import SpecError, validate_spec
from kdtui.store import Store


def _done_group(store: Store, **over) -> str:
    (run_id,) = launcher.enqueue(store, validate_spec(tiny_experiment("t", seeds=[0], **over)))
    store.record_event(run_id, {"type": "end", "status": "done", "best_acc": 50.0})
    return store.get(run_id)["group_key"]


def test_a_name_two_groups_share_is_refused_and_a_group_key_picks_one(tmp_path) -> None:
    store = Store(tmp_path / "ws")
    first = _done_group(store)
    lookup = launcher.store_lookup(store)
    student = tiny_experiment("s", seeds=[0], teachers=[{"experiment": "t"}], loss={"kd": {}})
    assert validate_spec(student, store_lookup=lookup).store_refs["t"].group_key == first

    second = _done_group(store, epochs=3)  # the teacher changed and was run again as "t"
    with pytest.raises(SpecError) as info:
        validate_spec(student, store_lookup=launcher.store_lookup(store))
    (problem,) = info.value.problems
    assert problem.path == "teachers[0].experiment"
    assert "'t' names 2 groups" in problem.message and repr(second) in problem.message

    student["teachers"][0]["experiment"] = first
    loaded = validate_spec(student, store_lookup=launcher.store_lookup(store))
    (run,) = launcher.plan(loaded)
    assert run["needs"][0]["group_key"] == first


def test_a_students_runs_keep_their_teacher_when_its_name_moves_on(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(local, "ensure_runner", lambda store: None)  # no processes
    store = Store(tmp_path / "ws")
    first = _done_group(store)
    teachers = [{"experiment": "t", "pick": "best"}]
    student = tiny_experiment("s", seeds=[0], teachers=teachers, loss={"kd": {}})
    (run_id,) = launcher.enqueue(
        store, validate_spec(student, store_lookup=launcher.store_lookup(store))
    )
    frozen = store.read_spec(run_id)
    assert launcher.run_experiment(store, frozen)["teachers"][0]["experiment"] == "t"
    _done_group(store, epochs=3)  # "t" now names two groups
    assert launcher.run_experiment(store, frozen)["teachers"][0]["experiment"] == first
    (more,) = launcher.more_seeds(store, run_id, [1])
    assert store.get(more)["group_key"] == store.get(run_id)["group_key"]
    assert store.read_spec(more)["needs"][0]["group_key"] == first


def test_a_group_key_may_be_shortened_as_tables_show_it(tmp_path) -> None:
    store = Store(tmp_path / "ws")
    key = _done_group(store)
    lookup = launcher.store_lookup(store)
    assert lookup(key[:6]).group_key == key
    assert lookup(key[:5]) is None  # too short to be taken for a key


def test_a_misspelt_store_teacher_gets_the_close_names(tmp_path) -> None:
    store = Store(tmp_path / "ws")
    _done_group(store)  # named "t"
    lookup = launcher.store_lookup(store)
    with pytest.raises(LookupError, match=r"'tt' in this file or the store \(close: t\)"):
        lookup("tt")
    assert lookup("something-else") is None
