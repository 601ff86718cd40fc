"""Honest model selection: with ``data.val`` the best epoch, best.pt, a teacher's ``pick:
"best"`` and the "best" column are chosen on a validation split; without it, results say
that best was chosen on the test set."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import run_cli, tiny_experiment

from kdtui.engine import validation
from kdtui.engine.data import DataError, load_npz, make_synthetic_har
from kdtui.engine.trainer import Engine, load_checkpoint
from kdtui.launcher import enqueue
from kdtui.needs import resolve_need
from kdtui.results import group_rows
from kdtui.spec import SpecError, group_key, validate_spec
from kdtui.store import Store, fold_event, read_events


def train(ws: Path, experiment: dict[str, Any]) -> tuple[Store, str, str]:
    store = Store(ws)
    (run_id,) = enqueue(store, validate_spec(experiment, base_dir=ws.parent))
    logs = io.StringIO()
    with contextlib.redirect_stdout(logs):
        assert Engine(store.run_dir(run_id)).main() == 0, read_events(store.run_dir(run_id))
    return store, run_id, logs.getvalue()


def two_class_npz(path: Path, *, flipped_val: bool) -> Path:
    """Two classes of synthetic HAR windows; X_val holds the test windows again, with every
    label flipped when ``flipped_val``: then validation accuracy = 100 − test accuracy, so
    validation and test disagree about the best epoch whenever the test accuracy moves."""
    a = make_synthetic_har(n_train=48, n_test=32, length=64, n_classes=2, seed=3)
    y_val = 1 - a.y_test if flipped_val else a.y_test
    np.savez(path, X_train=a.X_train, y_train=a.y_train, X_test=a.X_test, y_test=a.y_test,
             X_val=a.X_test, y_val=y_val)  # fmt: skip
    return path


def test_best_is_chosen_on_validation_where_it_disagrees_with_test(tmp_path):
    npz = two_class_npz(tmp_path / "flip.npz", flipped_val=True)
    exp = tiny_experiment("v", epochs=5, optim={"lr": 0.1})
    exp["data"] = {"dataset": "npz", "path": str(npz), "val": {"from_file": True}}
    store, run_id, logs = train(tmp_path / "ws", exp)
    epochs = [e for e in read_events(store.run_dir(run_id)) if e["type"] == "epoch"]
    test = [e["acc"] for e in epochs]
    assert [e["val_acc"] for e in epochs] == pytest.approx([100 - a for a in test], abs=1e-4)
    assert len(set(test)) > 1, "the test accuracy never moved: the case proves nothing"
    chosen = min(range(len(test)), key=lambda i: (test[i], i))  # best val = worst test
    summary = store.get(run_id)
    assert summary["best_selected_on"] == "val"
    assert summary["best_epoch"] == epochs[chosen]["epoch"]
    assert summary["best_acc"] == test[chosen] < max(test)  # the test acc at that epoch
    assert summary["best_val_acc"] == epochs[chosen]["val_acc"]
    best_pt = load_checkpoint(store.run_dir(run_id) / "ckpt" / "best.pt")
    assert best_pt["epoch"] == epochs[chosen]["epoch"] and best_pt["acc"] == test[chosen]
    with np.load(store.run_dir(run_id) / "analysis" / "best.npz") as kept:
        assert json.loads(str(kept["meta"]))["epoch"] == epochs[chosen]["epoch"]
    assert "validation: 32 windows choose the best epoch" in logs
    shown = run_cli("analyze", run_id, workspace=store.root, timeout=300)
    assert shown.returncode == 0, shown.stderr
    picked = (
        f"(best epoch {epochs[chosen]['epoch']}, picked on validation): acc {test[chosen]:.2f}%"
    )
    assert picked in shown.stdout
    figures = store.run_dir(run_id) / "analysis" / "figures"
    assert json.loads((figures / "best.json").read_text())["best_selected_on"] == "val"
    # the index rebuilt from the events agrees with the engine's own end event
    rebuilt: dict[str, Any] = {}
    for event in read_events(store.run_dir(run_id)):
        fold_event(rebuilt, event)
    keys = ("best_acc", "best_epoch", "best_val_acc", "best_selected_on", "last_acc")
    assert {k: rebuilt[k] for k in keys} == {k: summary[k] for k in keys}


def test_without_validation_best_is_said_to_be_chosen_on_test(tmp_path):
    store, run_id, _ = train(tmp_path / "ws", tiny_experiment("plain"))
    summary = store.get(run_id)
    assert summary["best_selected_on"] == "test" and "best_val_acc" not in summary
    (row,) = group_rows(store.runs())
    assert row.to_json()["best_selected_on"] == "test"
    table = run_cli("table", workspace=tmp_path / "ws")
    assert "best epoch chosen on the test set (no validation split: data.val)" in table.stdout
    doc = json.loads(run_cli("table", "--format", "json", workspace=tmp_path / "ws").stdout)
    assert doc[0]["best_selected_on"] == "test"


def test_results_say_where_each_group_chose_its_best():
    def run(name: str, seed: int, on: str | None, source: str = "kdtui") -> dict[str, Any]:
        doc = {"run_id": f"{name}{seed}", "group_key": name, "name": name, "seed": seed,
               "status": "done", "best_acc": 80.0, "last_acc": 79.0, "source": source}  # fmt: skip
        return doc | ({"best_selected_on": on} if on else {})

    rows = {r.name: r for r in group_rows([
        run("val", 0, "val"), run("val", 1, "val"),
        run("mixed", 0, "val"), run("mixed", 1, "test"),
        run("old", 0, None),  # trained before the field existed: chosen on test
        run("notes", 0, None, source="notes:lab.md:3"),
    ])}  # fmt: skip
    assert {n: r.best_selected_on for n, r in rows.items()} == {
        "val": "val",
        "mixed": "test",
        "old": "test",
        "notes": None,
    }


def test_a_teacher_picked_as_best_is_best_on_validation():
    need = {"name": "t", "group_key": "k", "pick": "best"}
    runs = [
        {"run_id": "a", "group_key": "k", "status": "done", "best_acc": 90.0, "best_val_acc": 70.0},
        {"run_id": "b", "group_key": "k", "status": "done", "best_acc": 80.0, "best_val_acc": 75.0},
    ]
    assert resolve_need(need, runs) == ("ready", "b")
    for r in runs:  # no validation split: the test accuracy, as before
        del r["best_val_acc"]
    assert resolve_need(need, runs) == ("ready", "a")


def test_the_split_is_stratified_fixed_by_its_own_seed_and_the_same_for_every_run_seed():
    y = np.arange(60) % 3
    rows = validation.val_rows(y, 0.25, seed=0)
    assert len(rows) == 15 and np.bincount(y[rows]).tolist() == [5, 5, 5]
    torch.manual_seed(9)
    np.random.seed(9)  # the run seed's generators do not move it
    assert np.array_equal(validation.val_rows(y, 0.25, seed=0), rows)
    assert not np.array_equal(validation.val_rows(y, 0.25, seed=1), rows)
    with pytest.raises(DataError, match="cannot hold every class"):
        validation.val_rows(np.array([0, 0, 0, 1]), 0.5, seed=0)


def test_by_subject_holds_out_whole_subjects(tmp_path):
    parts = [make_synthetic_har(n_train=21, n_test=7, length=32, n_subjects=1, seed=s)
             for s in range(6)]  # fmt: skip
    subjects = np.repeat(np.arange(6), 21)
    path = tmp_path / "people.npz"
    np.savez(path, **{k: np.concatenate([getattr(p, k) for p in parts])
                      for k in ("X_train", "y_train", "X_test", "y_test")},
             subjects_train=subjects)  # fmt: skip
    data = {"dataset": "npz", "path": str(path), "val": {"fraction": 0.34, "seed": 0,
                                                          "by_subject": True}}  # fmt: skip
    y = load_npz(path).y_train
    rows = validation.split_rows(data, y)
    held = set(subjects[rows])
    assert held and not held & set(np.delete(subjects, rows))  # nobody on both sides
    assert len(rows) == 21 * len(held) and len(held) == 2
    np.savez(tmp_path / "nobody.npz", **{k: np.load(path)[k] for k in ("X_train", "y_train",
                                                                       "X_test", "y_test")})  # fmt: skip
    with pytest.raises(DataError, match="needs an array subjects_train"):
        validation.split_rows({**data, "path": str(tmp_path / "nobody.npz")}, y)


def test_the_files_own_val_windows_are_normalised_like_the_training_windows(tmp_path):
    a = make_synthetic_har(n_train=30, n_test=9, length=32, n_classes=3)
    raw = a.X_train * 3.0 + 1.5  # not normalised in the file
    path = tmp_path / "own.npz"
    np.savez(path, X_train=raw, y_train=a.y_train + 4, X_test=raw[:9], y_test=a.y_train[:9] + 4,
             X_val=raw[5:12], y_val=a.y_train[5:12] + 4)  # fmt: skip
    X_val, y_val = validation.from_file({"path": str(path), "channels": [2, 0]})
    loaded = load_npz(path, [2, 0])
    np.testing.assert_array_equal(X_val, loaded.X_train[5:12])
    np.testing.assert_array_equal(y_val, loaded.y_train[5:12])


def test_the_spec_takes_val_and_keeps_the_group_keys_of_specs_without_it(tmp_path):
    plain = tiny_experiment("k")
    with_val = tiny_experiment("k", data={**plain["data"], "val": {"fraction": 0.25}})
    keys = [group_key(validate_spec(e).experiments[0]) for e in (plain, with_val)]
    assert keys[0] != keys[1]
    explicit = tiny_experiment("k", data={**plain["data"], "val": None})
    assert group_key(validate_spec(explicit).experiments[0]) == keys[0]
    for bad, where in (
        ({"fraction": 1.5}, "data.val.fraction"),
        ({"by_subject": True}, "data.val.by_subject"),  # only an npz has subjects
    ):
        with pytest.raises(SpecError, match=where.replace(".", r"\.")):
            validate_spec(tiny_experiment("k", data={**plain["data"], "val": bad}))


def test_the_teacher_cache_is_keyed_by_the_rows_that_train():
    data = {"dataset": "synthetic-har"}
    assert validation.train_key("abc", data) == "abc"
    assert validation.train_key("abc", {**data, "val": {"fraction": 0.2, "seed": 0}}) != "abc"
    own = {**data, "val": {"fraction": 0.2, "seed": 0, "from_file": True}}
    assert validation.train_key("abc", own) == "abc"  # every training row still trains
