"""A lost or damaged index comes back from the run folders and the TODO copy — every run,
every TODO — and never costs a traceback or the TODO list."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import run_cli

from kdtui.storage import INDEX, JOURNAL
from kdtui.store import Store


def _study(ws: Path) -> Store:
    """Two runs (one done, one queued) and three TODOs (one done), written as kdtui does.
    The queued run counts as queued a moment ago however long a test takes, so that no
    command here starts a queue runner for it."""
    store = Store(ws)
    specs = {
        rid: {"run_id": rid, "seed": seed, "group_key": "k", "created": time.time() + 1e6 * seed,
              "label": "", "loss_label": "", "needs": [],
              "experiment": {"name": "g", "epochs": 3, "data": {"dataset": "x"}}}
        for rid, seed in (("a-s0-aaaaaa", 0), ("b-s1-bbbbbb", 1))
    }  # fmt: skip
    from kdtui.store import initial_summary

    store.add_runs([initial_summary(s) for s in specs.values()], specs)
    store.record_event("a-s0-aaaaaa", {"type": "start", "pid": 1, "host": "elsewhere"})
    epoch = {"type": "epoch", "epoch": 1, "acc": 70.0, "train_loss": 0.5, "nll": 0.9,
             "ece": 0.05, "lr": 0.05, "seconds": 1.0}  # fmt: skip
    store.record_event("a-s0-aaaaaa", epoch)
    store.record_event("a-s0-aaaaaa", {"type": "end", "status": "done", "best_acc": 70.0})
    store.add_todo("keep me")
    store.update_todo(store.add_todo("and me")["id"], done=True)
    store.add_todo("me too", group="k", target=3)
    return store


def _state(ws: Path) -> tuple[dict, list]:
    store = Store(ws)
    runs = {r["run_id"]: (r["status"], r.get("best_acc")) for r in store.runs()}
    return runs, [(t["text"], t["done"]) for t in store.todos()]


EXPECTED = (
    {"a-s0-aaaaaa": ("done", 70.0), "b-s1-bbbbbb": ("queued", None)},
    [("keep me", False), ("and me", True), ("me too", False)],
)


def test_a_deleted_index_comes_back_with_every_run_and_todo(tmp_path):
    """The index deleted: `ls` said "no runs yet", and the next `todo add` wrote todos.json
    from an empty table — every TODO gone."""
    ws = tmp_path / "ws"
    _study(ws)
    (ws / INDEX).unlink()
    added = run_cli("todo", "add", "after the loss", workspace=ws)
    assert added.returncode == 0, added.stderr
    assert "index was missing; rebuilt 2 runs" in added.stderr
    runs, todos = _state(ws)
    assert runs == EXPECTED[0] and todos == [*EXPECTED[1], ("after the loss", False)]
    listed = json.loads(run_cli("ls", "--format", "json", workspace=ws).stdout)
    assert {r["run_id"]: r["status"] for r in listed} == {k: v[0] for k, v in EXPECTED[0].items()}


def test_an_index_and_journal_both_deleted_come_back_too(tmp_path):
    ws = tmp_path / "ws"
    _study(ws)
    (ws / INDEX).unlink()
    (ws / JOURNAL).unlink()
    result = run_cli("ls", workspace=ws)
    assert result.returncode == 0 and "a-s0-aaaaaa" in result.stdout
    assert _state(ws) == EXPECTED


@pytest.mark.parametrize(
    "body",
    [
        {"runs": [1, 2], "todos": {}},
        {"runs": {"a-s0-aaaaaa": 5}},
        {"runs": {"a-s0-aaaaaa": {"run_id": "someone-else", "status": "done"}}},
        {"runs": {}, "todos": {"t": "a todo that is a string"}},
        [],
        "runs",
    ],
    ids=["runs-a-list", "run-a-number", "run-id-mismatch", "todo-a-string", "a-list", "a-string"],
)
def test_an_index_of_the_wrong_shape_is_moved_aside_and_rebuilt(tmp_path, body):
    """Valid JSON of the wrong shape gave a traceback in `ls` and `doctor`."""
    ws = tmp_path / "ws"
    _study(ws)
    (ws / INDEX).write_text(json.dumps(body))
    listed = run_cli("ls", "--format", "json", workspace=ws)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert "rebuilt 2 runs" in listed.stderr and "3 todo(s) from todos.json" in listed.stderr
    assert len(json.loads(listed.stdout)) == 2
    assert list(ws.glob(f"{INDEX}.corrupt-*"))
    assert _state(ws) == EXPECTED
    doctor = run_cli("doctor", workspace=ws)
    assert doctor.returncode == 0 and "Traceback" not in doctor.stderr
    assert _state(ws) == EXPECTED


def test_the_todo_list_comes_from_the_damaged_index_when_its_copy_is_gone(tmp_path):
    ws = tmp_path / "ws"
    _study(ws)
    (ws / "todos.json").unlink()
    index = json.loads((ws / INDEX).read_bytes())
    todos = {t["id"]: t for t in Store(ws).todos()}
    index.update(runs=[1, 2], todos=todos)  # the runs table damaged, the TODOs readable
    (ws / INDEX).write_text(json.dumps(index))
    assert _state(ws) == EXPECTED


def test_an_index_that_lost_its_todos_gets_them_back_from_the_copy(tmp_path):
    ws = tmp_path / "ws"
    _study(ws)
    runs = {r["run_id"]: r for r in Store(ws).runs()}
    (ws / INDEX).write_text(json.dumps({"runs": runs, "todos": {}}))
    (ws / JOURNAL).unlink()
    assert _state(ws) == EXPECTED  # shown from the copy
    Store(ws).add_todo("one more")  # and written back with the next change
    index_only = json.loads((ws / INDEX).read_bytes()).get("todos", {})
    journal = [json.loads(line) for line in (ws / JOURNAL).read_bytes().splitlines()[1:]]
    texts = {t["text"] for line in journal for t in line.get("todos", {}).values() if t}
    assert not index_only and texts == {"keep me", "and me", "me too", "one more"}


def test_doctor_leaves_out_a_folder_whose_spec_names_another_run(tmp_path):
    """A planted folder whose spec.json carries an odd run id was indexed by doctor, then
    crashed the queue runner at every start."""
    ws = tmp_path / "ws"
    _study(ws)
    planted = ws / "planted"
    planted.mkdir()
    spec = json.loads((ws / "b-s1-bbbbbb" / "spec.json").read_text())
    (planted / "spec.json").write_text(json.dumps({**spec, "run_id": "../../etc"}))
    (ws / "copied").mkdir()
    (ws / "copied" / "spec.json").write_text(json.dumps(spec))  # the folder renamed by hand
    doctor = run_cli("doctor", workspace=ws)
    said = " ".join(doctor.stdout.split())  # as one line, however the terminal wraps it
    assert doctor.returncode == 0 and "left out 2 bad folder(s)" in said
    assert "planted (spec.json names run '../../etc')" in said
    assert _state(ws) == EXPECTED
