"""The kdtui terminal app: runs, run detail, compose, results, TODO.

One background poll reads the store about once a second — only when the index file has
changed — and publishes an immutable ``Snapshot``; screens render from it. Writes go
through workers. Training is started only by the launcher's queue runner, in its own
session, so closing the app (or losing SSH) stops nothing. Nothing here imports torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import termios
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.reactive import var
from textual.screen import ModalScreen, Screen
from textual.widgets import Static
from textual.worker import Worker, get_current_worker

from kdtui import launcher
from kdtui.screens.compose import ComposeScreen
from kdtui.screens.results import ResultsScreen
from kdtui.screens.runs import RunsScreen
from kdtui.screens.todo import TodoScreen
from kdtui.store import Store, StoreError

RECONCILE_EVERY_S = 15.0
FIRST_RECONCILE_S = 2.0
SCREENS_HELP = {
    "runs": "Every run in the workspace, live.",
    "compose": "Build one experiment, validated as you type; save, load, launch.",
    "results": "One row per configuration: per-seed accuracy and mean ± std.",
    "todo": "The experiments still to run; linked items tick themselves.",
}


MOUSE_HELP = (
    "Mouse: click a column title to sort by it, a row to move to it, twice to open it; "
    "click ✓ boxes to tick or select; the keys in the footer are buttons too.\n"
    "ctrl+p opens the command palette: every action of the screen, by name."
)


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


class HelpScreen(ModalScreen[None]):
    """Every key of every screen, from the screens' own bindings."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        from kdtui.screens.run_detail import RunDetailScreen

        sections: list[tuple[str, str, Iterable[BindingType]]] = [
            ("Everywhere", "", KdApp.BINDINGS),
            *(
                (name.title(), SCREENS_HELP[name], KdApp.MODES_CLASSES[name].BINDINGS)
                for name in KdApp.MODES_CLASSES
            ),
            ("Run detail", "One run: curves, log, spec.", RunDetailScreen.BINDINGS),
        ]
        parts: list[Any] = []
        for title, about, bindings in sections:
            parts.append(Text(title, style="bold"))
            if about:
                parts.append(Text(f"  {about}", style="italic"))
            # A grid, so a long description wraps under itself, never under the keys.
            keys = Table.grid(padding=(0, 1))
            keys.add_column(min_width=13, style="bold", no_wrap=True)
            keys.add_column()
            for b in bindings:
                if isinstance(b, Binding) and b.description:
                    shown = b.key_display or ", ".join(k.strip() for k in b.key.split(","))
                    keys.add_row(f"  {shown}", b.tooltip or b.description)
            parts += [keys, Text()]
        parts.append(Text(MOUSE_HELP, style="italic"))
        text = Group(*parts)
        with VerticalScroll() as box:
            box.border_title = "kdtui keys"
            yield Static(text)


