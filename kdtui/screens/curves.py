"""Curves together: several groups (or runs) on one chart, one metric at a time — test
accuracy, the training loss and each of its logged parts (CE, KD, AT, ...), test NLL and
ECE — a group drawn as the mean of its seeds with a ± std band, one colour per group,
named in a legend under the chart.

The runs' ``events.jsonl`` are read by a worker, again only when they have grown, so the
chart follows runs still training. Per-epoch statistics are ``kdtui.results.Stats`` (the
results table's); plotext draws (loaded with this screen, never at start-up).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, Tab, Tabs
from textual.worker import Worker
from textual_plotext import PlotextPlot

from kdtui.results import Stats
from kdtui.store import StoreError
from kdtui.tui.snapshot import Host

# Colour-blind-safe (Okabe-Ito), readable on dark and light backgrounds alike.
PALETTE: list[tuple[int, int, int]] = [
    (230, 159, 0),  # orange
    (86, 180, 233),  # sky blue
    (0, 158, 115),  # bluish green
    (204, 121, 167),  # reddish purple
    (213, 94, 0),  # vermillion
    (0, 114, 178),  # blue
    (240, 228, 66),  # yellow
    (150, 150, 150),  # grey
]
MAX_CURVES = len(PALETTE)  # more colours could not be told apart
BAND_MARKER = "·"  # the ± std band, under the mean's braille line
# Metrics in the order the tabs show them: loss parts (parts.<name>) go after the loss.
LEADING = {"acc": "test acc %", "train_loss": "train loss"}
TRAILING = {"nll": "test NLL", "ece": "test ECE"}


def metric_label(metric: str) -> str:
    if metric.startswith("parts."):
        return metric.split(".", 1)[1].upper()  # kd → KD
    return {**LEADING, **TRAILING}.get(metric, metric)


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def epoch_values(epochs: Iterable[dict[str, Any]], metric: str) -> dict[int, float]:
    """One run's ``metric`` per epoch (``parts.kd``: a part of the loss), finite values only;
    a resumed run's epoch written twice counts once, the later."""
    values: dict[int, float] = {}
    for event in epochs:
        epoch = event.get("epoch")
        if metric.startswith("parts."):
            parts = event.get("parts")
            value = parts.get(metric[6:]) if isinstance(parts, dict) else None
        else:
            value = event.get(metric)
        if isinstance(epoch, int) and (v := _finite(value)) is not None:
            values[epoch] = v
    return values


def metrics_of(runs: Iterable[list[dict[str, Any]]]) -> list[str]:
    """The metrics some run logged with a number: accuracy and loss first, the loss's parts
    in the order they were logged, then calibration."""
    found: dict[str, None] = {}
    for epochs in runs:
        for event in epochs:
            for key in (*LEADING, *TRAILING):
                if _finite(event.get(key)) is not None:
                    found.setdefault(key)
            parts = event.get("parts")
            for name, value in parts.items() if isinstance(parts, dict) else ():
                if _finite(value) is not None:
                    found.setdefault(f"parts.{name}")
    return [
        *(k for k in LEADING if k in found),
        *(k for k in found if k.startswith("parts.")),
        *(k for k in TRAILING if k in found),
    ]


@dataclass(frozen=True)
class Curve:
    """A group's curve: per epoch the mean over its runs that reached it, and the sample
    std where two or more did."""

    name: str
    runs: int  # runs with at least one value
    epochs: list[int]
    mean: list[float]
    std: list[float | None]

    @classmethod
    def of(cls, name: str, runs: list[dict[int, float]]) -> Curve:
        runs = [r for r in runs if r]
        epochs = sorted({e for r in runs for e in r})
        stats = [Stats.of(r[e] for r in runs if e in r) for e in epochs]
        return cls(
            name,
            len(runs),
            epochs,
            [cast(float, s.mean) for s in stats],
            [s.std for s in stats],
        )

    def band(self) -> list[tuple[int, float, float]]:
        """(epoch, mean − std, mean + std) where there is a std."""
        return [
            (e, m - s, m + s)
            for e, m, s in zip(self.epochs, self.mean, self.std, strict=True)
            if s is not None
        ]


