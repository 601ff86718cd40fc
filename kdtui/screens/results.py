"""Results: one row per group (configuration), each seed in its own column, mean ± std.

The numbers and notes come from ``kdtui.results.summarize`` (the same as ``kdtui table``).
A group with seeds still running shows what is missing in place of its mean, so a partial
average is never read as the final one; seeds that failed or were cancelled will not
come, so the mean of the finished ones is shown, with what happened to the others next to
it. The export is ``results.markdown_table`` of the selection.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.binding import Binding, BindingType

from kdtui.fmt import fmt_acc
from kdtui.results import GroupRow, group_rows, markdown_table, summarize
from kdtui.screens.table import CLEAR_FILTER, SORT, TableScreen, filter_binding
from kdtui.tui.messages import ShowRuns
from kdtui.tui.snapshot import Snapshot
from kdtui.widgets import Column, Grid, Tone

# Between a mean and the note on the seeds left out of it: "80.58 ± 0.53 · 1 failed".
NOTE_SEP = " · "
CANCELLED = "⊘"  # a seed cell: cancelled, told apart from ✗ failed or crashed


def _mean_tone(text: str) -> Tone | None:
    return None if "±" in text and NOTE_SEP not in text else "warning"


def _seed_tone(text: str) -> Tone | None:
    return {"✗": "error", CANCELLED: "muted"}.get(text)


# Numbers first, descriptions last: in 80 columns the models are what gets cut, not the means.
FIRST = [
    Column("mark", "✓"),
    Column("group", "group", max_width=28),
    Column("n", "n", justify="right"),
]
LAST = [
    Column("mean", "mean ± std", justify="right", tone=_mean_tone),
    Column("min", "min", justify="right"),
    Column("max", "max", justify="right"),
    Column("label", "teacher → student · loss", max_width=80, flex=True, min_width=8),
]


def seed_cell(row: GroupRow, seed: int, values: dict[int, float]) -> str:
    """A seed's accuracy (nan or inf as such), … still to come, ✗ failed, ⊘ cancelled."""
    if seed in values:
        return fmt_acc(values[seed])
    if seed in row.pending_seeds:
        return "…"
    if seed in row.failed_seeds:
        return CANCELLED if row.ended.get(seed) == "cancelled" else "✗"
    return ""


def row_cells(row: GroupRow, seeds: list[int], best: bool, marked: bool) -> tuple[str, ...]:
    summary = summarize(row, "best" if best else "last")
    values = row.best_by_seed if best else row.last_by_seed
    if summary.pending or not row.n:  # a partial mean would be read as the final one
        mean, lo, hi = summary.note or "–", "–", "–"
    else:
        mean = summary.mean + (NOTE_SEP + summary.note if summary.note else "")
        lo, hi = summary.min, summary.max
    return (
        "✓" if marked else "",
        row.name,
        str(row.n),
        *(seed_cell(row, s, values) for s in seeds),
        mean,
        lo,
        hi,
        f"{row.label} · {row.loss}",
    )


def sort_key(column: str, best: bool) -> Callable[[GroupRow], Any]:
    """Numbers sort as numbers; a group with nothing to show sorts last."""

    def num(value: float | None) -> float:
        return -1.0 if value is None or not math.isfinite(value) else value

    if column.startswith("s") and column[1:].isdigit():
        seed = int(column[1:])
        return lambda r: num((r.best_by_seed if best else r.last_by_seed).get(seed))
    simple: dict[str, Callable[[GroupRow], Any]] = {
        "mark": lambda r: r.first_created,
        "group": lambda r: r.name,
        "label": lambda r: (r.label, r.loss),
        "n": lambda r: r.n,
        "mean": lambda r: num((r.best if best else r.last).mean),
        "min": lambda r: num((r.best if best else r.last).min),
        "max": lambda r: num((r.best if best else r.last).max),
    }
    return simple[column]


