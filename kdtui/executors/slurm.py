"""The Slurm executor: one ``sbatch`` job per run, so that nothing stays awake on the login
node and Slurm does the placement.

A student's job carries ``--dependency=afterok:…`` on the jobs of the teacher runs it needs
(the seed's own run for ``same-seed``, the whole group for ``best``), so Slurm starts it only
once they succeeded. The job runs ``python -m kdtui.engine RUN_DIR`` with the interpreter
kdtui itself runs under; that interpreter and the workspace must therefore be on a
filesystem the compute nodes share, which ``SlurmExecutor.check`` proves with a probe job
before anything is queued. On the node the engine writes the same events, summary and
heartbeat as a local one; kdtui asks Slurm (``squeue``, then ``sacct``) only for what the
engine cannot tell: a pending job's reason, its node, and why a job ended without an end
event (time limit, preemption, node failure, scancel).

Defaults live in ``<workspace>/slurm.json`` (every key optional; the command line wins)::

    {"partition": "gpu", "gpus_per_run": 1, "time": "04:00:00",
     "options": {"account": "mylab", "cpus-per-task": 4, "mem": "16G"},
     "probe_timeout_s": 120}
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kdtui.executors.base import (
    ExecutorError,
    Verdict,
    cancel_queued,
    end_event,
    stale_heartbeat,
)
from kdtui.needs import need_group, needs_state, resolve_need
from kdtui.store import ACTIVE, Store, atomic_write

CONFIG_FILE = "slurm.json"
PROBE_FILE = "slurm-probe.json"
COMMAND_TIMEOUT_S = 30.0
#: Job states after which the job's processes are gone, with what they mean for the run.
#: Any other state (PENDING, RUNNING, COMPLETING, REQUEUED, SUSPENDED...) is still Slurm's.
ENDED = {
    "CANCELLED": "cancelled outside kdtui (scancel)",
    "TIMEOUT": "time limit reached",
    "PREEMPTED": "preempted",
    "NODE_FAIL": "node failure",
    "BOOT_FAIL": "node failed to boot",
    "DEADLINE": "deadline reached",
    "OUT_OF_MEMORY": "out of memory",
    "COMPLETED": "the engine exited without an end event",
    "FAILED": "the engine exited without an end event",
}
#: sbatch options that kdtui sets itself for every job.
OWN_OPTIONS = frozenset(
    {"job-name", "output", "error", "open-mode", "chdir", "dependency", "parsable", "wrap"}
)
_OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")


def poll_s() -> float:
    """How long one answer of Slurm's is reused: squeue is not meant for polling twice a
    second by every open kdtui."""
    return float(os.environ.get("KDTUI_SLURM_POLL_S", "5"))


# ---------------------------------------------------------------------- options


class SlurmOptions(BaseModel):
    """How each run's job is requested: the workspace's slurm.json, then the command line."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = None
    gpus_per_run: int = Field(1, ge=0, description="--gres=gpu:N; 0 for CPU-only jobs")
    time: str | None = Field(None, description="--time, e.g. 04:00:00 or 2-00:00:00")
    options: dict[str, str | int | bool] = Field(
        default_factory=dict, description="any other sbatch long option: name → value"
    )
    probe_timeout_s: float = Field(120, ge=0, description="0 skips the workspace check")

    @classmethod
    def load(
        cls,
        store: Store,
        *,
        partition: str | None = None,
        gpus_per_run: int | None = None,
        time_limit: str | None = None,
        extra: list[str] | None = None,
    ) -> SlurmOptions:
        """The workspace defaults with the command line's values on top; ``extra`` holds
        ``KEY=VALUE`` (or a bare ``KEY`` for a flag) sbatch options."""
        path = store.root / CONFIG_FILE
        try:
            raw = json.loads(path.read_text()) if path.exists() else {}
            opts = cls.model_validate(raw)
        except (OSError, ValueError) as exc:  # ValidationError is a ValueError
            problems = (
                [f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()]
                if isinstance(exc, ValidationError)
                else [str(exc)]
            )
            raise ExecutorError(f"{path}: {'; '.join(problems)}") from None
        given = {"partition": partition, "gpus_per_run": gpus_per_run, "time": time_limit}
        opts = opts.model_copy(update={k: v for k, v in given.items() if v is not None})
        opts.options = {**opts.options, **parse_options(extra or [])}
        for name in opts.options:
            if not _OPTION_NAME.match(name) or name in OWN_OPTIONS:
                why = "kdtui sets it itself" if name in OWN_OPTIONS else "not an option name"
                raise ExecutorError(f"sbatch option {name!r}: {why}")
        return opts

    def sbatch_args(self) -> list[str]:
        args = [f"--partition={self.partition}"] if self.partition else []
        if self.gpus_per_run:
            args.append(f"--gres=gpu:{self.gpus_per_run}")
        if self.time:
            args.append(f"--time={self.time}")
        for name, value in self.options.items():
            args.append(f"--{name}" if value is True or value == "" else f"--{name}={value}")
        return args


