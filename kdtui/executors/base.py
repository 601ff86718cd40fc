"""What every executor shares: the protocol, the verdict type, and the rules that do not
depend on who started a run (a heartbeat gone stale, a queued run cancelled at once).

Kept apart from ``kdtui.executors`` (the package) so that ``local`` and ``slurm`` build on
it while the package imports them: the arrows point one way only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from kdtui.safefs import read_bytes_nofollow
from kdtui.store import Store

#: What reconcile does to a run: fields to set, and the event (end or error) that ends it.
Verdict = tuple[dict[str, Any], dict[str, Any] | None]


class ExecutorError(Exception):
    """Runs cannot be started this way from here; said before anything is queued."""


class Executor(Protocol):
    """Who starts a run's engine, who stops it, and who can tell whether it still lives.
    A run's summary names its executor (``executor``), so stop, resume and reconcile
    reach the one that started it."""

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

    def verdicts(
        self, store: Store, docs: list[dict[str, Any]], runs: list[dict[str, Any]]
    ) -> dict[str, Verdict]:
        """For these active runs of this executor (``runs``: every summary), what to
        change: an end for a run whose engine can no longer speak for itself, or fresh
        fields. Runs absent from the answer stay as they are."""


def heartbeat_stale_s() -> float:
    """How long a running run may go without a heartbeat before it counts as crashed."""
    return float(os.environ.get("KDTUI_HEARTBEAT_STALE_S", "120"))


def end_event(status: str, reason: str, at: float | None = None) -> dict[str, Any]:
    """The end event that reconcile writes for an engine that could not write its own."""
    return {"type": "end", "status": status, "reason": reason, "time": at or time.time()}


def heartbeat_time(store: Store, run_id: str) -> float:
    """When the engine last wrote its ``heartbeat`` file (0 when there is none)."""
    try:
        raw = read_bytes_nofollow(store.run_dir(run_id) / "heartbeat")
        return float(json.loads(raw)["time"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def stale_heartbeat(store: Store, doc: dict[str, Any], now: float) -> str | None:
    """Why a running run counts as dead by its heartbeat alone, or None."""
    beat = max(doc.get("heartbeat") or 0, heartbeat_time(store, doc["run_id"]))
    if beat and now - beat > heartbeat_stale_s():
        return f"no heartbeat for {now - beat:.0f} s"
    return None


def cancel_queued(store: Store, run_id: str) -> bool:
    """A run that never started ends ``cancelled`` at once."""
    event = {"type": "end", "status": "cancelled", "reason": "cancelled before it started"}
    # one locked step: the runner may be starting this very run
    return store.record_event(run_id, event, if_status={"queued"}) is not None
