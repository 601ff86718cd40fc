"""The store holds a study: a launch of thousands of runs is one write, a training beside it
never waits on the index, and concurrent read-modify-writes lose nothing."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import tiny_experiment, wait_for

from kdtui import launcher
from kdtui.storage import Index
from kdtui.store import Store, read_events


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every batch of changes this process writes to an index (one journal line each)."""
    seen: list[dict] = []
    commit = Index.commit

    def counted(self: Index, changes: dict) -> None:
        commit(self, changes)
        if any(changes.values()):
            seen.append(changes)

    monkeypatch.setattr(Index, "commit", counted)
    return seen


class LockWait:
    """From a thread, take and release the workspace lock again and again: the longest wait
    is what a training wanting to write its epoch would have waited (the old store's
    training died at 30 s)."""

    def __init__(self, ws: Path):
        self.path, self.longest, self.stop = ws / ".kdtui.lock", 0.0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with open(self.path, "a+") as fh:
            while not self.stop.is_set():
                t0 = time.monotonic()
                fcntl.flock(fh, fcntl.LOCK_EX)
                self.longest = max(self.longest, time.monotonic() - t0)
                fcntl.flock(fh, fcntl.LOCK_UN)
                time.sleep(0.001)


def test_a_training_ends_done_while_2000_runs_are_queued_beside_it(cleanup_processes, commits):
    """Queueing 2,000 runs rewrote the whole index once per run while holding the lock
    (~30 s): a training beside it could not write its epoch and died ("lock stayed locked
    for 30 s"). Now the launch is one write, the lock is never held long, and the
    training ends done."""
    from kdtui.spec import validate_spec

    ws = cleanup_processes
    store = Store(ws)
    (run_id,) = launcher.enqueue(store, validate_spec(tiny_experiment("beside", epochs=40)))
    log = open(ws / "engine.log", "wb")  # noqa: SIM115 (closed below)
    env = dict(os.environ, KDTUI_THREADS="1", CUDA_VISIBLE_DEVICES="")
    engine = subprocess.Popen(
        [sys.executable, "-m", "kdtui.engine", str(store.run_dir(run_id))],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    waits = LockWait(ws)
    try:
        wait_for(
            lambda: any(e["type"] == "epoch" for e in read_events(ws / run_id)),
            timeout=120,
            what="the first epoch",
        )
        many = validate_spec(tiny_experiment("many", seeds=list(range(2000))))
        commits[:] = []
        waits.thread.start()
        queued = launcher.enqueue(Store(ws), many)
        waits.stop.set()
        waits.thread.join()
        launch_commits = [len(c.get("runs", {})) for c in commits]
        assert engine.wait(timeout=300) == 0, (ws / "engine.log").read_text()[-2000:]
    finally:
        waits.stop.set()
        if engine.poll() is None:
            engine.kill()
        log.close()
    run = Store(ws).get(run_id)
    assert run["status"] == "done" and run["epoch"] == 40
    assert waits.longest < 5.0  # the old store: ~30 s, and the training died
    assert len(queued) == 2000 and launch_commits == [2000]  # one write
    runs = Store(ws).runs()
    assert sum(r["status"] == "queued" for r in runs) == 2000


def test_stop_all_of_2000_queued_runs_is_one_write(tmp_path, commits):
    from kdtui.spec import validate_spec

    store = Store(tmp_path / "ws")
    ids = launcher.enqueue(store, validate_spec(tiny_experiment("many", seeds=list(range(2000)))))
    commits[:] = []
    assert sorted(launcher.stop_runs(store, ids)) == sorted(ids)
    assert [len(c["runs"]) for c in commits] == [2000]
    runs = Store(store.root).runs()
    assert {r["status"] for r in runs} == {"cancelled"}
    assert all(r.get("cancel_requested") for r in runs)
    assert read_events(store.run_dir(ids[7]))[-1]["status"] == "cancelled"


def test_16_concurrent_records_without_a_seed_keep_16_values(tmp_path):
    """Each `record` chose the next free seed outside the lock: of 8 concurrent calls, 3 to
    10 values survived although every call said "recorded"."""
    ws = tmp_path / "ws"
    Store(ws).add_todo("make the workspace")  # so that no call creates it
    env = dict(os.environ, KDTUI_WORKSPACE=str(ws), NO_COLOR="1")
    values = [50.0 + i for i in range(16)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kdtui", "record", "hand-made", f"{v:g}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for v in values
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 16, outs
    runs = [r for r in Store(ws).runs() if r["name"] == "hand-made"]
    assert sorted(r["best_acc"] for r in runs) == values
    assert sorted(r["seed"] for r in runs) == list(range(16))


def test_a_reader_parses_only_what_was_appended(tmp_path):
    """A reader parses kdtui.json once per process; later reads apply the journal lines
    appended since (the app's poll, the runner's tick: O(change), not O(runs))."""
    store = Store(tmp_path / "ws")
    store.add_todo("x")
    view = store._index.read()
    offset = view.offset
    Store(store.root).add_todo("y")  # another process's write: one more journal line
    assert [t["text"] for t in store.todos()] == ["x", "y"]
    assert store._index.read() is view and view.offset > offset
