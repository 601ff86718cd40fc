"""From a validated spec to queued runs, and the executors that start and stop them.

``enqueue`` turns each experiment × seed into a run folder with its frozen spec and a
``queued`` summary. An **executor** then sets them going: ``local`` (``LocalExecutor``) makes
sure a queue runner (``python -m kdtui.runner``) is alive for the workspace — started in its
own session, so neither the CLI nor the TUI is ever the parent of a training process, and
closing either (or losing SSH) stops nothing; ``slurm`` (``kdtui.slurm.SlurmExecutor``)
submits one batch job per run. A run's summary names its executor, so stop and resume reach
the right one. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from kdtui import __version__, procs
from kdtui.store import (
    ACTIVE,
    Store,
    atomic_write,
    close_names,
    initial_summary,
    names_key,
    need_group,
    new_run_id,
)

if TYPE_CHECKING:  # the spec models cost ~0.15 s to import: only `kdtui run` needs them
    from kdtui.spec import Experiment, LoadedSpec, StoreGroup

RUNNER_LOCK = "runner.lock"
RUNNER_CONFIG = "runner.json"
REVIVE_AFTER_S = 10.0


def store_lookup(store: Store):
    """The spec validator's view of the store: a group by experiment name or group key.
    A name that several groups share (an experiment changed and run again under its
    name) is refused rather than guessed: a student must know which teacher it gets."""
    runs = None

    def lookup(name: str) -> StoreGroup | None:
        nonlocal runs
        if runs is None:
            runs = store.runs() if store.index_path.exists() else []
        mine = [
            r
            for r in runs
            if r.get("source") == "kdtui"
            and (r.get("name") == name or names_key(name, r.get("group_key") or ""))
        ]
        done = [r for r in mine if r.get("status") == "done"]
        if not mine:
            trained = [r for r in runs if r.get("source") == "kdtui"]
            if close := close_names(name, trained):  # a typo, most likely
                raise LookupError(
                    f"no experiment named {name!r} in this file or the store "
                    f"(close: {', '.join(close)})"
                )
            return None
        latest = max(done or mine, key=lambda r: r.get("created", 0))
        if len(keys := sorted({r["group_key"] for r in done or mine})) > 1:
            raise LookupError(
                f"{name!r} names {len(keys)} groups in the store ({', '.join(keys)}); "
                f"give the group key of the one to use, e.g. {latest['group_key']!r} (the newest)"
            )
        spec = store.read_spec(latest["run_id"])["experiment"]
        seeds = tuple(sorted({r["seed"] for r in done if r["group_key"] == latest["group_key"]}))
        from kdtui.spec import StoreGroup

        return StoreGroup(name, latest["group_key"], spec["student"], spec["data"], seeds)

    return lookup


def _frozen_experiment(exp: Experiment, seed: int) -> dict[str, Any]:
    """The experiment as one run sees it: one seed (input paths are already absolute)."""
    return {**exp.model_dump(mode="json"), "seeds": [seed]}


def plan(spec: LoadedSpec) -> list[dict[str, Any]]:
    """One frozen run spec per experiment × seed, in file order."""
    created = time.time()
    out = []
    for exp in spec.experiments:
        name = str(exp.name)
        for seed in exp.seeds:
            teachers = []
            for t in exp.teachers:
                ref = t.experiment
                key = spec.group_keys.get(ref) or (spec.store_refs[ref].group_key if ref else None)
                teachers.append(
                    {
                        "name": ref,
                        "group_key": key,
                        "pick": t.pick,
                        "seed": seed if t.pick == "same-seed" else None,
                    }
                )
            out.append(
                {
                    "run_id": new_run_id(name, seed),
                    "seed": seed,
                    "group_key": spec.group_keys[name],
                    "created": created,
                    "label": exp.label(),
                    "loss_label": exp.loss_label(),
                    "experiment": _frozen_experiment(exp, seed),
                    "needs": [t for t in teachers if t["group_key"]],
                    "spec_file": spec.source,
                    "kdtui_version": __version__,
                }
            )
            created += 1e-6  # keeps file order when sorting by creation time
    return out


def seeds_in_store(runs: list[dict[str, Any]], loaded: LoadedSpec) -> dict[str, list[int]]:
    """Per experiment, the seeds its group already has done, queued or running runs of
    (among ``runs``, the store's): launching them trains them again, and a seed's latest
    run is the one that counts."""
    have: dict[str, set[Any]] = {}
    for r in runs:
        if r.get("status") in ACTIVE or r.get("status") == "done":
            have.setdefault(r.get("group_key", ""), set()).add(r.get("seed"))
    again = {
        str(exp.name): sorted(set(exp.seeds) & have.get(loaded.group_keys[str(exp.name)], set()))
        for exp in loaded.experiments
    }
    return {name: seeds for name, seeds in again.items() if seeds}


def names_taken(runs: list[dict[str, Any]], loaded: LoadedSpec) -> dict[str, list[str]]:
    """Experiments whose name already names another configuration (group) among ``runs``
    (the store's), with those groups' keys: after this launch a teacher named so from the
    store is ambiguous."""
    others: dict[str, set[str]] = {}
    for r in runs:
        if r.get("source", "kdtui") == "kdtui":
            others.setdefault(r.get("name", ""), set()).add(r.get("group_key", ""))
    taken = {
        str(exp.name): sorted(others.get(str(exp.name), set()) - {loaded.group_keys[str(exp.name)]})
        for exp in loaded.experiments
    }
    return {name: keys for name, keys in taken.items() if keys}


def seeds_text(again: dict[str, list[int]]) -> str:
    """``seeds_in_store`` in words: ``teacher seeds 0, 1; student seed 2``."""
    return "; ".join(
        f"{name} seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}"
        for name, seeds in again.items()
    )


def without_seeds(loaded: LoadedSpec, skip: dict[str, list[int]]) -> LoadedSpec:
    """The spec less the seeds in ``skip`` (by experiment), and less experiments left with
    none. Students keep their teachers' group keys, so they pick the runs in the store."""
    experiments = []
    for exp in loaded.experiments:
        seeds = [s for s in exp.seeds if s not in skip.get(str(exp.name), [])]
        if seeds:
            experiments.append(exp.model_copy(update={"seeds": seeds}))
    return dataclasses.replace(loaded, experiments=experiments)


def enqueue(
    store: Store,
    spec: LoadedSpec,
    executor: Executor | None = None,
    *,
    launch: dict[str, Any] | None = None,
) -> list[str]:
    """Create the runs of a spec in the store (status ``queued``), each recording which
    executor runs it (local by default), or the ``launch`` record copied from an earlier
    run; returns their ids. Starting them is the executor's ``start``."""
    launch = launch or (executor or LocalExecutor()).frozen()
    run_specs = [{**rs, **launch} for rs in plan(spec)]
    store.add_runs(
        [initial_summary(rs) for rs in run_specs], {rs["run_id"]: rs for rs in run_specs}
    )
    return [rs["run_id"] for rs in run_specs]


def run_experiment(store: Store, frozen: dict[str, Any]) -> dict[str, Any]:
    """A run's frozen experiment, to run again (more seeds, edit as new). A teacher named
    by an experiment name that no longer finds the group the run trained with (the name
    now names a newer group too) is pinned to that group's key."""
    experiment = copy.deepcopy(frozen["experiment"])
    trained = {n.get("name"): n["group_key"] for n in frozen.get("needs") or []}
    lookup = store_lookup(store)
    for teacher in experiment.get("teachers") or []:
        ref = teacher.get("experiment")
        if ref not in trained:
            continue
        try:
            found = lookup(ref)
        except LookupError:
            found = None
        if found is None or found.group_key != trained[ref]:
            teacher["experiment"] = trained[ref]
    return experiment


#: What a run's spec.json records about its launch (the executors' ``frozen()``).
LAUNCH_FIELDS = ("executor", "sbatch")


def more_seeds(store: Store, run_id: str, seeds: list[Any]) -> list[str]:
    """Queue more seeds of ``run_id``'s configuration and start them the way it was
    launched (locally, or by Slurm with the same sbatch options); returns the new ids.
    Raises SpecError for bad seeds or a teacher that is gone from the store, ValueError for
    seeds the group already has (a second run of a seed would count twice)."""
    from kdtui.spec import validate_spec  # pydantic stays out of `kdtui ls`'s import

    frozen = store.read_spec(run_id)
    experiment = {**run_experiment(store, frozen), "seeds": seeds}
    loaded = validate_spec(
        experiment,
        source=run_id,
        default_name=experiment["name"],
        store_lookup=store_lookup(store),
    )
    key = loaded.group_keys[experiment["name"]]
    taken = {r.get("seed"): r["run_id"] for r in store.runs() if r.get("group_key") == key}
    if again := [f"{s} ({taken[s]})" for s in seeds if s in taken]:
        raise ValueError(f"the group already has seed(s) {', '.join(again)}; resume a run instead")
    launch = {k: v for k, v in frozen.items() if k in LAUNCH_FIELDS}
    run_ids = enqueue(store, loaded, launch=launch)
    start_runs(store, run_ids)
    return run_ids


#: Summary fields of a previous attempt that a requeued run must not inherit: a stale
#: cancel request or Slurm job would otherwise be judged as the new attempt's.
_ATTEMPT_FIELDS = (
    "error",
    "pid",
    "cancel_requested",
    "job_id",
    "node",
    "slurm_state",
    "slurm_reason",
)


def requeue(store: Store, run_ids: list[str]) -> list[str]:
    """Put finished-but-not-done runs back in the queue and hand them to their executors
    (resume picks up ``last.pt``); returns the ids that went back. Students that failed
    without starting because one of these teachers could not succeed go back too: their
    failure was only the teacher's."""
    fields = {"status": "queued", **dict.fromkeys(_ATTEMPT_FIELDS)}
    again = [
        run_id
        for run_id in run_ids
        if store.update(run_id, fields, if_status={"failed", "crashed", "cancelled"})
    ]
    teachers = set(again)
    while teachers:
        runs = store.runs()
        teachers = {
            r["run_id"]
            for r in runs
            if r.get("status") == "failed"
            and not r.get("started")
            # a same-seed student only when its own seed of the teacher goes back
            and any(
                t["run_id"] in teachers for n in r.get("needs") or [] for t in need_group(n, runs)
            )
            and store.update(r["run_id"], fields, if_status={"failed"})
        }
        again += sorted(teachers)
    start_runs(store, again)
    return again


# ---------------------------------------------------------------------- executors


class ExecutorError(Exception):
    """Runs cannot be started this way from here; said before anything is queued."""


class Executor(Protocol):
    """Who starts a run's engine and who stops it. How a run's status is judged follows
    the ``executor`` field of its summary too (``Store.reconcile``)."""

    name: ClassVar[str]

    def check(self, store: Store, log: Callable[[str], None]) -> None:
        """Raise ExecutorError, before anything is queued, when runs could not start."""

    def frozen(self) -> dict[str, Any]:
        """What each run's spec.json records about its launch (resume reuses it)."""

    def start(self, store: Store, run_ids: list[str]) -> None:
        """Set queued runs going."""

    def stop(self, store: Store, run: dict[str, Any]) -> bool:
        """Stop one queued or running run whose ``cancel_requested`` is set; True when it
        was cancelled or told to stop."""


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
        writes a ``cancelled`` end event); the runner SIGKILLs after a grace time."""
        if run["status"] == "queued":
            return cancel_queued(store, run["run_id"])
        if run.get("host") != socket.gethostname():
            return True  # never signal a pid of another host: its engine reads the request
        pid, started = run.get("pid") or 0, run.get("pid_start")
        if pid > 1 and started is not None and procs.is_alive(pid, started):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, 15)
            return True
        return False


def executor_for(name: str) -> Executor:
    """The executor that started existing runs, by the ``executor`` of their summary."""
    if name == "slurm":
        from kdtui.slurm import SlurmExecutor  # it builds on this module

        return SlurmExecutor()
    return LocalExecutor()


def start_runs(store: Store, run_ids: list[str]) -> None:
    """Hand queued runs to the executors recorded in their summaries."""
    by_executor: dict[str, list[str]] = {}
    for run_id in run_ids:
        run = store.get(run_id) or {}
        by_executor.setdefault(run.get("executor", "local"), []).append(run_id)
    for name, ids in by_executor.items():
        executor_for(name).start(store, ids)


def stop_runs(store: Store, run_ids: list[str]) -> list[str]:
    """Cancel queued or running runs through their executors; returns those it reached.
    The request is recorded first, so an engine told to stop knows it was asked to."""
    stopped = []
    for run_id in run_ids:
        run = store.update(run_id, {"cancel_requested": time.time()}, if_status=ACTIVE)
        if run is not None and executor_for(run.get("executor", "local")).stop(store, run):
            stopped.append(run_id)
    return stopped


def cancel_queued(store: Store, run_id: str) -> bool:
    """A run that never started ends ``cancelled`` at once."""
    event = {"type": "end", "status": "cancelled", "reason": "cancelled before it started"}
    # one locked step: the runner may be starting this very run
    return store.record_event(run_id, event, if_status={"queued"}) is not None


# ---------------------------------------------------------------------- the runner


def write_runner_config(store: Store, **config: Any) -> None:
    """Slots for the runner (it re-reads this file every tick): jobs, gpus, per_gpu."""
    store.root.mkdir(parents=True, exist_ok=True)
    current = read_runner_config(store)
    current.update({k: v for k, v in config.items() if v is not None})
    atomic_write(store.root / RUNNER_CONFIG, json.dumps(current).encode())


def read_runner_config(store: Store) -> dict[str, Any]:
    try:
        return json.loads((store.root / RUNNER_CONFIG).read_text())
    except (OSError, ValueError):
        return {}


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
        for r in store.runs()
        if r.get("status") == "queued"
        and r.get("executor", "local") == "local"
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
    with open(store.root / "runner.log", "ab") as log:
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
