"""One launch path: from a spec to queued runs handed to their executor.

``prepare_launch`` is what ``kdtui run`` and the composer both call: it validates the spec,
checks the executor, finds the seeds the store already has and the names that already name
another configuration, enqueues (one run folder with its frozen spec and a ``queued``
summary per experiment × seed) and starts the runs; its ``Launch`` result says what to
tell the user, and the callers only present it. Stop, resume and more seeds also go through
here, to the executor each run's summary names (``kdtui.executors``). Nothing here imports
torch, and the spec models only when a launch needs them.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdtui import __version__
from kdtui.executors import Executor, ExecutorError, LocalExecutor, executor_for
from kdtui.executors.local import read_runner_config, revive_runner, slot_changes
from kdtui.needs import need_group
from kdtui.safefs import symlinks_in
from kdtui.store import (
    ACTIVE,
    Store,
    StoreError,
    close_names,
    initial_summary,
    names_key,
    new_run_id,
)

if TYPE_CHECKING:  # the spec models cost ~0.15 s to import: only a launch needs them
    from kdtui.spec import Experiment, LoadedSpec, StoreGroup

# The TUI reads the runner's slots and revives a stranded queue through the launcher.
__all__ = ["Executor", "ExecutorError", "LocalExecutor", "read_runner_config", "revive_runner"]


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


class LinkedRunFiles(StoreError):
    """A run folder holds a symbolic link where kdtui would write (its log, events,
    checkpoints): kdtui never writes through one, so it does not resume that run."""


def refuse_linked(store: Store, run_ids: list[str]) -> None:
    """Raise LinkedRunFiles, naming the first such run and its links, before anything of
    a resume is written."""
    for run_id in run_ids:
        if linked := symlinks_in(store.run_dir(run_id)):
            are = "is a symbolic link" if len(linked) == 1 else "are symbolic links"
            what = f"{', '.join(linked)} {are}"
            raise LinkedRunFiles(
                f"{run_id}: {what}; kdtui does not write through links (make them plain files, "
                "or remove the run)"
            )


def requeue(store: Store, run_ids: list[str]) -> list[str]:
    """Put finished-but-not-done runs back in the queue and hand them to their executors
    (resume picks up ``last.pt``); returns the ids that went back. Students that failed
    without starting because one of these teachers could not succeed go back too: their
    failure was only the teacher's. A run folder with a linked file is refused first
    (``LinkedRunFiles``)."""
    refuse_linked(store, run_ids)
    fields = {"status": "queued", **dict.fromkeys(_ATTEMPT_FIELDS)}
    with store.batch():  # one write, decided under the lock
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
                    t["run_id"] in teachers
                    for n in r.get("needs") or []
                    for t in need_group(n, runs)
                )
                and store.update(r["run_id"], fields, if_status={"failed"})
            }
            again += sorted(teachers)
    start_runs(store, again)
    return again


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
    One write records every request and ends the queued local runs (decided under the
    lock: the runner may be starting one); engines are signalled and Slurm jobs cancelled
    after it, so an engine told to stop knows it was asked to."""
    now, stopped, later = time.time(), set(), []
    with store.batch():
        for run_id in dict.fromkeys(run_ids):
            run = store.update(run_id, {"cancel_requested": now}, if_status=ACTIVE)
            if run is None:
                continue
            if run["status"] == "queued" and run.get("executor", "local") == "local":
                if executor_for("local").stop(store, run):
                    stopped.add(run_id)
            else:
                later.append(run)
    # a run the batch had to leave as it was (a planted link for its events) is not stopped
    stopped = {i for i in stopped if (store.get(i) or {}).get("status") != "queued"}
    for run in later:
        if executor_for(run.get("executor", "local")).stop(store, run):
            stopped.add(run["run_id"])
    return [run_id for run_id in dict.fromkeys(run_ids) if run_id in stopped]


# ---------------------------------------------------------------------- one launch path


