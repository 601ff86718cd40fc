"""Run detail: one run's summary, teachers, curves, log, frozen spec and analysis,
following live.

The run's summary comes with the app's snapshot; its own files (events.jsonl, stdout.log)
are read here by a worker, only when they have grown, and the log is read from where the
last read stopped. The curves show accuracy, the training loss and each part of it (CE,
KD, AT, ...), each one toggled by its checkbox. The Analysis tab (``screens.analysis``)
reads what the run kept at its best or last epoch, only once that tab is opened.
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, Header, Log, Static, TabbedContent, TabPane
from textual.worker import Worker
from textual_plotext import PlotextPlot

from kdtui.fmt import fmt_acc, fmt_epoch
from kdtui.results import run_selected_on
from kdtui.screens.analysis import COLOURS, AnalysisPane
from kdtui.screens.live import LiveScreen
from kdtui.screens.run_actions import RUN_BINDINGS, RunActions
from kdtui.store import StoreError
from kdtui.tui.messages import OpenRun
from kdtui.tui.snapshot import Snapshot
from kdtui.widgets import STATUS_TONE, KeyFooter, json_view

LOG_TAIL_BYTES = 32_768
LOG_MAX_LINES = 1_000
#: Curves on the left axis (percent); every other series is a loss, on the right axis.
LEFT = ("acc", "val_acc")
SERIES_LABELS = {"acc": "test acc", "val_acc": "val acc", "train_loss": "loss"}


class RunDetailScreen(RunActions, LiveScreen):
    TITLE = "Run"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("c", "tab('curves')", "Curves"),
        Binding("l", "tab('log')", "Log"),
        Binding("j", "tab('spec')", "Spec"),
        Binding("a", "tab('analysis')", "Analysis"),
        Binding(
            "b",
            "epoch",
            "Best/last",
            tooltip="Analyse the best epoch's or the last epoch's kept data.",
        ),
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
    RunDetailScreen #series { height: 1; display: none; }
    RunDetailScreen #series.-shown { display: block; }
    RunDetailScreen #series Checkbox { margin-right: 1; }
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
        self._epochs: list[dict[str, Any]] = []
        self._series: list[str] = []  # the curves the run logged, in checkbox order
        self._hidden: set[str] = set()  # those toggled off
        self._which = "best"  # the analysed epoch
        self._analysed = False  # the Analysis tab was opened (and loads from then on)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="summary")
        yield Horizontal(id="teachers")
        yield Static(id="error")
        with TabbedContent(initial="curves"):
            with TabPane("Curves", id="curves"):
                yield Horizontal(id="series")
                yield PlotextPlot(id="curves-plot")
            with TabPane("Log", id="log"):
                yield Log(max_lines=LOG_MAX_LINES)
            with TabPane("Spec", id="spec"), VerticalScroll():
                yield Static(id="spec-json")
            with TabPane("Analysis", id="analysis"):
                yield AnalysisPane()
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

    def on_resize(self) -> None:
        if self.host.snapshot is not None:  # the head's lines break for the new width
            self.show_snapshot(self.host.snapshot)

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
        text.append(f"  acc {fmt_acc(run.get('acc'))}")
        best = Text(f"best {fmt_acc(run.get('best_acc'))}")
        if run.get("best_epoch"):
            best.append(f" @{run['best_epoch']}")
        if run.get("best_acc") is not None and (on := run_selected_on(run)):
            best.append(f" on {on}", style="dim")  # a test-chosen best flatters the run
        summary = self.query_one("#summary", Static)
        room = self.app.size.width - 2  # the best and where it was chosen stay on one line
        text.append("\n" if text.cell_len + 2 + best.cell_len > room else "  ")
        text.append_text(best)
        text.append("\n")
        text.append(f"{run.get('label', '')} · {run.get('loss', '')} · {run.get('dataset', '')}")
        outside = run.get("source", "kdtui") != "kdtui"
        where = f"outside result ({run.get('source')})" if outside else run.get("device")
        unborn = "no device yet" if status in ("queued", "running") else "never started"
        text.append(f" · {where or unborn}", style="dim")
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

    # ------------------------------------------------------------------ analysis

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()  # b belongs to the Analysis tab
        if event.pane.id == "analysis":
            pane = self.query_one(AnalysisPane)
            if not self._analysed:
                self._analysed = True
                self._analyse()
            pane.focus()  # the arrows and page keys scroll it

    def _analyse(self) -> None:
        run = self.selected_run() or {}
        try:
            run_dir = self.host.store.run_dir(self.run_id)
        except StoreError as exc:
            self.query_one("#an-head", Static).update(str(exc))
            return
        self.query_one(AnalysisPane).show(run_dir, self._which, run)

    def action_epoch(self) -> None:
        """Analyse the other of the best and the last epoch."""
        self._which = "last" if self._which == "best" else "best"
        self._analyse()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "epoch":
            return self.query_one(TabbedContent).active == "analysis"
        return True

    # ------------------------------------------------------------------ files

    @work(thread=True, group="detail-spec")
    def _load_spec(self) -> None:
        try:
            spec: Any = self.host.store.read_spec(self.run_id)
        except (OSError, ValueError, StoreError) as exc:
            spec = {"error": f"cannot read the spec: {exc}"}
        view = json_view(spec)
        self.app.call_from_thread(self._show_spec, view)

    def read_files(self) -> None:
        """Read what the run wrote since the last look (never two reads at once)."""
        if self._reader is None or self._reader.is_finished:
            self._reader = self._read_files()
        if self._analysed and self.query_one(TabbedContent).active == "analysis":
            self.query_one(AnalysisPane).poll()  # a running run's new best

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
            self.app.call_from_thread(self._append_log, lines)

    # The workers hand their results to these on the event loop, where the screen may have
    # been closed meanwhile (Escape, the app quitting): a query from the worker thread
    # would then fail the worker, and with it the app's exit.
    def _show_spec(self, view: Any) -> None:
        for static in self.query("#spec-json").results(Static):
            static.update(view)

    def _append_log(self, lines: list[str]) -> None:
        for log in self.query(Log).results(Log):
            log.write_lines(lines)

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
        self._epochs = epochs
        self._show_series(epochs)
        self._draw()

    def _show_series(self, epochs: list[dict[str, Any]]) -> None:
        """A checkbox per curve, once the run logged the parts of its loss (a run without
        parts shows accuracy and loss, as it always did)."""
        parts = list(dict.fromkeys(p for e in epochs for p in (e.get("parts") or {})))
        if not parts:
            return
        logged = [m for m in ("acc", "val_acc") if any(e.get(m) is not None for e in epochs)]
        series = [*logged, "train_loss", *(f"parts.{p}" for p in parts)]
        if series == self._series:
            return
        self._series = series
        box = self.query_one("#series", Horizontal)
        box.remove_children()
        box.mount_all(
            Checkbox(
                SERIES_LABELS.get(m) or m.removeprefix("parts.").upper(),
                m not in self._hidden,
                compact=True,
                name=m,
            )
            for m in series
        )
        box.add_class("-shown")

    @on(Checkbox.Changed, "#series Checkbox")
    def _toggle_series(self, event: Checkbox.Changed) -> None:
        metric = event.checkbox.name or ""
        if event.value:
            self._hidden.discard(metric)
        else:
            self._hidden.add(metric)
        self._draw()

    def _draw(self) -> None:
        epochs = self._epochs
        widget = self.query_one("#curves-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        x = [e["epoch"] for e in epochs]
        series = self._series or ["acc", "train_loss"]
        shown = [m for m in series if m not in self._hidden]
        if x:
            for i, metric in enumerate(series):
                if metric not in shown:
                    continue
                values = _values(epochs, metric)
                plt.plot(
                    list(values),
                    list(values.values()),
                    label=_series_label(metric),
                    marker="braille",
                    yside="left" if metric in LEFT else "right",
                    **({"color": COLOURS[i % len(COLOURS)]} if self._series else {}),
                )
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
        parts = any(m.startswith("parts.") for m in self._series)
        title = "accuracy (left) and training loss" + (" and its parts" if parts else "")
        plt.title(f"{title} (right)" if x else none)
        widget.refresh()


def _series_label(metric: str) -> str:
    """A curve's legend: the loss parts by name (CE, KD, ...), accuracy with its unit."""
    if metric in ("acc", "val_acc", "train_loss"):
        return {"acc": "test acc %", "val_acc": "val acc %", "train_loss": "train loss"}[metric]
    return metric.removeprefix("parts.").upper()


def _values(epochs: list[dict[str, Any]], metric: str) -> dict[int, float]:
    """A curve: ``metric`` per epoch (``parts.kd``: a part of the loss), finite values only
    (a diverged epoch's NaN would stretch the axis to nothing)."""
    out = {}
    for e in epochs:
        parts = e.get("parts")
        value = (
            parts.get(metric[6:])
            if metric.startswith("parts.") and isinstance(parts, dict)
            else e.get(metric)
        )
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[e["epoch"]] = float(value)
    return out


def _size(path: os.PathLike[str]) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return -1