def parse_options(items: list[str]) -> dict[str, str | bool]:
    """``--slurm-opt`` values: ``account=lab`` → {"account": "lab"}, ``exclusive`` → flag."""
    out: dict[str, str | bool] = {}
    for item in items:
        name, sep, value = item.partition("=")
        out[name.strip().lstrip("-")] = value if sep else True
    return out


# ---------------------------------------------------------------------- asking Slurm


@dataclass(frozen=True)
class Job:
    """What Slurm says about one job."""

    state: str  # PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT...
    reason: str | None  # why it is pending (Dependency, Resources, Priority...)
    node: str | None
    exit_code: int | None = None
    signal: int | None = None


def _slurm(*cmd: str) -> subprocess.CompletedProcess[str] | None:
    """Run a Slurm command; None when it is not there or does not answer in time."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None


def _job(state: str, reason: str, node: str, code: int | None, sig: int | None) -> Job:
    return Job(
        state.split()[0] if state else "UNKNOWN",  # sacct says "CANCELLED by 1000"
        reason if reason and reason != "None" else None,
        node if node and node != "None assigned" else None,
        code,
        sig,
    )


def query(job_ids: list[str]) -> dict[str, Job] | None:
    """Slurm's word on these jobs — squeue while the controller holds them (pending,
    running, and MinJobAge after the end), then sacct: accounting, or on a cluster without
    slurmdbd the job-completion log (``sacct --completion``). A job in neither is absent
    from the answer; None when Slurm cannot be asked from here at all."""
    fmt = "JobID:40|,State:40|,Reason:400|,NodeList:400|,exit_code:20|"
    out = _slurm(
        "squeue", "--noheader", "--states=all", f"--jobs={','.join(job_ids)}", f"--Format={fmt}"
    )
    if out is None or (out.returncode != 0 and "Invalid job id" not in out.stderr):
        return None
    jobs: dict[str, Job] = {}
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        cells = [c.strip() for c in line.split("|")]
        if len(cells) >= 5 and cells[0]:
            status = int(cells[4]) if cells[4].isdigit() else None  # a wait(2) status
            code, sig = (status >> 8, status & 0x7F) if status is not None else (None, None)
            jobs[cells[0]] = _job(cells[1], cells[2], cells[3], code, sig)
    missing = [j for j in job_ids if j not in jobs]
    base = ["sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={','.join(missing)}"]
    base.append("--format=JobIDRaw,State,Reason,NodeList,ExitCode")
    for cmd in (base, [*base, "--completion"]) if missing else ():
        out = _slurm(*cmd)
        if out is None or out.returncode != 0:
            continue  # "Slurm accounting storage is disabled": try the completion log
        for line in out.stdout.splitlines():
            cells = line.split("|")
            if len(cells) >= 5 and cells[0] in missing:
                code, _, sig = cells[4].partition(":")
                ints = [int(x) if x.isdigit() else None for x in (code, sig)]
                jobs[cells[0]] = _job(cells[1], cells[2], cells[3], *ints)
        break
    return jobs


@dataclass
class _Answers:
    """Slurm's answers per job id, reused for ``poll_s()`` seconds (by this process)."""

    asked: dict[str, tuple[float, Job | None]] = field(default_factory=dict)
    unreachable_at: float = float("-inf")

    def get(self, job_ids: list[str]) -> dict[str, Job | None] | None:
        now, fresh = time.monotonic(), poll_s()
        if now - self.unreachable_at < fresh:
            return None
        stale = [j for j in job_ids if now - self.asked.get(j, (float("-inf"), None))[0] > fresh]
        if stale:
            got = query(stale)
            if got is None:
                self.unreachable_at = now
                return None
            self.asked.update({j: (now, got.get(j)) for j in stale})
        return {j: self.asked[j][1] for j in job_ids}