@dataclass
class Launch:
    """What a launch did, for its caller to present (nothing here prints)."""

    loaded: LoadedSpec  # what was queued: the spec less any seeds left out
    executor: Executor
    stored: list[dict[str, Any]]  # the store's runs before the launch
    #: Seeds the store has already, per experiment (left out with ``skip_done``).
    again: dict[str, list[int]] = field(default_factory=dict)
    skipped: bool = False
    #: Experiments whose name already names another configuration: their group keys.
    taken: dict[str, list[str]] = field(default_factory=dict)
    #: The workspace runner's slots this launch changes (``jobs 2 → 1``).
    slots: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)

    def notes(self, skip_hint: str = "") -> list[str]:
        """Warnings in words: the launch went ahead, but the user should know these.
        ``skip_hint`` follows the seeds-again note (how the caller leaves them out)."""
        out = []
        if self.slots:  # the runner serves every run of the workspace: say so
            out.append(
                f"the workspace's slots change ({', '.join(self.slots)}): queued runs of "
                "earlier launches share them"
            )
        for name, keys in self.taken.items():
            out.append(
                f"{name!r} already names another configuration (group "
                f"{', '.join(k[:12] for k in keys)}): a student naming it from the store will "
                "have to give a group key"
            )
        if self.again and not self.skipped:
            out.append(
                f"the store has {seeds_text(self.again)} already: trained again, the latest "
                f"run counts{skip_hint}"
            )
        return out

    def group_keys(self) -> set[str]:
        """The groups of the spec as given (skipped seeds' groups too)."""
        return set(self.loaded.group_keys.values())


def prepare_launch(
    store: Store,
    spec: Path | dict[str, Any] | list[Any],
    executor: Executor,
    *,
    base_dir: Path = Path(),
    source: str = "spec",
    skip_done: bool = False,
    log: Callable[[str], None] = lambda line: None,
) -> Launch:
    """Validate ``spec`` (a file, or the parsed JSON with the folder its paths are
    relative to), check that ``executor`` can start runs from here, compare with the store
    (seeds it has, names it uses for another configuration), enqueue and start.

    Raises SpecError (nothing written) or ExecutorError (nothing queued). With
    ``skip_done`` the seeds the store has are left out; when none is left, nothing is
    queued and ``run_ids`` is empty. ``log`` hears what a slow check is doing."""
    from kdtui.spec import load_spec, validate_spec

    lookup = store_lookup(store)
    if isinstance(spec, Path):
        loaded = load_spec(spec, store_lookup=lookup)
    else:
        loaded = validate_spec(spec, base_dir=base_dir, source=source, store_lookup=lookup)
    slots = slot_changes(store, executor) if isinstance(executor, LocalExecutor) else []
    executor.check(store, log)
    stored = store.runs() if store.index_path.exists() else []
    launch = Launch(loaded, executor, stored, slots=slots)
    launch.taken = names_taken(stored, loaded)
    launch.again = seeds_in_store(stored, loaded)
    if launch.again and skip_done:
        launch.loaded, launch.skipped = without_seeds(loaded, launch.again), True
        if not launch.loaded.experiments:
            return launch
    launch.run_ids = enqueue(store, launch.loaded, executor)
    executor.start(store, launch.run_ids)
    wanted = set(launch.run_ids)
    launch.job_ids = [
        r["job_id"] for r in store.runs() if r["run_id"] in wanted and r.get("job_id")
    ]
    return launch


def choose_executor(store: Store, name: str, **options: Any) -> Executor:
    """The executor called ``name`` with its options: ``jobs``, ``gpus``, ``per_gpu`` for
    local; ``partition``, ``gpus_per_run``, ``time_limit``, ``extra`` for Slurm (over the
    workspace's slurm.json). Raises ExecutorError for bad Slurm options."""
    if name == "slurm":
        from kdtui.executors.slurm import SlurmExecutor, SlurmOptions  # pydantic

        return SlurmExecutor(SlurmOptions.load(store, **options))
    return LocalExecutor(**options)
