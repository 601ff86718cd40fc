"""The queue runner: ``python -m kdtui.runner WORKSPACE``.

One per workspace (an exclusive lock on ``runner.lock``; a second one exits politely). It
runs in its own session with no terminal, starts engine processes of the local executor as
device slots free up (Slurm runs wait in Slurm's queue, not here), holds students until the
teacher runs they need are done (or fails them when a teacher failed), records a run whose
engine died without an end event as crashed, and exits when the queue is empty. Engines are
started in their own sessions too, so they outlive it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdtui import procs
from kdtui.executors import reconcile
from kdtui.executors.local import RUNNER_LOCK, read_runner_config
from kdtui.needs import needs_state
from kdtui.store import Store, StoreError, atomic_write

TICK_S = 0.5
KILL_GRACE_S = 30.0


@dataclass
class Child:
    proc: subprocess.Popen
    slot: str


def discover_gpus() -> list[str]:
    """GPU indices visible to this process, without importing torch (nvidia-smi)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def slots_for(config: dict[str, Any], gpus: list[str]) -> list[str]:
    """Device slots: N per chosen GPU, or ``jobs`` CPU slots when there is no GPU."""
    chosen = [str(g) for g in config.get("gpus") or gpus]
    if chosen:
        return [f"cuda:{g}" for g in chosen for _ in range(int(config.get("per_gpu") or 1))]
    return ["cpu"] * max(1, int(config.get("jobs") or 1))


def local_queue(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The queued runs that are this runner's to start (Slurm runs wait in Slurm's queue)."""
    return [r for r in runs if r.get("status") == "queued" and r.get("executor") != "slurm"]


class Runner:
    def __init__(self, store: Store):
        self.store = store
        self.children: dict[str, Child] = {}
        self.gpus = discover_gpus()
        self.host = socket.gethostname()

    def spawn(self, run: dict[str, Any], slot: str, cpu_slots: int) -> None:
        run_dir = self.store.run_dir(run["run_id"])
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if slot.startswith("cuda:"):
            env["CUDA_VISIBLE_DEVICES"] = slot.split(":", 1)[1]
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""
            env["KDTUI_THREADS"] = str(max(1, (os.cpu_count() or 1) // cpu_slots))
        with open(run_dir / "stdout.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kdtui.engine", str(run_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=env,
            )
        fields = {
            "status": "running",
            "pid": proc.pid,
            "pid_start": procs.start_time(proc.pid),
            "host": self.host,
            "device": slot,
            "slot": slot,  # the engine reports its device as it sees it (cuda:0 of one)
            "heartbeat": time.time(),
            "error": None,
        }
        if self.store.update(run["run_id"], fields, if_status={"queued"}) is None:
            proc.kill()  # cancelled between our read and now
            proc.wait()
            return
        self.children[run["run_id"]] = Child(proc, slot)

    def reap(self) -> None:
        for run_id, child in list(self.children.items()):
            code = child.proc.poll()
            if code is None:
                self._enforce_cancel(run_id, child)
                continue
            del self.children[run_id]
            how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            tail = self.store.log_tail(run_id)
            reason = f"engine {how} without an end event" + (f": {tail}" if tail else "")
            status = "crashed" if code < 0 else "failed"
            # only if still running: usually the engine recorded its own end
            event = {"type": "end", "status": status, "reason": reason}
            self.store.record_event(run_id, event, if_status={"running"})

    def _enforce_cancel(self, run_id: str, child: Child) -> None:
        doc = self.store.get(run_id) or {}
        asked = doc.get("cancel_requested")
        if asked and time.time() - asked > KILL_GRACE_S:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.proc.pid, signal.SIGKILL)

    def tick(self) -> bool:
        """One scheduling pass. Returns False when there is nothing left to do."""
        for line in reconcile(self.store):
            print(f"reconciled {line}", flush=True)
        while self.store.notices:
            print(f"store: {self.store.notices.pop(0)}", flush=True)
        self.reap()
        config = read_runner_config(self.store)
        slots = slots_for(config, self.gpus)
        runs = self.store.runs()
        queued = local_queue(runs)
        busy = [c.slot for c in self.children.values()]
        # Engines of an earlier runner (killed, then restarted) hold their slots too.
        busy += [
            r.get("slot") or r.get("device") or "cpu"
            for r in runs
            if r.get("status") == "running"
            and r.get("executor", "local") == "local"
            and r.get("host") == self.host
            and r["run_id"] not in self.children
        ]
        free = list(slots)
        for slot in busy:
            if slot in free:
                free.remove(slot)
        for run in queued:
            state, detail = needs_state(run, runs)
            if state == "failed":
                event = {"type": "error", "message": detail}
                self.store.record_event(run["run_id"], event, if_status={"queued"})
            elif state == "ready" and free:
                self.spawn(run, free.pop(0), cpu_slots=len(slots))
        return bool(queued or self.children)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    store = Store(Path(argv[0]))
    store.root.mkdir(parents=True, exist_ok=True)
    lock = open(store.root / RUNNER_LOCK, "a+")  # noqa: SIM115 (held for the process's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("kdtui runner: another runner holds this workspace; leaving it the queue")
        return 0
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    me = {
        "pid": os.getpid(),
        "pid_start": procs.start_time(os.getpid()),
        "host": socket.gethostname(),
        "started": time.time(),
    }
    atomic_write(store.root / "runner.pid", json.dumps(me).encode())
    print(f"kdtui runner {os.getpid()}: started on {store.root}", flush=True)
    runner = Runner(store)
    while True:
        try:
            busy = runner.tick()
        except (StoreError, OSError) as exc:  # a busy or unwritable index: try next tick
            print(f"kdtui runner: {exc}; trying again", flush=True)
            busy = True
        if busy:
            time.sleep(TICK_S)
            continue
        # Queue empty: let go of the lock, then look once more, so runs enqueued while we
        # were deciding to leave are never stranded without a runner.
        fcntl.flock(lock, fcntl.LOCK_UN)
        if not local_queue(store.runs()):
            break
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            break  # another runner took over
    print(f"kdtui runner {os.getpid()}: queue empty, exiting", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
