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
from kdtui.safefs import open_nofollow, symlinks_in
from kdtui.store import (
    ACTIVE,
    RUN_ID_PATTERN,
    Store,
    StoreError,
    atomic_write,
    fold_event,
)
from kdtui.threads import PARALLEL_ENV

TICK_S = 0.5
RETRY_S = 5.0  # after the index could not be read or written
KILL_GRACE_S = 30.0


@dataclass
class Child:
    """An engine this runner started; ``fields`` is what the index must learn of it (its
    status and pid), kept until a write of the index succeeded."""

    proc: subprocess.Popen
    slot: str
    fields: dict[str, Any] | None = None


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
    """The queued runs that are this runner's to start (Slurm runs wait in Slurm's queue).
    A summary whose run id is not a valid one (a planted folder indexed by an older kdtui)
    is nobody's to start: it names no folder kdtui would write into."""
    return [
        r
        for r in runs
        if r.get("status") == "queued"
        and r.get("executor") != "slurm"
        and RUN_ID_PATTERN.match(str(r.get("run_id", "")))
    ]


class Runner:
    def __init__(self, store: Store):
        self.store = store
        self.children: dict[str, Child] = {}
        self.gpus = discover_gpus()
        self.host = socket.gethostname()
        self.refused: set[str] = set()  # runs it will not start, said once each

    def spawn(self, run: dict[str, Any], slot: str, cpu_slots: int) -> None:
        """Start the run's engine in its own session, its output in the run's log (never
        through a link), and tell the index. A run whose folder cannot be used is failed
        with the reason, and never tried again by this runner."""
        run_id = run["run_id"]
        run_dir = self.store.run_dir(run_id)
        if linked := symlinks_in(run_dir):
            return self.refuse(run_id, f"{', '.join(linked)}: a symbolic link, not followed")
        # the engine splits the free cores between the runs side by side (kdtui.threads)
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{PARALLEL_ENV: str(cpu_slots)})
        if slot.startswith("cuda:"):
            env["CUDA_VISIBLE_DEVICES"] = slot.split(":", 1)[1]
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""
        try:
            log = open_nofollow(run_dir / "stdout.log", "ab")
        except OSError as exc:
            return self.refuse(run_id, f"stdout.log: {exc.strerror or exc}")
        with log:
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
        self.children[run_id] = Child(proc, slot, fields)
        self._record_start(run_id, self.children[run_id])

    def _record_start(self, run_id: str, child: Child) -> None:
        """Write a started engine's status and pid; raises StoreError or OSError while the
        index cannot be written (the next tick tries again: the child is kept meanwhile)."""
        assert child.fields is not None
        # "running" too: the engine's own start event may have been folded in first
        if self.store.update(run_id, child.fields, if_status=ACTIVE) is None:
            child.proc.kill()  # cancelled between our read and now
            child.proc.wait()
            del self.children[run_id]
            return
        child.fields = None

    def refuse(self, run_id: str, why: str) -> None:
        """Never start this run: say why once, and fail it in the store if it can be."""
        self.refused.add(run_id)
        print(f"kdtui runner: not starting {run_id!r}: {why}", flush=True)
        event = {"type": "error", "message": f"not started: {why}", "time": time.time()}
        try:
            self.store.record_event(run_id, event, if_status={"queued"})
        except (StoreError, OSError):  # the events file is the link: the summary at least
            self.store.modify(run_id, lambda doc: fold_event(doc, event), if_status={"queued"})

    def reap(self) -> None:
        """Settle engines that exited without an end event: ``cancelled`` when the user had
        asked (a SIGTERM before the engine could handle it), ``crashed`` when a signal
        killed it, otherwise ``failed``. A child leaves only once the index knows."""
        for run_id, child in list(self.children.items()):
            if child.fields is not None:
                self._record_start(run_id, child)
                if run_id not in self.children:
                    continue
            code = child.proc.poll()
            if code is None:
                self._enforce_cancel(run_id, child)
                continue
            how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            tail = self.store.log_tail(run_id)
            reason = f"engine {how} without an end event" + (f": {tail}" if tail else "")
            status = "crashed" if code < 0 else "failed"
            if (self.store.get(run_id) or {}).get("cancel_requested"):
                status, reason = "cancelled", f"cancelled by the user ({reason})"
            # only if still running: usually the engine recorded its own end, and a run
            # queued again (resumed once `ls` found it dead) is a new attempt's
            event = {"type": "end", "status": status, "reason": reason}
            self.store.record_event(run_id, event, if_status={"running"})
            del self.children[run_id]

    def _enforce_cancel(self, run_id: str, child: Child) -> None:
        doc = self.store.get(run_id) or {}
        asked = doc.get("cancel_requested")
        if asked and time.time() - asked > KILL_GRACE_S:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.proc.pid, signal.SIGKILL)

    def waiting(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The runs of ``local_queue`` this runner may still start."""
        return [
            r
            for r in local_queue(runs)
            if r["run_id"] not in self.children and r["run_id"] not in self.refused
        ]

    def tick(self) -> bool:
        """One scheduling pass. Returns False when there is nothing left to do. Raises
        StoreError or OSError when the index cannot be read or written (``step``)."""
        for line in reconcile(self.store):
            print(f"reconciled {line}", flush=True)
        while self.store.notices:
            print(f"store: {self.store.notices.pop(0)}", flush=True)
        self.reap()
        config = read_runner_config(self.store)
        slots = slots_for(config, self.gpus)
        runs = self.store.runs()
        queued = self.waiting(runs)
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

    def step(self) -> bool:
        """``tick``, surviving an index that cannot be read or written right now (lock
        contention, a full disk): one line, and the next tick tries again, its engines
        kept. Returns whether there is still work."""
        try:
            return self.tick()
        except (StoreError, OSError) as exc:
            print(f"kdtui runner: {one_line(exc)}; trying again in {RETRY_S:.0f} s", flush=True)
            time.sleep(RETRY_S - TICK_S)
            return True


def one_line(exc: BaseException) -> str:
    """An exception as one line (an OSError with its file and cause)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


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
    try:
        atomic_write(store.root / "runner.pid", json.dumps(me).encode())
    except OSError as exc:  # only tests and people read it: no reason to stop the queue
        print(f"kdtui runner: runner.pid not written: {one_line(exc)}", flush=True)
    print(f"kdtui runner {os.getpid()}: started on {store.root}", flush=True)
    runner = Runner(store)
    while True:
        if runner.step():
            time.sleep(TICK_S)
            continue
        # Queue empty: let go of the lock, then look once more, so runs enqueued while we
        # were deciding to leave are never stranded without a runner.
        fcntl.flock(lock, fcntl.LOCK_UN)
        try:
            left = runner.waiting(store.runs())
        except (StoreError, OSError):
            left = [{}]  # cannot tell: stay
        if not left:
            break
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            break  # another runner took over
    print(f"kdtui runner {os.getpid()}: queue empty, exiting", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
