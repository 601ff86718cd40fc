"""What the app hands down to its screens: the store as of one poll (``Snapshot``), and the
few attributes of the app a screen may read (``Host``). Screens import this module, never
the app's, so the app can import every screen without a cycle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kdtui.store import Store


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The store as of one poll. Compared by identity: a new object means new data."""

    runs: list[dict[str, Any]]  # oldest first
    todos: list[dict[str, Any]]
    by_id: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {r["run_id"]: r for r in self.runs})

    def count(self, status: str) -> int:
        return sum(1 for r in self.runs if r.get("status") == status)


class Host(Protocol):
    """The app as a screen sees it: read these; ask for anything else with a message
    (``kdtui.tui.messages``)."""

    store: Store  # reads, and writes in workers
    snapshot: Snapshot | None  # the latest poll; a reactive, screens watch it
    clock: Callable[[], float]  # the time shown (frozen in screenshots)
    poll_s: float  # how often the store is polled
