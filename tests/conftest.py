"""Shared fixtures: tiny specs and workspaces. Nothing here downloads anything."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

# Engines started by tests keep the test's priority: niced (kdtui's default) they would
# wait for any busy process on a loaded machine and miss the tests' deadlines.
os.environ.setdefault("KDTUI_NICE", "0")
# pyts compiles all its numba kernels when imported (test_data imports it at collection):
# unoptimised machine code, the same numbers, costs half the CPU (~15 s less on two cores).
os.environ.setdefault("NUMBA_OPT", "0")
# kdtui.clikit sizes piped output when imported, from COLUMNS if set: pytest-xdist's worker
# processes inherit COLUMNS=80 from execnet, which would wrap the in-process CLI tests' lines
# there and not in a one-process run. Tests that read a width set it where they need it.
os.environ.pop("COLUMNS", None)
# Several test processes side by side (pytest-xdist): torch in each (tests that train in
# process) takes one thread, which sleeps when idle, as the engines' share does (threads.py);
# two spinning OpenMP pools per core made the suite's CPU time 40 % larger. The engines the
# tests start choose their own threads.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


#: Test processes at most (pytest-xdist, ``-n auto`` in pyproject.toml): a test that starts
#: engines or the app already keeps a core busy, and more workers than cores only queue.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """One worker per core this process may use (its affinity, unlike xdist's own count of
    every CPU of the host), at most ``MAX_WORKERS``."""
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules with slow end-to-end tests first, each whole (its module fixtures made
    once): spread over the workers from the start, none is left to run alone at the end
    while the other workers idle."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: the order within a module


def tiny_experiment(name: str, /, **over: Any) -> dict[str, Any]:
    """A spec small enough to train in a second or two on one CPU core."""
    exp: dict[str, Any] = {
        "name": name,
        "data": {
            "dataset": "synthetic-har",
            "n_train": 48,
            "n_test": 24,
            "length": 64,
            "n_classes": 3,
        },
        "student": {"depth": 10, "width": 1, "view": "signal"},
        "optim": {"lr": 0.05},
        "schedule": {"kind": "cosine", "min_lr": 0.0001},
        "epochs": 2,
        "batch_size": 16,
        "seeds": [0],
    }
    exp.update(over)  # may replace "name" too
    return exp


@pytest.fixture
def write_spec(tmp_path: Path):
    def write(body: Any, name: str = "spec.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(body, indent=1))
        return path

    return write


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    monkeypatch.setenv("KDTUI_WORKSPACE", str(ws))
    return ws


def run_cli(*args: str, workspace: Path, timeout: float = 120, **kw: Any):
    """The real ``kdtui`` command in a child process, as a user would type it."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, KDTUI_WORKSPACE=str(workspace), COLUMNS="120", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "kdtui", *args],
        capture_output=True, text=True, timeout=timeout, env=env, **kw,
    )  # fmt: skip


def wait_for(predicate, timeout: float = 60, every: float = 0.05, what: str = "condition"):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def cleanup_processes(workspace: Path):
    """Whatever a test started in the workspace (runner, engines) is gone afterwards."""
    yield workspace
    import json
    import os
    import signal

    from kdtui import procs
    from kdtui.store import Store

    store = Store(workspace)
    pidfile = workspace / "runner.pid"
    targets = []
    if pidfile.exists():
        me = json.loads(pidfile.read_text())
        targets.append((me["pid"], me["pid_start"]))
    if store.index_path.exists():
        targets += [(r["pid"], r.get("pid_start")) for r in store.runs() if r.get("pid")]
    for pid, start in targets:
        if procs.is_alive(pid, start):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