_answers = _Answers()


def scancel(job_id: str) -> bool:
    """Cancel a job (Slurm signals its processes with SIGTERM, SIGKILL after KillWait).
    True when Slurm took the request; an already finished job counts as cancelled."""
    out = _slurm("scancel", job_id)
    return out is not None and out.returncode == 0


# ---------------------------------------------------------------------- judging runs


def judge(
    store: Store, docs: list[dict[str, Any]], runs: list[dict[str, Any]]
) -> dict[str, Verdict]:
    """What Slurm's word does to active Slurm runs (``executors.reconcile`` applies it).

    A queued student whose teacher can no longer succeed fails, and its job is cancelled
    rather than left pending forever (DependencyNeverSatisfied). A job that ended while
    its run is still active — the engine wrote no end event — ends the run: ``cancelled``
    when kdtui asked for it, ``failed`` for an engine's own exit code, otherwise
    ``crashed`` with Slurm's reason (time limit, preemption, node failure, scancel), so that
    ``kdtui resume`` picks it up. A live job refreshes ``slurm_state``, ``slurm_reason`` and
    ``node``. Where Slurm cannot be asked, a running run is judged by its heartbeat."""
    answers = _answers.get([d["job_id"] for d in docs if d.get("job_id")])
    now = time.time()
    verdicts = {}
    for doc in docs:
        verdict = _judge(store, doc, runs, answers, now)
        if verdict is not None:
            verdicts[doc["run_id"]] = verdict
    return verdicts


def _judge(
    store: Store,
    doc: dict[str, Any],
    runs: list[dict[str, Any]],
    answers: dict[str, Job | None] | None,
    now: float,
) -> Verdict | None:
    job_id = doc.get("job_id")
    if doc["status"] == "queued":
        state, detail = needs_state(doc, runs)
        if state == "failed":
            if job_id:
                scancel(job_id)
            return {}, {"type": "error", "message": detail, "time": now}
    if not job_id:
        return None  # being submitted right now
    if answers is None:
        reason = stale_heartbeat(store, doc, now) if doc["status"] == "running" else None
        return ({}, end_event("crashed", reason, now)) if reason else None
    job = answers.get(job_id)
    if job is None:
        reason = f"Slurm has no record of job {job_id}, and the run left no end event"
        return {}, end_event("crashed", reason, now)
    fields: dict[str, Any] = {
        "slurm_state": job.state,
        "slurm_reason": job.reason if job.state == "PENDING" else None,
        "node": job.node or doc.get("node"),
    }
    if job.state in ENDED:
        return fields, _ended(store, doc, job, now)
    if job.reason == "DependencyNeverSatisfied":
        scancel(job_id)
        message = f"Slurm job {job_id} can never start: a teacher job it waits for did not succeed (DependencyNeverSatisfied)"
        return fields, {"type": "error", "message": message, "time": now}
    if job.state == "RUNNING":
        fields["status"] = "running"
    changed = {k: v for k, v in fields.items() if doc.get(k) != v}
    return (changed, None) if changed else None


def _ended(store: Store, doc: dict[str, Any], job: Job, now: float) -> dict[str, Any]:
    """The end event of a run whose job ended without the engine writing one."""
    what = f"Slurm job {doc['job_id']} {job.state}" + (f" on {job.node}" if job.node else "")
    if job.state == "CANCELLED" and doc.get("cancel_requested"):
        return end_event("cancelled", "cancelled by the user", now)
    if job.state == "FAILED" and not job.signal:
        code = f" with exit code {job.exit_code}" if job.exit_code is not None else ""
        tail = store.log_tail(doc["run_id"])
        reason = f"{what}: the engine exited{code} without an end event"
        reason += f": {tail}" if tail else ""
        return end_event("failed", reason, now)
    how = f"killed by signal {job.signal}" if job.state == "FAILED" else ENDED[job.state]
    return end_event("crashed", f"{what}: {how}", now)


