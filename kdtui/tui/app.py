"""The kdtui terminal app: runs, run detail, compose, results, TODO.

One background poll reads the store about once a second — only when the index file has
changed — and publishes an immutable ``Snapshot``; screens render from it and ask for
anything else with messages (``kdtui.tui.messages``), which the app handles here: it owns
the navigation and the polling, and no screen imports it. Writes go through workers.
Training is started only by the launcher's queue runner, in its own session, so closing
the app (or losing SSH) stops nothing. Nothing here imports torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import termios
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import var
from textual.screen import Screen
from textual.worker import Worker, get_current_worker

from kdtui import executors, launcher
from kdtui.screens.runs import RunsScreen
from kdtui.store import Store, StoreError
from kdtui.tui.help import HelpScreen, Section
from kdtui.tui.messages import (
    CompareRuns,
    EditRunAsNew,
    OpenRun,
    ShowCurves,
    ShowRuns,
    StoreWritten,
)
from kdtui.tui.snapshot import Snapshot
from kdtui.widgets import Prompt

if TYPE_CHECKING:
    from kdtui.screens.compose import ComposeScreen

RECONCILE_EVERY_S = 15.0
FIRST_RECONCILE_S = 2.0
SCREENS_HELP = {
    "runs": "Every run in the workspace, live.",
    "compose": "A whole spec file (defaults, experiments, grids), validated as you type; save, load, launch.",
    "results": "One row per configuration: per-seed accuracy and mean ± std.",
    "todo": "The experiments still to run; linked items tick themselves.",
}
QUIT_EDITS = "Quit, dropping the composer's edits?"
CURVES_HELP = "Selected groups or runs on one chart (c in results or runs), a metric per tab."
COMPARE_HELP = "Two selected runs' insides (i in runs): confusion difference, per-class accuracy."


def _runs() -> type[Screen]:
    return RunsScreen


def _compose() -> type[Screen]:
    from kdtui.screens.compose import ComposeScreen  # the spec's pydantic models

    return ComposeScreen


def _results() -> type[Screen]:
    from kdtui.screens.results import ResultsScreen

    return ResultsScreen


def _todo() -> type[Screen]:
    from kdtui.screens.todo import TodoScreen

    return TodoScreen


class Mode:
    """A screen of the app's own (keys 1-4), built when first shown, its module imported
    then unless the warm-up after the first frame did it already (the composer's loads the
    spec's pydantic models: a third of the app's start). Textual restyles the whole app
    twice when a mode's screen is first shown, in case the CSS changed since the screen
    was made; one made that moment is styled as it mounts, so it is marked as up to date
    (the restyling cost 0.1-0.3 s of CPU per first visit)."""

    def __init__(self, load: Callable[[], type[Screen]]) -> None:
        self.load = load

    def __call__(self) -> Screen:
        screen = self.load()()
        screen._css_update_count = screen.app._css_update_count  # Textual 8's CSS stamp
        return screen


def devices_text(config: dict[str, Any], gpus: list[str]) -> str:
    """The header's slots: the runner's GPUs (or those found) × runs per GPU, else CPU jobs."""
    chosen = [str(g) for g in config.get("gpus") or gpus]
    if chosen:
        return f"GPU {','.join(chosen)} ×{config.get('per_gpu') or 1}"
    return f"cpu ×{config.get('jobs') or 1}"


class KdApp(App[None]):
    """The app. ``clock`` and ``devices`` are injectable so screenshots are reproducible;
    without ``devices`` the header follows the workspace's runner settings (runner.json)."""

    TITLE = "kdtui"
    OWN_MODES: ClassVar[dict[str, Mode]] = {
        "runs": Mode(_runs),
        "compose": Mode(_compose),
        "results": Mode(_results),
        "todo": Mode(_todo),
    }
    MODES: ClassVar[dict[str, Callable[[], Screen]]] = dict(OWN_MODES)
    DEFAULT_MODE = "runs"
    NAV = Binding.Group("screens", compact=True)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "switch_mode('runs')", "Runs", group=NAV),
        Binding("2", "switch_mode('compose')", "Compose", group=NAV),
        Binding("3", "switch_mode('results')", "Results", group=NAV),
        Binding("4", "switch_mode('todo')", "TODO", group=NAV),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        # A reflex should not close the app: Ctrl-C asks (a second Ctrl-C says yes).
        Binding("ctrl+c", "ask_quit", show=False, priority=True),
        # Tab moves the focus as the app reads it, before the keys typed after it: Textual
        # hands a key to the focused field first and acts on Tab only once it has bubbled
        # back up, by when the next keys (on a loaded box) went to the field just left.
        Binding("tab", "focus_next", show=False, priority=True),
        Binding("shift+tab", "focus_previous", show=False, priority=True),
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
        self._stamp: tuple[Any, ...] | None = None  # the index as of the last read
        # The header follows runner.json (``kdtui run --jobs 2`` changes the slots) unless
        # the devices were given; the GPUs themselves are looked for once.
        self._follow_devices = devices is None
        self._runner_config: dict[str, Any] | None = None
        self._found_gpus: list[str] | None = None
        # The first crash check waits until the first screen is drawn (it reads the index
        # again, and would slow the first frame of a large workspace down).
        self._reconciled = time.monotonic() - RECONCILE_EVERY_S + FIRST_RECONCILE_S
        self._trouble = ""
        self._quit_question: Prompt | None = None

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self._update_subtitle()
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

    # ------------------------------------------------------------------ the store

    def poll(self) -> None:
        """Start a read of the store unless one is still going (polls never overlap)."""
        if self._poller is None or self._poller.is_finished:
            self._poller = self._read_store()

    @work(thread=True, group="poll")
    def _read_store(self) -> None:
        store, worker = self.store, get_current_worker()
        try:
            stamp = store.stamp()  # kdtui.json and its journal
            if stamp != self._stamp or self.snapshot is None:
                snapshot = Snapshot(store.runs(), store.todos())
                if worker.is_cancelled:
                    return
                self._stamp = stamp
                self.call_from_thread(self._publish, snapshot)
            if self._follow_devices:
                self._read_devices()
            # Crash detection writes to the store; its changes show at the next poll.
            now = time.monotonic()
            if now - self._reconciled > RECONCILE_EVERY_S and store.index_path.exists():
                self._reconciled = now
                executors.reconcile(store)
                if waiting := launcher.revive_runner(store):
                    self.call_from_thread(
                        self.notify, f"restarted the queue runner: {waiting} queued runs"
                    )
        except (StoreError, OSError) as exc:
            # A writer holding the lock, or a file mid-recovery: try again next tick.
            if not worker.is_cancelled:
                self.call_from_thread(self._store_trouble, str(exc))

    def _read_devices(self) -> None:
        """In the poll's thread: the header's slots again when runner.json changed (a
        small file; the GPUs are asked of nvidia-smi once, not at every change)."""
        config = launcher.read_runner_config(self.store)
        if config == self._runner_config:
            return
        self._runner_config = config
        if self._found_gpus is None and not config.get("gpus"):
            from kdtui.runner import discover_gpus  # nvidia-smi, no torch

            self._found_gpus = [str(g) for g in discover_gpus()]
        text = devices_text(config, self._found_gpus or [])
        if text != self.devices:
            self.call_from_thread(self._set_devices, text)

    def _set_devices(self, text: str) -> None:
        self.devices = text
        self._update_subtitle()

    def _publish(self, snapshot: Snapshot) -> None:
        self._trouble = ""
        first = self.snapshot is None
        self.snapshot = snapshot
        if first:  # once the runs are drawn, the other screens' modules load meanwhile
            self.call_after_refresh(self._warm_up)
        for notice in self.store.notices:
            self.notify(notice, severity="warning", timeout=10)
        self.store.notices.clear()

    @work(thread=True, group="warm-up")
    def _warm_up(self) -> None:
        """Import the screens' modules in a thread while the user reads the runs, so that
        opening one later only builds it (the composer's took 0.3-1 s on a loaded box)."""
        for mode in self.OWN_MODES.values():
            mode.load()

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

    # ------------------------------------------------------------------ drawing

    def delay_update(self, delay: float = 0.05) -> None:
        """Draw a screen switched to at once. Textual holds the drawing for 50 ms after a
        switch (to hide the footer's rebuild), a timer that a loaded box fires late; and if
        another batch (that rebuild) is still open when it fires, the new screen was not
        drawn at all until the next key or tick (2 3 2 3 left Compose on the terminal)."""

    @contextlib.contextmanager
    def batch_update(self) -> Iterator[None]:
        """Textual's batch, after which the current screen is woken too: a screen that went
        idle during the batch, its repaint held back, would otherwise wait for an event."""
        with super().batch_update():
            yield
        if not self._batch_count:
            with contextlib.suppress(ScreenStackError):
                self.screen.check_idle()

    # ------------------------------------------------------------------ what screens ask

    @on(StoreWritten)
    def _store_written(self) -> None:
        self.poll()

    @on(OpenRun)
    def _open_run(self, message: OpenRun) -> None:
        self.open_run(message.run_id)

    def open_run(self, run_id: str) -> None:
        from kdtui.screens.run_detail import RunDetailScreen  # plotext loads on first use

        self.push_screen(RunDetailScreen(run_id))

    @on(ShowCurves)
    def _show_curves(self, message: ShowCurves) -> None:
        from kdtui.screens.curves import CurvesScreen  # plotext loads on first use

        self.push_screen(CurvesScreen(message.curves))

    @on(CompareRuns)
    def _compare_runs(self, message: CompareRuns) -> None:
        from kdtui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(message.run_a, message.run_b))

    @on(EditRunAsNew)
    async def _edit_run_as_new(self, message: EditRunAsNew) -> None:
        """A run's frozen experiment in the composer, to edit into a new one."""
        await self.switch_mode("compose")
        composer = self.composer()
        assert composer is not None
        composer.edit_run(message.run_id)

    @on(ShowRuns)
    async def _show_runs(self, message: ShowRuns) -> None:
        """The runs screen, filtered (from a results row to its runs, or after a launch)."""
        await self.switch_mode("runs")
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        runs = self.screen
        assert isinstance(runs, RunsScreen)
        runs.show_filter(message.text)

    def composer(self) -> ComposeScreen | None:
        """The compose screen, once it was opened (its edits are asked about on quit)."""
        try:
            stack = self.get_screen_stack("compose")
        except KeyError:
            return None
        if not stack:
            return None
        from kdtui.screens.compose import ComposeScreen  # loaded: the screen exists

        return stack[0] if isinstance(stack[0], ComposeScreen) else None

    # ------------------------------------------------------------------ commands

    async def action_quit(self) -> None:
        """Quit; the runs go on. Edits in the composer not saved or launched are asked for."""
        composer = self.composer()
        if composer is not None and composer.has_edits():
            self._quit_question = composer.unless_edited(QUIT_EDITS, self.exit)
        else:
            self.exit()

    def action_ask_quit(self) -> None:
        """Ctrl-C: asks first (the runs go on either way); a second Ctrl-C is a yes, unless
        the question is about composer edits, which must be answered."""
        asked = self._quit_question
        if asked is not None and self.screen is asked:
            if not asked.risky:
                self.exit()
            return
        composer = self.composer()
        if composer is not None and composer.has_edits():
            self._quit_question = composer.unless_edited(QUIT_EDITS, self.exit)
            return
        note = "The runs go on: the app is never their parent (ctrl+c again quits)."
        self._quit_question = Prompt("Quit kdtui?", [], note=note, ok="Quit", cancel="Stay")
        self.push_screen(self._quit_question, lambda values: values is not None and self.exit())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self) -> list[Section]:
        from kdtui.screens.compare import CompareScreen
        from kdtui.screens.curves import CurvesScreen
        from kdtui.screens.run_detail import RunDetailScreen

        return [
            ("Everywhere", "", self.BINDINGS),
            *(
                (name.title(), SCREENS_HELP[name], mode.load().BINDINGS)
                for name, mode in self.OWN_MODES.items()
            ),
            ("Run detail", "One run: curves, log, spec, analysis.", RunDetailScreen.BINDINGS),
            ("Curves", CURVES_HELP, CurvesScreen.BINDINGS),
            ("Compare", COMPARE_HELP, CompareScreen.BINDINGS),
        ]

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """The palette's Screenshot, saved in the folder kdtui was started from: Textual
        saves to the user's downloads folder, which a GPU box reached over SSH seldom has
        (it said only "Failed to save screenshot")."""
        where = path if path is not None else str(Path.cwd())
        return super().deliver_screenshot(filename, where, time_format)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette offers the screens and every action of the current screen."""
        yield from super().get_system_commands(screen)
        for name in self.OWN_MODES:
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
    from kdtui.widgets import picture

    app = KdApp(Path(workspace))
    picture.prepare()  # the graphics protocol, if asked, answered before Textual reads keys
    app.run()
    if app.return_code:  # a crash was printed on exit: say so to the shell too
        raise SystemExit(app.return_code)
