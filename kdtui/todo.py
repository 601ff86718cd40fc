"""The TODO checklist's logic, shared by ``kdtui todo`` and the app's TODO screen.

An item is free text, or linked to a group (an experiment name or group key) with a seed
target. A linked item's progress is counted from the store each time it is shown — the
distinct seeds of that name or key with a finished run — and it counts as done once the
target is met, so it ticks itself without anyone writing to the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kdtui.store import close_names

DEFAULT_TARGET = 3  # seeds a linked item asks for unless told otherwise


@dataclass(frozen=True)
class TodoItem:
    id: str
    text: str
    done: bool  # ticked by hand, or a linked target met
    ticked: bool  # ticked by hand
    group: str | None
    target: int | None
    progress: int | None  # finished seeds of the linked group
    order: float

    @property
    def progress_text(self) -> str:
        return f"{self.progress}/{self.target}" if self.group else ""


def done_seeds(runs: Iterable[dict[str, Any]]) -> dict[str, set[int]]:
    """Experiment name, and group key, → seeds with a finished (done) run: an item may be
    linked by either."""
    out: dict[str, set[int]] = {}
    for r in runs:
        if r.get("status") == "done":
            for key in {r.get("name", ""), r.get("group_key") or ""} - {""}:
                out.setdefault(key, set()).add(r.get("seed", 0))
    return out


def todo_items(todos: list[dict[str, Any]], runs: Iterable[dict[str, Any]]) -> list[TodoItem]:
    """Todos in their order, with linked progress counted from the run summaries."""
    seeds = done_seeds(runs)
    items = []
    for t in todos:
        group = t.get("group") or None
        target = int(t.get("target") or 1) if group else None
        progress = len(seeds.get(group, ())) if group else None
        met = (
            group is not None and progress is not None and target is not None and progress >= target
        )
        ticked = bool(t.get("done"))
        items.append(
            TodoItem(
                t["id"],
                t.get("text", ""),
                ticked or met,
                ticked,
                group,
                target,
                progress,
                t.get("order", 0),
            )
        )
    return items


def group_known(group: str, runs: list[dict[str, Any]]) -> bool:
    """Whether ``group`` names a run's experiment or group key (a typo would make an item
    that never ticks)."""
    return any(group in (r.get("name"), r.get("group_key")) for r in runs)


def close_hint(group: str, runs: list[dict[str, Any]]) -> str:
    """`` (close: a, b)`` with the names close to a group that matches nothing, or ''."""
    close = close_names(group, runs)
    return f" (close: {', '.join(close)})" if close else ""
