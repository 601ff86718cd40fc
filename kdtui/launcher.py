"""From a validated spec to queued runs, and the one queue runner per workspace.

``enqueue`` turns each experiment × seed into a run folder with its frozen spec and a
``queued`` summary. ``ensure_runner`` makes sure a queue runner (``python -m kdtui.runner``)
is alive for the workspace; it is started in its own session, so neither the CLI nor the
TUI is ever the parent of a training process, and closing either (or losing SSH) stops
nothing. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kdtui import __version__
from kdtui.spec import Experiment, LoadedSpec, StoreGroup
from kdtui.store import Store, atomic_write, initial_summary, new_run_id

RUNNER_LOCK = "runner.lock"
RUNNER_CONFIG = "runner.json"


def store_lookup(store: Store):
    """The spec validator's view of the store: a finished group by experiment name."""
    runs = None

    def lookup(name: str) -> StoreGroup | None:
        nonlocal runs
        if runs is None:
            runs = store.runs() if store.index_path.exists() else []
        mine = [r for r in runs if r.get("name") == name and r.get("source") == "kdtui"]
        done = [r for r in mine if r.get("status") == "done"]
        if not mine:
            return None
        latest = max(done or mine, key=lambda r: r.get("created", 0))
        spec = store.read_spec(latest["run_id"])["experiment"]
        seeds = tuple(sorted({r["seed"] for r in done if r["group_key"] == latest["group_key"]}))
        return StoreGroup(name, latest["group_key"], spec["student"], spec["data"], seeds)

    return lookup


def _absolute(path: str, base: Path) -> str:
    return str((base / path).expanduser().resolve())


def _frozen_experiment(exp: Experiment, base: Path, seed: int) -> dict[str, Any]:
    """The experiment as one run sees it: one seed, input paths made absolute."""
    body = exp.model_dump(mode="json")
    body["seeds"] = [seed]
    if body["data"]["dataset"] == "npz":
        body["data"]["path"] = _absolute(body["data"]["path"], base)
    for teacher in body["teachers"]:
        if teacher["checkpoint"]:
            teacher["checkpoint"] = _absolute(teacher["checkpoint"], base)
    return body


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
                    "loss_label": exp.loss.label(),
                    "experiment": _frozen_experiment(exp, spec.base_dir, seed),
                    "needs": [t for t in teachers if t["group_key"]],
                    "spec_file": spec.source,
                    "kdtui_version": __version__,
                }
            )
            created += 1e-6  # keeps file order when sorting by creation time
    return out


def enqueue(store: Store, spec: LoadedSpec) -> list[str]:
    """Create the runs of a spec in the store (status ``queued``); returns their ids."""
    run_specs = plan(spec)
    store.add_runs(
        [initial_summary(rs) for rs in run_specs], {rs["run_id"]: rs for rs in run_specs}
    )
    return [rs["run_id"] for rs in run_specs]


def requeue(store: Store, run_ids: list[str]) -> list[str]:
    """Put finished-but-not-done runs back in the queue (resume picks up ``last.pt``)."""
    again = []
    for run_id in run_ids:
        fields = {"status": "queued", "error": None, "pid": None}
        if store.update(run_id, fields, if_status={"failed", "crashed", "cancelled"}):
            again.append(run_id)
    return again


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


def stop_runs(store: Store, run_ids: list[str]) -> list[str]:
    """Cancel runs: queued ones at once, running ones by SIGTERM to their process group
    (the engine writes a ``cancelled`` end event); the runner SIGKILLs after a grace time."""
    from kdtui import procs

    done = []
    for run_id in run_ids:
        doc = store.get(run_id)
        if doc is None:
            continue
        if doc["status"] == "queued":
            event = {"type": "end", "status": "cancelled", "reason": "cancelled before it started"}
            if store.update(run_id, {}, if_status={"queued"}) is not None:
                store.record_event(run_id, event)
                done.append(run_id)
        elif (
            doc["status"] == "running"
            and doc.get("pid")
            and procs.is_alive(doc["pid"], doc.get("pid_start"))
        ):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(doc["pid"], 15)
            store.update(run_id, {"cancel_requested": time.time()})
            done.append(run_id)
    return done
