"""How runs start and stop, and who can tell whether they still live.

An executor (``base.Executor``) starts a run's engine, stops it, and judges its active
runs: ``local`` (``local.LocalExecutor``: the workspace's queue runner, pid + process start
time, heartbeat for runs of other hosts) and ``slurm`` (``slurm.SlurmExecutor``: one sbatch
job per run, judged by squeue/sacct). A run's summary names its executor; ``executor_for``
gives it back, and ``reconcile`` — the one place that settles runs whose engine can no
longer speak for itself — asks each executor for its verdicts and writes them.

Layering: this package builds on ``kdtui.store``, ``kdtui.needs`` and ``kdtui.procs``; the
launcher, the CLI and the TUI build on it; nothing below imports it.
"""

from __future__ import annotations

from typing import Any

from kdtui.executors.base import (
    Executor,
    ExecutorError,
    Verdict,
    cancel_queued,
    end_event,
    heartbeat_stale_s,
    stale_heartbeat,
)
from kdtui.executors.local import LocalExecutor
from kdtui.safefs import SymlinkRefused
from kdtui.store import ACTIVE, RUN_ID_PATTERN, Store, append_event, fold_event

__all__ = [
    "Executor",
    "ExecutorError",
    "LocalExecutor",
    "Verdict",
    "cancel_queued",
    "end_event",
    "executor_for",
    "heartbeat_stale_s",
    "reconcile",
    "stale_heartbeat",
]


def executor_for(name: str | None) -> Executor:
    """The executor that started existing runs, by the ``executor`` of their summary."""
    if name == "slurm":
        from kdtui.executors.slurm import SlurmExecutor  # pydantic: only where Slurm is used

        return SlurmExecutor()
    return LocalExecutor()


def reconcile(store: Store) -> list[str]:
    """Settle active runs whose engine can no longer speak for itself, and refresh what
    their executor says about them; returns one line per run it ended.

    Each executor judges its own runs (``Executor.verdicts``). One rule holds for all: a
    run the user asked to stop (``cancel_requested``) whose engine is gone without an end
    event ends ``cancelled``, not ``crashed`` — it may have been killed before it could
    handle the signal — so ``resume --all-crashed`` never retrains what the user stopped.
    A summary whose run id is not a valid one (a planted folder) is never judged."""

    def is_active(d: dict[str, Any]) -> bool:
        return d.get("status") in ACTIVE and bool(RUN_ID_PATTERN.match(str(d.get("run_id", ""))))

    if not any(is_active(d) for d in store.summaries()):  # mostly none: copy nothing
        return []
    runs = store.runs()
    active = [d for d in runs if is_active(d)]
    by_executor: dict[str, list[dict[str, Any]]] = {}
    for doc in active:
        name = "slurm" if doc.get("executor") == "slurm" else "local"
        by_executor.setdefault(name, []).append(doc)
    verdicts: dict[str, Verdict] = {}
    for name, docs in by_executor.items():
        verdicts.update(executor_for(name).verdicts(store, docs, runs))
    changed = []
    for doc in active:
        if doc["run_id"] not in verdicts:
            continue
        fields, event = verdicts[doc["run_id"]]
        if event is not None and doc.get("cancel_requested"):
            event = _asked_to_stop(event)
        try:
            new = _apply(store, doc, fields, event)
        except SymlinkRefused as exc:  # a planted link never stops the other runs
            changed.append(f"{doc['run_id']}: end event not written ({exc})")
            continue
        if new is not None and event is not None:
            changed.append(f"{doc['run_id']}: {new['status']} ({new.get('error')})")
    return changed


def _asked_to_stop(event: dict[str, Any]) -> dict[str, Any]:
    """A crash of a run the user had asked to stop is the cancel it asked for."""
    if event.get("type") == "end" and event.get("status") == "crashed":
        return end_event("cancelled", f"cancelled by the user ({event['reason']})", event["time"])
    return event


def _apply(
    store: Store, doc: dict[str, Any], fields: dict[str, Any], event: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Write one verdict, only while the run's status is still the one judged."""

    def change(d: dict[str, Any]) -> None:
        if event is not None:
            fold_event(d, event)
        d.update(fields)

    new = store.modify(doc["run_id"], change, if_status={doc["status"]})
    if new is not None and event is not None:
        append_event(store.run_dir(doc["run_id"]), event)
    return new