class KdApp(App[None]):
    """The app. ``clock`` and ``devices`` are injectable so screenshots are reproducible."""

    TITLE = "kdtui"
    MODES_CLASSES: ClassVar[dict[str, type[Screen]]] = {
        "runs": RunsScreen,
        "compose": ComposeScreen,
        "results": ResultsScreen,
        "todo": TodoScreen,
    }
    MODES: ClassVar[dict[str, Callable[[], Screen]]] = dict(MODES_CLASSES)
    DEFAULT_MODE = "runs"
    NAV = Binding.Group("screens", compact=True)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "switch_mode('runs')", "Runs", group=NAV),
        Binding("2", "switch_mode('compose')", "Compose", group=NAV),
        Binding("3", "switch_mode('results')", "Results", group=NAV),
        Binding("4", "switch_mode('todo')", "TODO", group=NAV),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]
    CSS = """
    Screen { layout: vertical; }
    .bar { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """

    snapshot: var[Snapshot | None] = var(None, init=False)

    def __init__(
        self,
        workspace: Path,
        *,
        clock: Callable[[], float] = time.time,
        devices: str | None = None,
        poll_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.store = Store(workspace, lock_timeout_s=3.0)
        self.clock = clock
        self.devices = devices
        self.poll_s = poll_s
        self._poller: Worker | None = None
        self._stamp: tuple[int, int, int] | None = None
        # The first crash check waits until the first screen is drawn (it reads the index
        # again, and would slow the first frame of a large workspace down).
        self._reconciled = time.monotonic() - RECONCILE_EVERY_S + FIRST_RECONCILE_S
        self._trouble = ""
        self.composer: ComposeScreen | None = None  # once the compose screen was opened

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self._update_subtitle()
        if self.devices is None:
            self._find_devices()
        self.poll()
        self.set_interval(self.poll_s, self.poll)
        if not self.is_headless:
            # An SSH drop hangs the terminal up: leave cleanly rather than spin on EOF.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)
            self.set_interval(2.0, self._check_terminal)

    def _check_terminal(self) -> None:
        try:
            termios.tcgetattr(sys.__stdin__.fileno())
        except (OSError, ValueError, termios.error):
            self.exit()

    @work(thread=True, group="devices")
    def _find_devices(self) -> None:
        from kdtui.runner import discover_gpus  # nvidia-smi, no torch

        config = launcher.read_runner_config(self.store)
        gpus = [str(g) for g in config.get("gpus") or discover_gpus()]
        if gpus:
            text = f"GPU {','.join(gpus)} ×{config.get('per_gpu') or 1}"
        else:
            text = f"cpu ×{config.get('jobs') or 1}"
        self.call_from_thread(self._set_devices, text)

    def _set_devices(self, text: str) -> None:
        self.devices = text
        self._update_subtitle()

    # ------------------------------------------------------------------ the store

    def poll(self) -> None:
        """Start a read of the store unless one is still going (polls never overlap)."""
        if self._poller is None or self._poller.is_finished:
            self._poller = self._read_store()

    @work(thread=True, group="poll")
    def _read_store(self) -> None:
        store, worker = self.store, get_current_worker()
        try:
            try:
                st = os.stat(store.index_path)
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                stamp = (0, 0, 0)
            if stamp != self._stamp or self.snapshot is None:
                snapshot = Snapshot(store.runs(), store.todos())
                if worker.is_cancelled:
                    return
                self._stamp = stamp
                self.call_from_thread(self._publish, snapshot)
            # Crash detection writes to the store; its changes show at the next poll.
            now = time.monotonic()
            if now - self._reconciled > RECONCILE_EVERY_S and store.index_path.exists():
                self._reconciled = now
                store.reconcile()
                if waiting := launcher.revive_runner(store):
                    self.call_from_thread(
                        self.notify, f"restarted the queue runner: {waiting} queued runs"
                    )
        except (StoreError, OSError) as exc:
            # A writer holding the lock, or a file mid-recovery: try again next tick.
            if not worker.is_cancelled:
                self.call_from_thread(self._store_trouble, str(exc))

    def _publish(self, snapshot: Snapshot) -> None:
        self._trouble = ""
        self.snapshot = snapshot
        for notice in self.store.notices:
            self.notify(notice, severity="warning", timeout=10)
        self.store.notices.clear()

    def _store_trouble(self, message: str) -> None:
        if message != self._trouble:
            self._trouble = message
            self.notify(f"store: {message} (retrying)", severity="warning")
        self._update_subtitle()

    def watch_snapshot(self) -> None:
        self._update_subtitle()

    def _update_subtitle(self) -> None:
        parts = [str(self.store.root)]
        if self.devices:
            parts.append(self.devices)
        if self.snapshot is not None:
            parts.append(
                f"{self.snapshot.count('running')} running · {self.snapshot.count('queued')} queued"
            )
        if self._trouble:
            parts.append("store busy")
        self.sub_title = " · ".join(parts)

    # ------------------------------------------------------------------ navigation

    def open_run(self, run_id: str) -> None:
        from kdtui.screens.run_detail import RunDetailScreen  # plotext loads on first use

        self.push_screen(RunDetailScreen(run_id))

    async def edit_run_spec(self, run_id: str) -> None:
        """A run's frozen experiment in the composer, to edit into a new one."""
        await self.switch_mode("compose")
        compose = self.screen
        assert isinstance(compose, ComposeScreen)
        compose.edit_run(run_id)

    async def show_runs(self, text: str) -> None:
        """The runs screen, filtered (from a results row to its runs)."""
        await self.switch_mode("runs")
        runs = self.screen_stack[0]
        assert isinstance(runs, RunsScreen)
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        runs.show_filter(text)

    # ------------------------------------------------------------------ commands

    async def action_quit(self) -> None:
        """Quit; the runs go on. Edits in the composer not saved or launched are asked for."""
        if self.composer is not None and self.composer.has_edits():
            self.composer.unless_edited("Quit, dropping the composer's edits?", self.exit)
        else:
            self.exit()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette offers the screens and every action of the current screen."""
        yield from super().get_system_commands(screen)
        for name in self.MODES_CLASSES:
            yield SystemCommand(
                f"Go to {name}",
                SCREENS_HELP[name],
                lambda name=name: self.switch_mode(name),
            )
        title = screen.TITLE or type(screen).__name__
        for binding in screen.BINDINGS:
            if isinstance(binding, Binding) and binding.show and binding.description:
                key = binding.key_display or binding.key
                yield SystemCommand(
                    f"{title}: {binding.description}",
                    f"{binding.tooltip} (key {key})" if binding.tooltip else f"key {key}",
                    lambda action=binding.action: screen.run_action(action),
                )


def run_app(workspace: Path) -> None:
    """``kdtui`` with no command: open the app on a workspace."""
    app = KdApp(Path(workspace))
    app.run()
    if app.return_code:  # a crash was printed on exit: say so to the shell too
        raise SystemExit(app.return_code)
