"""The queue runner's scheduling pass and its faults, without starting engines."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from typing import Any

import pytest
from conftest import tiny_experiment

from kdtui import launcher, procs, runner
from kdtui.executors import local, reconcile
from kdtui.executors.local import write_runner_config
from kdtui.spec import validate_spec
from kdtui.store import Store, StoreError, read_events


def test_a_restarted_runner_counts_the_engines_it_did_not_start(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # CPU slots on any machine
    store = Store(tmp_path / "ws")
    first, second = launcher.enqueue(store, validate_spec(tiny_experiment("r", seeds=[0, 1])))
    # `first` was started by a runner that was killed since; its engine (here: this very
    # process) trains on
    me = os.getpid()
    store.update(first, {"status": "running", "pid": me, "pid_start": procs.start_time(me),
                         "host": socket.gethostname(), "slot": "cpu", "device": "cpu"})  # fmt: skip
    write_runner_config(store, jobs=1)
    pass_ = runner.Runner(store)
    spawned: list[str] = []
    monkeypatch.setattr(pass_, "spawn", lambda run, slot, cpu_slots: spawned.append(run["run_id"]))
    assert pass_.tick() and spawned == []  # its one slot is taken: --jobs 1 holds
    write_runner_config(store, jobs=2)
    pass_.tick()
    assert spawned == [second]


# ---------------------------------------------------------------------- faults


def _engine_before_its_handler() -> subprocess.Popen:
    """A stand-in for an engine in its first seconds: its own session, and SIGTERM's
    default action (it dies of it) since no handler is installed yet."""
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def _running(store: Store, run_id: str, proc: subprocess.Popen) -> None:
    fields = {"pid": proc.pid, "pid_start": procs.start_time(proc.pid), "host": socket.gethostname()}  # fmt: skip
    store.update(run_id, {"status": "running", "slot": "cpu", **fields})


@pytest.fixture
def one_queued(tmp_path, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, str]:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(local, "ensure_runner", lambda store: False)
    store = Store(tmp_path / "ws")
    (run_id,) = launcher.enqueue(store, validate_spec(tiny_experiment("r")))
    return store, run_id


def test_stop_before_the_engine_handles_sigterm_is_cancelled_not_crashed(one_queued) -> None:
    store, run_id = one_queued
    proc = _engine_before_its_handler()
    _running(store, run_id, proc)
    assert launcher.stop_runs(store, [run_id]) == [run_id]
    assert proc.wait(10) == -signal.SIGTERM  # killed: no end event of its own
    (line,) = reconcile(store)
    run = store.get(run_id)
    assert run["status"] == "cancelled", line
    assert run["error"].startswith("cancelled by the user (process ")
    assert read_events(store.run_dir(run_id))[-1]["status"] == "cancelled"


def test_the_runner_reaps_an_engine_stopped_before_its_handler_as_cancelled(one_queued) -> None:
    store, run_id = one_queued
    proc = _engine_before_its_handler()
    _running(store, run_id, proc)
    pass_ = runner.Runner(store)
    pass_.children[run_id] = runner.Child(proc, "cpu")
    launcher.stop_runs(store, [run_id])
    proc.wait(10)
    pass_.reap()
    assert store.get(run_id)["status"] == "cancelled" and not pass_.children
    assert "killed by signal 15" in store.get(run_id)["error"]


def test_a_summary_with_a_bad_run_id_is_skipped_by_the_runner(one_queued, monkeypatch) -> None:
    store, good = one_queued
    bad = {**store.get(good), "run_id": "../../outside", "created": 0}
    store.put_runs([bad])
    assert [r["run_id"] for r in runner.local_queue(store.runs())] == [good]
    pass_ = runner.Runner(store)
    spawned: list[str] = []
    monkeypatch.setattr(pass_, "spawn", lambda run, slot, cpu_slots: spawned.append(run["run_id"]))
    assert pass_.tick() and spawned == [good]  # no StoreError: the runner lives on
    assert reconcile(store) == []
    assert local.revive_runner(store) == 0  # nothing of it waits for a runner


class _FakeEngine:
    """What Popen returns in these tests: it writes a line to the log it was given."""

    pid = os.getpid()

    def __init__(self, args: list[str], stdout: Any = None, **kw: Any) -> None:
        stdout.write(b"engine output\n")
        stdout.flush()

    def poll(self) -> int | None:
        return None


def test_a_linked_log_is_never_written_through(one_queued, tmp_path, monkeypatch) -> None:
    store, run_id = one_queued
    target = tmp_path / "bashrc"
    target.write_text("precious\n")
    (store.run_dir(run_id) / "stdout.log").symlink_to(target)
    monkeypatch.setattr(runner.subprocess, "Popen", _FakeEngine)
    pass_ = runner.Runner(store)
    pass_.spawn(store.get(run_id), "cpu", 1)
    assert target.read_text() == "precious\n"
    run = store.get(run_id)
    assert run["status"] == "failed" and "stdout.log: a symbolic link" in run["error"]
    assert not pass_.children and pass_.waiting(store.runs()) == []


def test_a_start_the_index_could_not_record_is_kept_and_never_started_twice(
    one_queued, monkeypatch
) -> None:
    store, run_id = one_queued
    monkeypatch.setattr(runner.subprocess, "Popen", _FakeEngine)
    pass_ = runner.Runner(store)
    real_update, calls = store.update, []

    def busy_once(*args: Any, **kw: Any) -> Any:
        calls.append(args[0])
        if len(calls) == 1:
            raise StoreError(f"{store.root}/.kdtui.lock stayed locked for 30 s")
        return real_update(*args, **kw)

    monkeypatch.setattr(store, "update", busy_once)
    monkeypatch.setattr(runner, "RETRY_S", runner.TICK_S)
    assert pass_.step()  # one line, and it goes on
    assert list(pass_.children) == [run_id] and store.get(run_id)["status"] == "queued"
    assert pass_.step()
    assert store.get(run_id)["status"] == "running" and store.get(run_id)["pid"] == os.getpid()
    assert list(pass_.children) == [run_id]  # one engine, started once


def test_the_runner_survives_an_index_it_cannot_read(one_queued, monkeypatch, capsys) -> None:
    store, run_id = one_queued
    pass_ = runner.Runner(store)
    proc = _engine_before_its_handler()
    pass_.children[run_id] = runner.Child(proc, "cpu")
    monkeypatch.setattr(runner, "RETRY_S", runner.TICK_S)
    try:
        full = OSError(28, "No space left on device", str(store.root / "kdtui.journal"))
        monkeypatch.setattr(store, "runs", lambda: (_ for _ in ()).throw(full))
        assert pass_.step() and pass_.step()
        assert list(pass_.children) == [run_id]  # its engine kept
        said = capsys.readouterr().out.splitlines()
        assert said == [f"kdtui runner: {full.filename}: No space left on device; trying again in 0 s"] * 2  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
