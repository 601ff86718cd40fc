"""Two runs' insides side by side (B − A): where the KD student gained over the baseline.
The difference of their confusion matrices on a diverging scale, and each class's
accuracy in A and in B with the change; accuracy, ECE and NLL of both on top.

Both runs' kept data (``kdtui.analysis.data``) are read and compared in a worker, at their
best or their last epochs (b); w swaps A and B.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from kdtui.analysis.data import NoAnalysisData, RunData
from kdtui.results.stats import picked_on, run_selected_on
from kdtui.store import StoreError
from kdtui.tui.snapshot import Host
from kdtui.widgets import KeyFooter
from kdtui.widgets.heatmap import MAX_GRID, abbreviate, difference_grid

#: With more classes than a grid shows, the per-class table lists the most changed.
MAX_SHOWN = 15


def _numbers(data: RunData) -> dict[str, Any]:
    from kdtui.analysis import numbers
    from kdtui.analysis.calibration import expected_calibration_error, negative_log_likelihood

    pred = data.logits.argmax(axis=1)
    n = len(data.labels)
    return {
        "epoch": data.epoch,
        "n": n,
        "accuracy": float((pred == data.labels).mean() * 100) if n else None,
        "ece": expected_calibration_error(data.logits, data.labels) if n else None,
        "nll": negative_log_likelihood(data.logits, data.labels) if n else None,
        "confusion": numbers.confusion(data.labels, pred, data.n_classes),
        "per_class": numbers.per_class(data.labels, pred, data.classes),
    }


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _delta(a: float | None, b: float | None, spec: str, better: int) -> Text:
    """B − A, green when it is better (``better`` = +1: higher is better, -1: lower)."""
    if a is None or b is None:
        return Text("–", style="dim")
    d = b - a
    tone = "dim" if d == 0 else "green" if d * better > 0 else "red"
    return Text(format(d, "+" + spec), style=tone)


def _epoch(run: dict[str, Any], data: RunData) -> str:
    """``best 28, picked on test`` (where a best epoch was chosen: on test it flatters the
    run), ``last 30``."""
    on = run_selected_on(run) if data.which == "best" else None
    return f"{data.which} {data.epoch}{picked_on(on)}"


def comparison(run_a: dict[str, Any], a: RunData, run_b: dict[str, Any], b: RunData) -> Any:
    """The screen's content: (head, difference grid, per-class table, legend) or a reason."""
    if a.classes != b.classes:
        return f"the two runs have different classes ({len(a.classes)} and {len(b.classes)}): nothing to compare cell by cell"
    na, nb = _numbers(a), _numbers(b)
    head = Table.grid(padding=(0, 1))
    for _ in range(5):
        head.add_column(justify="right")
    head.columns[0].justify = "left"
    head.add_row("", Text("epoch", style="bold"), Text("acc %", style="bold"),
                 Text("ECE %", style="bold"), Text("NLL", style="bold"))  # fmt: skip
    for tag, run, data, num in (("A", run_a, a, na), ("B", run_b, b, nb)):
        name = f"{tag} {abbreviate(str(run.get('name')), 28)} s{run.get('seed')}"
        ece = num["ece"] * 100 if num["ece"] is not None else None
        head.add_row(
            Text(name, style="bold"), _epoch(run, data),
            _fmt(num["accuracy"], ".2f"), _fmt(ece, ".2f"), _fmt(num["nll"], ".3f"),
        )  # fmt: skip
    ece_a = na["ece"] * 100 if na["ece"] is not None else None
    ece_b = nb["ece"] * 100 if nb["ece"] is not None else None
    head.add_row(
        Text("B − A", style="bold"), "", _delta(na["accuracy"], nb["accuracy"], ".2f", 1),
        _delta(ece_a, ece_b, ".2f", -1), _delta(na["nll"], nb["nll"], ".3f", -1),
    )  # fmt: skip
    ca, cb = na["confusion"], nb["confusion"]
    many = len(a.classes) > MAX_GRID
    if many:
        grid, span = Text(f"{len(a.classes)} classes: too many for a grid here"), 0.0
    else:
        grid, span = difference_grid(
            ca["counts"], cb["counts"], ca["normalised"], cb["normalised"], a.classes
        )
    table = Table.grid(padding=(0, 1))
    table.add_column()
    for _ in range(3):
        table.add_column(justify="right")
    table.add_row(*(Text(h, style="bold") for h in ("class", "A %", "B %", "Δ")))
    rows = list(zip(na["per_class"]["classes"], nb["per_class"]["classes"], strict=True))
    if many:  # the classes that changed most
        rows.sort(key=lambda pair: -abs(pair[1]["recall"] - pair[0]["recall"]))
        rows = rows[:MAX_SHOWN]
    for ra, rb in rows:
        acc_a = ra["recall"] * 100 if ra["support"] else None
        acc_b = rb["recall"] * 100 if rb["support"] else None
        table.add_row(
            abbreviate(ra["class"], 10), _fmt(acc_a, ".1f"), _fmt(acc_b, ".1f"),
            _delta(acc_a, acc_b, ".1f", 1),
        )  # fmt: skip
    fa, fb = na["per_class"]["macro"]["f1"], nb["per_class"]["macro"]["f1"]
    table.add_row(Text("macro F1", style="dim"), f"{fa:.3f}", f"{fb:.3f}", _delta(fa, fb, ".3f", 1))
    legend = Text(
        f"the {MAX_SHOWN} classes whose accuracy changed most"
        if many
        else f"cells: B − A in samples; blue: B puts more of the row there, red: fewer (the "
        f"scale spans ±{span * 100:.0f}% of a row); bold: the diagonal, where more is better",
        style="dim",
    )
    if na["n"] != nb["n"]:
        legend.append(f"\nthe test splits differ in size: A {na['n']:,}, B {nb['n']:,}")
    return head, grid, table, legend