# ---------------------------------------------------------------------- submitting


def afterok(run: dict[str, Any], runs: list[dict[str, Any]]) -> tuple[str, str]:
    """The dependency a run's job needs, from the same rule as the local runner
    (``resolve_need``): ``("ready", "afterok:12:13")`` (or ``""`` when every teacher is
    done), ``("wait", "")`` while a teacher run it waits for has no job yet, or
    ``("failed", reason)``."""
    jobs: list[str] = []
    for need in run.get("needs") or []:
        state, detail = resolve_need(need, runs)
        if state == "failed":
            return state, detail
        if state == "ready":
            continue
        for teacher in need_group(need, runs):
            if teacher.get("status") not in ACTIVE:
                continue
            if teacher.get("executor") != "slurm":
                return "failed", (
                    f"teacher run {teacher['run_id']} is on the local executor; a Slurm job "
                    "cannot wait for it (resume this run once it is done)"
                )
            if not teacher.get("job_id"):
                return "wait", ""
            jobs.append(teacher["job_id"])
    return "ready", ("afterok:" + ":".join(dict.fromkeys(jobs)) if jobs else "")


def sbatch(args: list[str]) -> str:
    """Submit a job; returns its id, or raises ExecutorError in sbatch's own words."""
    out = _slurm("sbatch", "--parsable", *args)
    if out is None:
        raise ExecutorError("sbatch is missing or did not answer: is Slurm reachable from here?")
    if out.returncode != 0:
        words = "; ".join(line.strip() for line in out.stderr.splitlines() if line.strip())
        raise ExecutorError(f"sbatch refused the job: {words[:400] or f'exit {out.returncode}'}")
    return out.stdout.strip().split(";")[0]  # "id" or "id;cluster"


def engine_command(run_dir: str) -> str:
    """The job's shell command: this interpreter's engine on the run, one CPU thread per
    allocated core, and the executor named so that the engine does not take Slurm's SIGTERM
    (time limit, preemption) for a user's cancel."""
    threads = "${KDTUI_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"
    return (
        f"export PYTHONUNBUFFERED=1 KDTUI_EXECUTOR=slurm KDTUI_THREADS={threads}; "
        f"exec {shlex.quote(sys.executable)} -m kdtui.engine {shlex.quote(run_dir)}"
    )


@dataclass
class SlurmExecutor:
    """Runs as Slurm batch jobs; see the module's docstring."""

    name: ClassVar[str] = "slurm"
    options: SlurmOptions = field(default_factory=SlurmOptions)

    def frozen(self) -> dict[str, Any]:
        """Each run keeps its sbatch options in spec.json: a resume asks for the same."""
        return {"executor": self.name, "sbatch": self.options.sbatch_args()}

    def check(self, store: Store, log: Callable[[str], None]) -> None:
        """Prove with a probe job of the same options that a compute node can run this
        interpreter and write into the workspace; a success is remembered per interpreter,
        workspace and options (slurm-probe.json), so only the first run pays for it."""
        if shutil.which("sbatch") is None:
            raise ExecutorError("sbatch is not on PATH: run kdtui on a Slurm login node")
        root = store.root.resolve()
        args = self.options.sbatch_args()
        key = {"python": sys.executable, "workspace": str(root), "sbatch": args}
        try:
            if json.loads((root / PROBE_FILE).read_text())["key"] == key:
                return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if self.options.probe_timeout_s == 0:
            return
        root.mkdir(parents=True, exist_ok=True)
        job_id, node = probe(root, args, self.options.probe_timeout_s, log)
        record = {"key": key, "node": node, "job_id": job_id, "time": time.time()}
        atomic_write(root / PROBE_FILE, json.dumps(record).encode())

    def start(self, store: Store, run_ids: list[str]) -> None:
        """Submit queued runs, each teacher before the students that wait for it; a run
        that cannot be submitted fails with the reason."""
        runs = {r["run_id"]: r for r in store.runs()}
        pending = [i for i in run_ids if runs.get(i, {}).get("status") == "queued"]
        while pending:
            ready = []
            for run_id in pending:
                state, detail = afterok(runs[run_id], list(runs.values()))
                if state != "wait":
                    ready.append((run_id, state, detail))
            if not ready:  # a teacher they wait for is queued but was never submitted
                ready = [
                    (i, "failed", "a teacher run it needs was never submitted") for i in pending
                ]
            for run_id, state, detail in ready:
                pending.remove(run_id)
                event = (
                    self._submit(store, run_id, detail)
                    if state == "ready"
                    else {"type": "error", "message": detail}
                )
                runs[run_id] = store.record_event(run_id, event) or runs[run_id]

    def _submit(self, store: Store, run_id: str, dependency: str) -> dict[str, Any]:
        run_dir = store.run_dir(run_id).resolve()
        args = [
            *store.read_spec(run_id).get("sbatch", []),
            f"--job-name=kdtui-{run_id}",
            f"--output={run_dir / 'stdout.log'}",
            "--open-mode=append",
            f"--chdir={run_dir.parent}",
            *([f"--dependency={dependency}"] if dependency else []),
            f"--wrap={engine_command(str(run_dir))}",
        ]
        try:
            return {"type": "submit", "executor": self.name, "job_id": sbatch(args)}
        except ExecutorError as exc:
            return {"type": "error", "message": str(exc)}

    def stop(self, store: Store, run: dict[str, Any]) -> bool:
        """scancel. A pending job goes at once and its run ends ``cancelled``; a running
        engine gets SIGTERM from Slurm and, finding ``cancel_requested`` set, writes its
        ``cancelled`` end event (if it is killed first, reconcile settles it the same way
        from Slurm's CANCELLED)."""
        if run.get("job_id") and not scancel(run["job_id"]):
            return False
        if run["status"] == "queued":
            return cancel_queued(store, run["run_id"])
        return bool(run.get("job_id"))

    def verdicts(
        self, store: Store, docs: list[dict[str, Any]], runs: list[dict[str, Any]]
    ) -> dict[str, Verdict]:
        """Slurm's word on these runs' jobs (``judge``), never a pid."""
        return judge(store, docs, runs)