class ResultsScreen(TableScreen):
    TITLE = "Results"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "b",
            "toggle_best",
            "Best/last",
            tooltip="Accuracy at the best epoch, or at the last one.",
        ),
        Binding(
            "space",
            "mark",
            "Select",
            tooltip="Select the row for the export (or click its ✓ column).",
        ),
        Binding("a", "mark_all", "Select all", tooltip="Select every row, or none."),
        Binding(
            "x",
            "export",
            "Export",
            tooltip="The selection (or every row) as markdown: a file in the workspace, and the clipboard.",
        ),
        filter_binding("Filter by text: group, models, loss, dataset."),
        SORT,
        Binding("O", "reverse", "Reverse", show=False),
        Binding("enter", "runs", "Runs", tooltip="The group's runs."),
        CLEAR_FILTER,
    ]
    DEFAULT_CSS = """
    ResultsScreen #filter { height: 1; }
    """
    grid_id = "results"
    filter_placeholder = "/ filter: group, models, loss, dataset…"

    def __init__(self) -> None:
        super().__init__(FIRST + LAST, sort_column="mark")
        self.best = True
        self.rows: list[GroupRow] = []
        self._shown: dict[str, GroupRow] = {}
        self._columns: list[Column] = []

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.rows = group_rows(snapshot.runs)
        self.refresh_rows()

    def refresh_rows(self) -> None:
        grid, words = self.grid, self.filter_words()
        rows = [
            r
            for r in self.rows
            if all(w in f"{r.name} {r.label} {r.loss} {r.dataset}".lower() for w in words)
        ]
        assert self.sort_column is not None
        rows.sort(key=sort_key(self.sort_column, self.best), reverse=self.sort_reverse)
        seeds = sorted(
            {s for r in rows for s in (*r.best_by_seed, *r.pending_seeds, *r.failed_seeds)}
        )
        columns = (
            FIRST
            + [Column(f"s{s}", f"s{s}", justify="right", tone=_seed_tone) for s in seeds]
            + LAST
        )
        if [c.key for c in columns] != [c.key for c in self._columns]:
            self._columns = columns
            grid.set_columns(columns)
        self._shown = {r.group_key: r for r in rows}
        grid.set_rows(
            [r.group_key for r in rows],
            {r.group_key: row_cells(r, seeds, self.best, r.group_key in grid.marked) for r in rows},
        )
        self.show_sort()
        which = "BEST epoch" if self.best else "LAST epoch"
        marked = len(grid.marked)
        self.show_summary(
            f"accuracy % at the {which} (b toggles) · {len(rows)} groups · sample std over seeds"
            + (f" · {marked} selected" if marked else "")
            if self.rows
            else "no results yet: finished runs show up here, one row per configuration"
        )

    def column_label(self, column: Column) -> str:
        return (
            f"{'best' if self.best else 'last'} mean ± std"
            if column.key == "mean"
            else column.label
        )

    def sort_changed(self) -> None:
        self.refresh_rows()  # which shows the sort

    # ------------------------------------------------------------------ actions

    def action_toggle_best(self) -> None:
        self.best = not self.best
        self.refresh_rows()

    @on(Grid.Clicked)
    def _clicked(self, event: Grid.Clicked) -> None:
        if event.column == "mark":  # a click in the ✓ column selects the row
            self.action_mark()

    def action_mark(self) -> None:
        grid = self.grid
        if grid.cursor_key is not None:
            grid.toggle_mark(grid.cursor_key)
            self.refresh_rows()

    def action_mark_all(self) -> None:
        grid = self.grid
        grid.marked = set() if grid.marked else set(grid.order)
        self.refresh_rows()

    @on(Grid.Selected)
    def action_runs(self) -> None:
        """From a group to its runs."""
        row = self._shown.get(self.grid.cursor_key or "")
        if row is not None:
            self.post_message(ShowRuns(row.name.split(" [")[0]))

    def selection(self) -> list[GroupRow]:
        """The marked rows in table order, or every row shown when none is marked."""
        grid = self.grid
        keys = [k for k in grid.order if k in grid.marked] or grid.order
        return [self._shown[k] for k in keys]

    def action_export(self) -> None:
        rows = self.selection()
        if not rows:
            self.app.notify("nothing to export", severity="warning")
            return
        table = markdown_table(rows)
        self.app.copy_to_clipboard(table)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.host.clock()))
        self._write_export(self.host.store.root / f"results-{stamp}.md", table, len(rows))

    @work(thread=True, group="results-export")
    def _write_export(self, path: Path, table: str, n: int) -> None:
        try:
            path.write_text(table)
        except OSError as exc:
            self.app.call_from_thread(self.app.notify, f"not written: {exc}", severity="error")
            return
        self.app.call_from_thread(
            self.app.notify, f"{n} group(s) as markdown: {path} (and the clipboard, via OSC 52)"
        )
