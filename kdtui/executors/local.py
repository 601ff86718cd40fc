"""The local executor: engines on this machine, started by the workspace's queue runner.

``LocalExecutor.start`` makes sure a queue runner (``python -m kdtui.runner``) is alive for
the workspace, started in its own session, so neither the CLI nor the TUI is ever the
parent of a training process and closing either (or losing SSH) stops nothing. The runner's
slots live in ``runner.json`` (it re-reads the file every tick). A run counts as alive while
its process is: pid *and* process start time must match, so a reused pid never keeps a dead
run alive, and a live engine is never called crashed. Runs that another host's runner
started (a workspace on a shared filesystem) are judged by their heartbeat alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from kdtui import procs
from kdtui.executors.base import Verdict, cancel_queued, end_event, stale_heartbeat
from kdtui.safefs import open_nofollow
from kdtui.store import RUN_ID_PATTERN, Store, atomic_write

RUNNER_LOCK = "runner.lock"
RUNNER_CONFIG = "runner.json"
RUNNER_LOG = "runner.log"
REVIVE_AFTER_S = 10.0


def engine_alive(run: dict[str, Any]) -> bool:
    """Whether the run's recorded engine process is alive on this host (same pid, same
    start time)."""
    pid = run.get("pid") or 0
    return pid > 1 and procs.is_alive(pid, run.get("pid_start"))


@dataclass
class LocalExecutor:
    """Engine processes on this machine, started by the queue runner within device slots."""

    name: ClassVar[str] = "local"
    jobs: int | None = None
    gpus: list[str] | None = None
    per_gpu: int | None = None

    def check(self, store: Store, log: Callable[[str], None]) -> None:
        """Nothing to check: the runner starts engines where kdtui itself runs."""

    def frozen(self) -> dict[str, Any]:
        return {"executor": self.name}

    def start(self, store: Store, run_ids: list[str]) -> None:
        if (self.jobs, self.gpus, self.per_gpu) != (None, None, None):
            write_runner_config(store, jobs=self.jobs, gpus=self.gpus, per_gpu=self.per_gpu)
        ensure_runner(store)

    def stop(self, store: Store, run: dict[str, Any]) -> bool:
        """Queued: cancelled at once. Running: SIGTERM to the engine's process group (it
        writes a ``cancelled`` end event; killed before it could, reconcile ends it
        ``cancelled`` from the recorded request); the runner SIGKILLs after a grace time."""
        if run["status"] == "queued":
            return cancel_queued(store, run["run_id"])
        if run.get("host") != socket.gethostname():
            return True  # never signal a pid of another host: its engine reads the request
        if run.get("pid_start") is not None and engine_alive(run):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(run["pid"], 15)
            return True
        return False

    def verdicts(
        self, store: Store, docs: list[dict[str, Any]], runs: list[dict[str, Any]]
    ) -> dict[str, Verdict]:
        """A running run of this host whose process is gone ends ``crashed`` (reconcile
        makes it ``cancelled`` when the user had asked), never while that process lives; a
        run of another host, by a stale heartbeat alone. Queued runs are the runner's."""
        host, now = socket.gethostname(), time.time()
        out: dict[str, Verdict] = {}
        for doc in docs:
            if doc.get("status") != "running":
                continue
            mine = doc.get("host") == host and doc.get("pid")
            reason = None
            if mine and not engine_alive(doc):
                reason = f"process {doc['pid']} is gone without an end event"
            elif mine and doc.get("pid_start") is not None:
                # Its very process is alive: a stale heartbeat means a suspended VM or a
                # stalled disk, and a run called crashed would be resumed twice.
                continue
            if reason := reason or stale_heartbeat(store, doc, now):
                out[doc["run_id"]] = ({}, end_event("crashed", reason, now))
        return out


# ---------------------------------------------------------------------- runner control


def write_runner_config(store: Store, **config: Any) -> None:
    """Slots for the runner (it re-reads this file every tick): jobs, gpus, per_gpu."""
    store.root.mkdir(parents=True, exist_ok=True)
    current = read_runner_config(store)
    current.update({k: v for k, v in config.items() if v is not None})
    atomic_write(store.root / RUNNER_CONFIG, json.dumps(current).encode())


def read_runner_config(store: Store) -> dict[str, Any]:
    try:
        config = json.loads((store.root / RUNNER_CONFIG).read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def slot_changes(store: Store, executor: LocalExecutor) -> list[str]:
    """How starting ``executor`` changes the workspace runner's slots (``jobs 2 → 1``): the
    runner serves every queued run of the workspace, earlier launches' too."""
    before = read_runner_config(store)
    asked = {"jobs": executor.jobs, "gpus": executor.gpus, "per_gpu": executor.per_gpu}
    return [
        f"{k} {before[k]} → {v}"
        for k, v in asked.items()
        if v is not None and before.get(k) not in (None, v)
    ]


def runner_alive(store: Store) -> bool:
    """True while some process holds the workspace's runner lock."""
    path = store.root / RUNNER_LOCK
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def revive_runner(store: Store) -> int:
    """Start the queue runner again when local runs wait in the queue but no runner is
    alive (it was killed, or the machine rebooted), so no queued run is stranded; returns
    how many runs it was started for (0: nothing to do)."""
    if not store.index_path.exists() or runner_alive(store):  # the lock, before the index
        return 0
    # Runs queued a moment ago are their launcher's to start (it may be starting it now).
    settled = time.time() - REVIVE_AFTER_S
    waiting = [
        r
        for r in store.summaries()  # only looked at
        if r.get("status") == "queued"
        and r.get("executor", "local") == "local"
        and RUN_ID_PATTERN.match(str(r.get("run_id", "")))  # the runner skips the others
        and not r.get("cancel_requested")
        and (r.get("created") or 0) < settled
    ]
    if not waiting:
        return 0
    ensure_runner(store)
    return len(waiting)


def ensure_runner(store: Store) -> bool:
    """Start the workspace's queue runner unless one is alive. Returns True if started.

    Two callers racing both start one; the second finds the lock taken and exits."""
    if runner_alive(store):
        return False
    store.root.mkdir(parents=True, exist_ok=True)
    with open_nofollow(store.root / RUNNER_LOG, "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "kdtui.runner", str(store.root.resolve())],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=str(store.root.resolve()),
        )
    return True