def probe(
    root: Path, args: list[str], timeout: float, log: Callable[[str], None]
) -> tuple[str, str]:
    """Submit a job that writes its node's name into ``root`` and wait for it (at most
    ``timeout`` s); returns the job id and the node, or raises ExecutorError saying why
    the compute nodes cannot be used from here."""
    path = root / f".slurm-probe-{secrets.token_hex(4)}"
    code = f"import kdtui.engine, pathlib, socket; pathlib.Path({str(path)!r}).write_text(socket.gethostname())"
    wrap = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"
    job_id = sbatch(
        [*args, "--job-name=kdtui-probe", "--output=/dev/null", "--time=5", f"--wrap={wrap}"]
    )
    log(f"checking that Slurm jobs can use {root} (probe job {job_id}, up to {timeout:.0f} s)")
    deadline = time.monotonic() + timeout
    job = (query([job_id]) or {}).get(job_id)
    while (job is None or job.state not in ENDED) and time.monotonic() < deadline:
        time.sleep(1.0)  # polite to the controller
        job = (query([job_id]) or {}).get(job_id)
    if job is None or job.state not in ENDED:
        scancel(job_id)
        state = "no answer" if job is None else f"{job.state} {job.reason or ''}".strip()
        raise ExecutorError(
            f"the probe job {job_id} did not finish within {timeout:.0f} s (Slurm: {state}), so "
            f"kdtui could not check that the compute nodes see {root}. Try again when the "
            f"partition is less busy, or set probe_timeout_s in {root / CONFIG_FILE} (0 skips "
            "the check)."
        )
    # Looked up only now that the job has ended: an NFS client may cache a name that was
    # missing when first looked up.
    try:
        node = path.read_text()
    except OSError:
        seen = (
            "wrote its file there, but the file does not appear here"
            if job.state == "COMPLETED"
            else f"could not run {sys.executable} or write there"
        )
        raise ExecutorError(
            f"the probe job {job_id} ran on {job.node or 'its node'} ({job.state}) and {seen}: "
            f"the workspace ({root}) and the Python environment must be on a filesystem the "
            "compute nodes share (a home or project directory, not /tmp); choose the "
            "workspace with --workspace."
        ) from None
    path.unlink()
    log(f"probe job {job_id} ran on {node} and wrote to the workspace")
    return job_id, node
