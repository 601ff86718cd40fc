"""Run detail: one run's summary, teachers, curves, log and frozen spec, following live.

The run's summary comes with the app's snapshot; its own files (events.jsonl, stdout.log)
are read here by a worker, only when they have grown, and the log is read from where the
last read stopped.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Header, Log, Static, TabbedContent, TabPane
from textual.worker import Worker
from textual_plotext import PlotextPlot

from kdtui.fmt import fmt_acc, fmt_epoch
from kdtui.screens.live import LiveScreen
from kdtui.screens.run_actions import RUN_BINDINGS, RunActions
from kdtui.store import StoreError
from kdtui.tui.messages import OpenRun
from kdtui.tui.snapshot import Snapshot
from kdtui.widgets import STATUS_TONE, KeyFooter, json_view

LOG_TAIL_BYTES = 32_768
LOG_MAX_LINES = 1_000


class RunDetailScreen(RunActions, LiveScreen):
    TITLE = "Run"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("c", "tab('curves')", "Curves"),
        Binding("l", "tab('log')", "Log"),
        Binding("j", "tab('spec')", "Spec"),
        *RUN_BINDINGS,
    ]
    DEFAULT_CSS = """
    RunDetailScreen #summary { height: auto; padding: 0 1; }
    RunDetailScreen #teachers { height: auto; padding: 0 1; }
    RunDetailScreen #teachers Button { margin-right: 1; }
    RunDetailScreen #error { color: $text-error; padding: 0 1; height: auto; display: none; }
    RunDetailScreen TabbedContent { height: 1fr; }
    RunDetailScreen TabPane { padding: 0; }
    RunDetailScreen Log { height: 1fr; }
    """

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.title = f"Run {run_id}"
        self._reader: Worker | None = None
        self._events_size = -1
        self._log_offset: int | None = None
        self._teachers: tuple[list[str], bool] = ([], False)  # what the teachers row shows
        self._no_log_said = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="summary")
        yield Horizontal(id="teachers")
        yield Static(id="error")
        with TabbedContent(initial="curves"):
            with TabPane("Curves", id="curves"):
                yield PlotextPlot()
            with TabPane("Log", id="log"):
                yield Log(max_lines=LOG_MAX_LINES)
            with TabPane("Spec", id="spec"), VerticalScroll():
                yield Static(id="spec-json")
        yield KeyFooter()

    def on_mount(self) -> None:
        super().on_mount()
        self._load_spec()
        self.read_files()
        self.set_interval(self.host.poll_s, self.read_files)

    # ------------------------------------------------------------------ summary

    def selected_run(self) -> dict[str, Any] | None:
        snapshot = self.host.snapshot
        return snapshot.by_id.get(self.run_id) if snapshot else None

    def show_snapshot(self, snapshot: Snapshot) -> None:
        run = snapshot.by_id.get(self.run_id)
        if run is None:
            self.query_one("#summary", Static).update(f"{self.run_id}: not in the store")
            return
        status = run.get("status", "?")
        text = Text()
        text.append(status, style=f"bold {self._tone(status)}")
        text.append(f"  {run.get('name')} seed {run.get('seed')}", style="bold")
        text.append(f"  epoch {fmt_epoch(run)}")
        text.append(f"  acc {fmt_acc(run.get('acc'))}  best {fmt_acc(run.get('best_acc'))}")
        if run.get("best_epoch"):
            text.append(f" @{run['best_epoch']}")
        text.append("\n")
        text.append(f"{run.get('label', '')} · {run.get('loss', '')} · {run.get('dataset', '')}")
        outside = run.get("source", "kdtui") != "kdtui"
        where = f"outside result ({run.get('source')})" if outside else run.get("device")
        unborn = "no device yet" if status in ("queued", "running") else "never started"
        text.append(f" · {where or unborn}", style="dim")
        summary = self.query_one("#summary", Static)
        if summary.content != text:  # polls repeat it mostly unchanged
            summary.update(text)
        self._show_teachers(run)
        error, reason = self.query_one("#error", Static), f"{status}: {run.get('error')}"
        error.display = bool(run.get("error")) and status != "done"
        if error.content != reason:
            error.update(reason)

    def _tone(self, status: str) -> str:
        """A Rich style for the status: the theme's text colour of its tone. "muted" is
        no colour but "auto 60%" (blended at render time), which Rich cannot parse."""
        tone = STATUS_TONE.get(status, "muted")
        colour = self.app.theme_variables.get(f"text-{tone}", "")
        return colour if colour.startswith("#") else "dim"

    def _show_teachers(self, run: dict[str, Any]) -> None:
        """Teachers that were loaded link to their runs; a queued student names what it
        waits for."""
        records = run.get("teacher_runs") or []
        links = [t["run_id"] for t in records if t.get("run_id")]
        waiting = run.get("status") == "queued"
        if (links, waiting) == self._teachers and self.query_one("#teachers").children:
            return
        self._teachers = (links, waiting)
        box = self.query_one("#teachers", Horizontal)
        box.remove_children()
        widgets: list[Any] = []
        for t in records:
            label = f"teacher {t.get('model')} ×{t.get('weight', 1):g} ← "
            if t.get("run_id"):
                button = Button(label + t["run_id"], name=t["run_id"], compact=True)
                button.tooltip = "open the teacher's run"
                widgets.append(button)
            else:
                widgets.append(Static(label + str(t.get("checkpoint"))))
        if not records:
            for need in run.get("needs") or []:
                seed = f" seed {need['seed']}" if need.get("seed") is not None else ""
                verb = "waits for teacher" if waiting else "teacher"  # failed before loading
                widgets.append(Static(f"{verb} {need.get('name')}{seed}"))
        box.mount_all(widgets)
        box.display = bool(widgets)

    @on(Button.Pressed, "#teachers Button")
    def _open_teacher(self, event: Button.Pressed) -> None:
        if event.button.name:
            self.post_message(OpenRun(event.button.name))

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    # ------------------------------------------------------------------ files

    @work(thread=True, group="detail-spec")
    def _load_spec(self) -> None:
        try:
            spec: Any = self.host.store.read_spec(self.run_id)
        except (OSError, ValueError, StoreError) as exc:
            spec = {"error": f"cannot read the spec: {exc}"}
        view = json_view(spec)
        self.app.call_from_thread(self.query_one("#spec-json", Static).update, view)

    def read_files(self) -> None:
        """Read what the run wrote since the last look (never two reads at once)."""
        if self._reader is None or self._reader.is_finished:
            self._reader = self._read_files()

    @work(thread=True, group="detail-files")
    def _read_files(self) -> None:
        store = self.host.store
        try:
            run_dir = store.run_dir(self.run_id)
            size = _size(run_dir / "events.jsonl")
            if size != self._events_size:
                self._events_size = size
                epochs = [e for e in store.events(self.run_id) if e.get("type") == "epoch"]
                self.app.call_from_thread(self._plot, epochs)
            lines = self._new_log_lines(run_dir / "stdout.log")
            if not lines and self._log_offset is None and not self._no_log_said:
                self._no_log_said = True  # a blank tab would look broken
                run = self.selected_run() or {}
                lines = [
                    "(no log: an outside result, trained elsewhere)"
                    if run.get("source", "kdtui") != "kdtui"
                    else "(no log yet: the engine writes it once the run starts)"
                ]
        except (OSError, StoreError):
            return
        if lines:
            self.app.call_from_thread(self.query_one(Log).write_lines, lines)

    def _new_log_lines(self, path: os.PathLike[str]) -> list[str]:
        """Complete lines appended since the last call (the last 32 KB the first time)."""
        size = _size(path)
        if size < 0:
            return []
        start = self._log_offset
        first = start is None or size < start  # first look, or the log was truncated
        if first:
            start = max(0, size - LOG_TAIL_BYTES)
        assert start is not None
        with open(path, "rb") as fh:
            fh.seek(start)
            chunk = fh.read(size - start)
        if first and start > 0:
            cut = chunk.find(b"\n") + 1  # the first line of a tail is cut: skip it
            chunk, start = chunk[cut:], start + cut
        end = chunk.rfind(b"\n") + 1  # a half-written last line waits for the next read
        self._log_offset = start + end
        return chunk[:end].decode(errors="replace").splitlines()

    def _plot(self, epochs: list[dict[str, Any]]) -> None:
        widget = self.query_one(PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        x = [e["epoch"] for e in epochs]
        acc = [e.get("acc") for e in epochs]
        loss = [e.get("train_loss") for e in epochs]
        if x:
            plt.plot(x, acc, label="test acc %", marker="braille")
            plt.plot(x, loss, label="train loss", marker="braille", yside="right")
            plt.xticks(x[:: max(1, -(-len(x) // 8))])  # whole epochs, at most 8 ticks
        plt.xlabel("epoch")
        run = self.selected_run() or {}
        none = (
            "an outside result: no epochs"
            if run.get("source", "kdtui") != "kdtui"
            else "no epochs yet"
            if run.get("status") in ("queued", "running")
            else "no epochs"
        )
        plt.title("accuracy (left) and training loss (right)" if x else none)
        widget.refresh()


def _size(path: os.PathLike[str]) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return -1