def band_points(
    band: list[tuple[int, float, float]], x_step: float, y_step: float
) -> tuple[list[float], list[float]]:
    """Points that fill the band between consecutive epochs, ``x_step`` and ``y_step``
    apart (about a character cell): plotext draws lines, not areas."""
    xs: list[float] = []
    ys: list[float] = []
    for (x0, lo0, hi0), (x1, lo1, hi1) in zip(band, band[1:], strict=False):
        steps = max(1, math.ceil((x1 - x0) / x_step))
        for i in range(steps + 1 if (x1, lo1, hi1) == band[-1] else steps):
            t = i / steps
            x, lo, hi = x0 + t * (x1 - x0), lo0 + t * (lo1 - lo0), hi0 + t * (hi1 - hi0)
            n = max(0, math.floor((hi - lo) / y_step))
            xs += [x] * (n + 1)
            ys += [lo + j * (hi - lo) / max(n, 1) for j in range(n + 1)]
    if len(band) == 1:
        x, lo, hi = band[0]
        xs, ys = [x, x], [lo, hi]
    return xs, ys


class CurvesScreen(Screen):
    """The curves of ``curves`` ((name, run ids) each) together, one metric per tab."""

    TITLE = "Curves"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("right,m", "metric(1)", "Next metric", key_display="→"),
        Binding("left", "metric(-1)", "Previous metric", key_display="←", show=False),
        Binding(
            "s",
            "toggle_seeds",
            "Seeds",
            tooltip="Each run on its own, or each group as its mean with a ± std band.",
        ),
    ]
    DEFAULT_CSS = """
    CurvesScreen Tabs { height: 2; }
    CurvesScreen PlotextPlot { height: 1fr; }
    CurvesScreen #legend { height: auto; max-height: 4; padding: 0 1; }
    """

    def __init__(self, curves: list[tuple[str, list[str]]]) -> None:
        super().__init__()
        self.curves = curves[:MAX_CURVES]
        self.left_out = len(curves) - len(self.curves)
        self.metric = "acc"
        self.seeds = False  # each run on its own rather than the group's mean and band
        self.epochs: dict[str, list[dict[str, Any]]] = {}  # run id → its epoch events
        self._sizes: dict[str, int] = {}
        self._reader: Worker | None = None
        # Runs picked one by one (the runs screen) have no mean to take: no band, no s.
        self.groups = any(len(ids) > 1 for _, ids in self.curves)
        n, what = len(self.curves), "group" if self.groups else "run"
        self.sub_title = f"{n} {what}{'s' if n != 1 else ''}" + (
            f" (the first {n}; {self.left_out} left out)" if self.left_out else ""
        )

    @property
    def host(self) -> Host:
        return cast(Host, self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Tabs(id="metrics")
        yield PlotextPlot()
        yield Static(id="legend")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Tabs).focus()
        self.read_events()
        self.set_interval(self.host.poll_s, self.read_events)

    # ------------------------------------------------------------------ reading

    def read_events(self) -> None:
        """Read the runs whose events grew since the last look (one read at a time)."""
        if self._reader is None or self._reader.is_finished:
            self._reader = self._read_events()

    @work(thread=True, group="curves-events")
    def _read_events(self) -> None:
        store, grown = self.host.store, {}
        for run_id in {r for _, ids in self.curves for r in ids}:
            try:
                size = _size(store.run_dir(run_id) / "events.jsonl")
                if size != self._sizes.get(run_id):
                    epochs = [e for e in store.events(run_id) if e.get("type") == "epoch"]
                    grown[run_id] = (size, epochs)
            except (OSError, StoreError, ValueError):
                continue  # a run removed meanwhile: its curve stops where it was
        if grown or not self._sizes:
            self.app.call_from_thread(self._events_read, grown)

    async def _events_read(self, grown: dict[str, tuple[int, list[dict[str, Any]]]]) -> None:
        for run_id, (size, epochs) in grown.items():
            self._sizes[run_id], self.epochs[run_id] = size, epochs
        await self._show_tabs()
        self.plot()

    async def _show_tabs(self) -> None:
        """A tab per metric some run logged (a loss part appears with its first epoch)."""
        tabs = self.query_one(Tabs)
        metrics = metrics_of(self.epochs.values()) or ["acc"]
        wanted = [_tab_id(m) for m in metrics]
        if [t.id for t in tabs.query(Tab)] == wanted:
            return
        if self.metric not in metrics:
            self.metric = metrics[0]
        await tabs.clear()
        for metric in metrics:
            await tabs.add_tab(Tab(metric_label(metric), id=_tab_id(metric)))
        tabs.active = _tab_id(self.metric)

    @on(Tabs.TabActivated)
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab.id is not None:
            metric = _metric_of(event.tab.id)
            if metric != self.metric:
                self.metric = metric
                self.plot()

    def action_metric(self, step: int) -> None:
        tabs = self.query_one(Tabs)
        (tabs.action_next_tab if step > 0 else tabs.action_previous_tab)()

    def action_toggle_seeds(self) -> None:
        if self.groups:  # a run alone is its own mean
            self.seeds = not self.seeds
            self.plot()

    # ------------------------------------------------------------------ drawing

    def series(self) -> list[Curve]:
        """What the chart shows of the current metric: one curve per group, or per run."""

        def values(run_id: str) -> dict[int, float]:
            return epoch_values(self.epochs.get(run_id, []), self.metric)

        if self.seeds:
            return [
                Curve.of(f"{name} · {run_id}" if len(ids) > 1 else name, [values(run_id)])
                for name, ids in self.curves
                for run_id in ids
            ]
        return [Curve.of(name, [values(r) for r in ids]) for name, ids in self.curves]

    def plot(self) -> None:
        widget = self.query_one(PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        curves = self.series()
        colours = self._colours(curves)
        drawn = [(c, colour) for c, colour in zip(curves, colours, strict=True) if c.epochs]
        if drawn:
            xs = [e for c, _ in drawn for e in c.epochs]
            ys = [y for c, _ in drawn for y in c.mean] + [
                v for c, _ in drawn for _, lo, hi in c.band() for v in (lo, hi)
            ]
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
            pad = (y1 - y0) * 0.05 or abs(y1) * 0.05 or 1.0
            plt.ylim(y0 - pad, y1 + pad)
            plt.xlim(x0, max(x1, x0 + 1))
            width, height = max(10, widget.size.width - 10), max(4, widget.size.height - 4)
            x_step, y_step = max(x1 - x0, 1) / width, (y1 - y0 + 2 * pad) / height
            for curve, colour in drawn:  # the bands first: the means are drawn over them
                if band := curve.band():
                    bx, by = band_points(band, x_step / 2, y_step / 2)
                    plt.scatter(bx, by, marker=BAND_MARKER, color=colour)
            for curve, colour in drawn:
                plt.plot(curve.epochs, curve.mean, marker="braille", color=colour)
            ticks = sorted(set(xs))
            plt.xticks(ticks[:: max(1, -(-len(ticks) // 8))])  # whole epochs, at most 8
        else:
            plt.title(f"no {metric_label(self.metric)} logged yet")
        plt.xlabel("epoch")
        widget.refresh()
        self._show_legend(curves, colours)

    def _colours(self, curves: list[Curve]) -> list[tuple[int, int, int]]:
        """A colour per group; with each seed on its own, the runs of a group share it."""
        if not self.seeds:
            return [PALETTE[i % len(PALETTE)] for i in range(len(curves))]
        return [PALETTE[i % len(PALETTE)] for i, (_, ids) in enumerate(self.curves) for _ in ids]

    def _show_legend(self, curves: list[Curve], colours: list[tuple[int, int, int]]) -> None:
        text = Text()
        for curve, (r, g, b) in zip(curves, colours, strict=True):
            if text:
                text.append("  ")
            style = f"rgb({r},{g},{b})"
            text.append("━━ ", style=f"bold {style}")
            if not curve.epochs:
                text.append(f"{curve.name} (no {metric_label(self.metric)})", style="dim")
            elif self.seeds or curve.runs == 1:
                text.append(curve.name)
            else:
                text.append(f"{curve.name} (n={curve.runs})")
        notes = []
        if self.groups:
            notes.append(
                "each run on its own · s: mean ± std of each group"
                if self.seeds
                else f"{BAND_MARKER} band: mean ± std over seeds · s: each run"
            )
        if self.left_out:
            notes.append(f"{self.left_out} more left out (at most {MAX_CURVES})")
        if notes:
            text.append("\n" + " · ".join(notes), style="dim")
        self.query_one("#legend", Static).update(text)


def _tab_id(metric: str) -> str:
    return "metric-" + metric.replace(".", "--")


def _metric_of(tab_id: str) -> str:
    return tab_id.removeprefix("metric-").replace("--", ".")


def _size(path: os.PathLike[str]) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return -1