class CompareScreen(Screen):
    """Runs ``run_a`` (A) and ``run_b`` (B) compared class by class."""

    TITLE = "Compare"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("b", "epoch", "Best/last", tooltip="Compare the best epochs or the last ones."),
        Binding("w", "swap", "Swap A/B", tooltip="Swap the runs: B − A becomes A − B."),
    ]
    DEFAULT_CSS = """
    CompareScreen VerticalScroll { overflow-x: auto; padding: 0 1; }
    CompareScreen #cmp-head { width: auto; }
    CompareScreen #cmp-sides { width: auto; margin-top: 1; }
    CompareScreen #cmp-legend { margin-top: 1; }
    """

    def __init__(self, run_a: str, run_b: str) -> None:
        super().__init__()
        self.runs = [run_a, run_b]
        self.which = "best"
        self.shown: Any = None  # what comparison() made of the two runs, or why not
        self.sub_title = f"B − A · A {run_a} · B {run_b}"

    @property
    def host(self) -> Host:
        return cast(Host, self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("reading both runs' analysis data…", id="cmp-head")
            yield Static(id="cmp-sides")
            yield Static(id="cmp-legend")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
        self._compare()

    def action_epoch(self) -> None:
        self.which = "last" if self.which == "best" else "best"
        self._compare()

    def action_swap(self) -> None:
        self.runs.reverse()
        self.sub_title = f"B − A · A {self.runs[0]} · B {self.runs[1]}"
        self._compare()

    @work(thread=True, exclusive=True, group="compare")
    def _compare(self) -> None:
        from kdtui.analysis.data import load

        store, snapshot, which = self.host.store, self.host.snapshot, self.which
        loaded = []
        for tag, run_id in zip("AB", self.runs, strict=True):
            run = (snapshot.by_id.get(run_id) if snapshot else None) or {"run_id": run_id}
            try:
                loaded.append((run, load(store.run_dir(run_id), which)))
            except (NoAnalysisData, StoreError) as exc:
                self.app.call_from_thread(self._show, f"{tag} ({run_id}): {exc}")
                return
        (run_a, a), (run_b, b) = loaded
        self.app.call_from_thread(self._show, comparison(run_a, a, run_b, b))

    def _show(self, content: Any) -> None:
        self.shown = content
        head = self.query_one("#cmp-head", Static)
        sides, legend = self.query_one("#cmp-sides", Static), self.query_one("#cmp-legend", Static)
        if isinstance(content, str):
            head.update(Text(content, style="italic"))
            sides.update("")
            legend.update("")
            return
        top, grid, table, note = content
        both = Table.grid(padding=(0, 3))
        both.add_row(grid, table)  # side by side, one renderable: one width to measure
        head.update(top)
        sides.update(both)
        legend.update(note)
