"""The queue runner's scheduling pass, without starting processes."""

from __future__ import annotations

import os
import socket

import pytest
from conftest import tiny_experiment

from kdtui import launcher, procs, runner
from kdtui.executors.local import write_runner_config
from kdtui.spec import validate_spec
from kdtui.store import Store


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
