"""What every ``kdtui`` command shares: consoles, the workspace option, opening the store
(with crash reconciliation), and number formats."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from kdtui.store import Store, default_workspace

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Workspace = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="KDTUI_WORKSPACE",
        help="Workspace folder (default ./runs).",
        show_default=False,
    ),
]
STATUS_STYLE = {
    "queued": "cyan",
    "running": "yellow",
    "done": "green",
    "failed": "red",
    "crashed": "magenta",
    "cancelled": "dim",
}


def open_store(workspace: Path | None, reconcile: bool = True) -> Store:
    """The workspace's store, with crashed runs detected and any recovery announced."""
    store = Store(workspace or default_workspace())
    if reconcile and store.index_path.exists():
        for line in store.reconcile():
            err.print(f"[magenta]reconciled[/] {escape(line)}")
    for notice in store.notices:
        err.print(f"[yellow]kdtui:[/] {escape(notice)}")
    return store


def fmt_acc(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}"


def fmt_age(ts: float | None) -> str:
    if not ts:
        return "–"
    s = max(0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit}"
    return f"{s:.0f}s"
