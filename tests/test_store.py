"""The run store: concurrent writers lose nothing, torn files are survived, ids never collide."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from kdtui.executors import reconcile
from kdtui.needs import resolve_need
from kdtui.store import Store, append_event, fold_event, read_events


def _doc(run_id: str, **over) -> dict:
    base = {
        "run_id": run_id,
        "name": "g",
        "group_key": "k",
        "seed": 0,
        "status": "queued",
        "created": time.time(),
        "epochs": 3,
        "epoch": 0,
        "label": "",
        "loss": "",
        "dataset": "x",
        "needs": [],
        "source": "kdtui",
    }
    base.update(over)
    return base


def _spec(run_id: str) -> dict:
    return {
        "run_id": run_id,
        "seed": 0,
        "group_key": "k",
        "created": time.time(),
        "label": "",
        "loss_label": "",
        "needs": [],
        "experiment": {"name": "g", "epochs": 3, "data": {"dataset": "x"}},
    }


def _writer(root: str, wid: int, rounds: int, done_q) -> None:
    store = Store(root)
    ids = [f"w{wid}-r{i}" for i in range(rounds)]
    for run_id in ids:
        store.add_runs([_doc(run_id)], {run_id: _spec(run_id)})
        store.update(run_id, {"epoch": 1})
        store.record_event(run_id, {"type": "epoch", "epoch": 1, "acc": 50.0 + wid})
        done_q.put(run_id)  # reported only once every write for this id has returned


def _reader(root: str, stop) -> None:
    store = Store(root)
    while not stop.is_set():
        store.runs()  # raises if it ever sees a half-written index


@pytest.mark.parametrize("writers", [2, 8])
def test_concurrent_writers_lose_nothing_even_when_one_is_killed(tmp_path, writers):
    root, rounds = str(tmp_path / "ws"), 12
    ctx = mp.get_context("spawn")
    done_q, stop = ctx.Queue(), ctx.Event()
    reader = ctx.Process(target=_reader, args=(root, stop))
    procs = [ctx.Process(target=_writer, args=(root, w, rounds, done_q)) for w in range(writers)]
    reader.start()
    for p in procs:
        p.start()
    victim = procs[0]
    if writers > 2:  # kill one writer mid-way, possibly while it holds the lock
        deadline = time.time() + 60
        while not Path(root, "w0-r3").exists() and time.time() < deadline:
            time.sleep(0.01)
        os.kill(victim.pid, signal.SIGKILL)
    for p in procs:
        p.join(120)
    stop.set()
    reader.join(30)
    assert reader.exitcode == 0
    completed = []
    while not done_q.empty():
        completed.append(done_q.get())
    runs = {r["run_id"]: r for r in Store(root).runs()}
    assert len(runs) == len(Store(root)._docs("runs"))  # no duplicate documents
    for run_id in completed:
        assert runs[run_id]["epoch"] == 1 and runs[run_id]["best_acc"] is not None
    survivors = [p for p in procs if p is not victim or writers == 2]
    assert all(p.exitcode == 0 for p in survivors)
    expected = (writers - (1 if writers > 2 else 0)) * rounds
    assert len([r for r in completed if not r.startswith("w0-") or writers == 2]) == expected


def test_torn_event_line_is_skipped_and_next_append_starts_fresh(tmp_path):
    append_event(tmp_path, {"type": "epoch", "epoch": 1, "acc": 10.0})
    with open(tmp_path / "events.jsonl", "ab") as fh:
        fh.write(b'{"type": "epoch", "ep')  # a kill mid-write
    append_event(tmp_path, {"type": "epoch", "epoch": 2, "acc": 20.0})
    assert [e["epoch"] for e in read_events(tmp_path)] == [1, 2]


def test_corrupt_index_is_moved_aside_and_rebuilt(tmp_path):
    store = Store(tmp_path)
    store.add_runs([_doc("a"), _doc("b")], {"a": _spec("a"), "b": _spec("b")})
    store.record_event("a", {"type": "start", "pid": 1, "host": "elsewhere"})
    store.record_event("a", {"type": "epoch", "epoch": 1, "acc": 70.0})
    store.record_event("a", {"type": "end", "status": "done", "best_acc": 70.0, "last_acc": 70.0})
    store.add_todo("keep me")
    store.update_todo(store.add_todo("and me")["id"], done=True)
    store.delete_todo(store.add_todo("not me")["id"])
    raw = store.index_path.read_bytes()
    store.index_path.write_bytes(raw[: len(raw) // 2])
    fresh = Store(tmp_path)
    runs = {r["run_id"]: r for r in fresh.runs()}
    assert set(runs) == {"a", "b"}
    assert runs["a"]["status"] == "done" and runs["a"]["best_acc"] == 70.0
    assert runs["b"]["status"] == "queued"
    assert "rebuilt 2 runs" in fresh.notices[0]
    assert list(tmp_path.glob("kdtui.json.corrupt-*"))
    # todos have no folders to be rebuilt from: they come back from their copy
    assert [(t["text"], t["done"]) for t in fresh.todos()] == [("keep me", False), ("and me", True)]
    assert "2 todo(s) from todos.json" in fresh.notices[0]


def test_conditional_update(tmp_path):
    store = Store(tmp_path)
    store.add_runs([_doc("a")], {"a": _spec("a")})
    assert store.update("a", {"status": "running"}, if_status={"queued"})
    assert store.update("a", {"status": "running"}, if_status={"queued"}) is None


def test_reconcile_uses_pid_and_start_time(tmp_path):
    store = Store(tmp_path)
    store.add_runs(
        [_doc("alive"), _doc("reused"), _doc("gone")],
        {k: _spec(k) for k in ("alive", "reused", "gone")},
    )
    me = os.getpid()
    from kdtui import procs

    start, host = procs.start_time(me), __import__("socket").gethostname()
    store.update(
        "alive",
        {
            "status": "running",
            "pid": me,
            "pid_start": start,
            "host": host,
            # stale (a suspended VM, a stalled disk), but its process lives: not crashed,
            # or a resume would set a second engine on the same folder
            "heartbeat": time.time() - 10_000,
        },
    )
    # our own pid, but recorded with another start time: the pid was reused
    store.update(
        "reused",
        {
            "status": "running",
            "pid": me,
            "pid_start": start - 1000,
            "host": host,
            "heartbeat": time.time(),
        },
    )
    store.update(
        "gone",
        {
            "status": "running",
            "pid": 2**22 + 7,
            "pid_start": 1.0,
            "host": host,
            "heartbeat": time.time(),
        },
    )
    changed = reconcile(store)
    status = {r["run_id"]: r["status"] for r in store.runs()}
    assert status == {"alive": "running", "reused": "crashed", "gone": "crashed"}
    assert len(changed) == 2
    assert read_events(tmp_path / "gone")[-1]["status"] == "crashed"


def test_other_hosts_are_judged_by_heartbeat_only(tmp_path, monkeypatch):
    store = Store(tmp_path)
    store.add_runs([_doc("far"), _doc("stale")], {k: _spec(k) for k in ("far", "stale")})
    store.update(
        "far",
        {"status": "running", "pid": 2**22 + 7, "host": "gpu-node-9", "heartbeat": time.time()},
    )
    store.update(
        "stale",
        {
            "status": "running",
            "pid": 2**22 + 7,
            "host": "gpu-node-9",
            "heartbeat": time.time() - 500,
        },
    )
    monkeypatch.setenv("KDTUI_HEARTBEAT_STALE_S", "60")
    reconcile(store)
    status = {r["run_id"]: r["status"] for r in store.runs()}
    assert status == {"far": "running", "stale": "crashed"}


def test_fold_event_tracks_best_and_last():
    s = {"status": "queued"}
    for e in (
        {"type": "start", "pid": 3},
        {"type": "epoch", "epoch": 1, "acc": 60.0},
        {"type": "epoch", "epoch": 2, "acc": 55.0},
    ):
        fold_event(s, e)
    assert (s["status"], s["best_acc"], s["best_epoch"], s["last_acc"]) == (
        "running",
        60.0,
        1,
        55.0,
    )
    fold_event(s, {"type": "error", "message": "boom"})
    assert s["status"] == "failed" and s["error"] == "boom"


def test_resolve_need():
    runs = [
        _doc("t0", group_key="T", seed=0, status="done", best_acc=80, ended=1),
        _doc("t1", group_key="T", seed=1, status="running"),
        _doc("t2", group_key="T", seed=2, status="failed", ended=2),
    ]
    assert resolve_need({"group_key": "T", "seed": 0, "name": "t"}, runs) == ("ready", "t0")
    assert resolve_need({"group_key": "T", "seed": 1, "name": "t"}, runs)[0] == "wait"
    state, why = resolve_need({"group_key": "T", "seed": 2, "name": "t"}, runs)
    assert state == "failed" and "failed" in why
    assert resolve_need({"group_key": "T", "seed": None, "name": "t"}, runs)[0] == "wait"
    runs[1]["status"] = "done"
    runs[1]["best_acc"] = 90
    assert resolve_need({"group_key": "T", "seed": None, "name": "t"}, runs) == ("ready", "t1")


def test_todos_roundtrip(tmp_path):
    store = Store(tmp_path)
    a = store.add_todo("WRN28-3 GAF teacher", group="k", target=3)
    b = store.add_todo("write up")
    assert [t["text"] for t in store.todos()] == ["WRN28-3 GAF teacher", "write up"]
    store.update_todo(a["id"], done=True)
    assert store.todos()[0]["done"] is True
    assert store.delete_todo(b["id"]) and len(store.todos()) == 1
    json.loads(store.index_path.read_text())  # still one valid JSON document
