"""Results: one row per group (configuration), each seed in its own column, mean ± std;
or, with ``p``, the groups as a paper's table: a pivot of two spec paths, mean ± std (n)
per cell, the best of each column marked and Δ to a baseline group.

The numbers come from ``kdtui.results`` (``summarize``, ``build_pivot``, ``delta_to``,
``telling_labels``: the functions ``kdtui table`` uses), so the app and the command line
never disagree. A group with seeds still running shows the mean of its finished seeds,
marked ``*``, and the line under the table says how far it is; seeds that failed or were
cancelled are named after the mean. Groups are labelled by what differs between them,
read from their frozen specs — in a worker, like the pivot, never on the event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select, Static
from textual.worker import Worker, get_current_worker

from kdtui.fmt import fmt_acc
from kdtui.results import (
    PARTIAL_MARK,
    GroupRow,
    Metric,
    Pivot,
    PivotError,
    Summary,
    build_pivot,
    group_rows,
    group_specs,
    markdown_table,
    summarize,
)
from kdtui.results.pivot import (
    axis_paths,
    cell_text,
    delta_text,
    delta_to,
    notes,
    pivot_markdown,
    telling_labels,
)
from kdtui.screens.table import CLEAR_FILTER, SORT, TableScreen, filter_binding
from kdtui.store import ACTIVE
from kdtui.tui.messages import ShowCurves, ShowRuns
from kdtui.tui.snapshot import Snapshot
from kdtui.widgets import Column, Grid, Tone

# Between a mean and the note on the seeds left out of it: "80.58 ± 0.53 · 1 failed".
NOTE_SEP = " · "
CANCELLED = "⊘"  # a seed cell: cancelled, told apart from ✗ failed or crashed
BEST_MARK = "▲"  # after the best mean of a pivot column, as `kdtui table` marks it
BASELINE = "base"  # the Δ of the baseline itself
MISSING = "–"  # no number (yet)
WHOLE_LABEL = "teacher → student · loss"  # the label column before the specs are read
PIVOT_ROW = "pivot:"  # the key of a pivot row: PIVOT_ROW + its index
# The axes a KD table is usually read by, when they vary: teachers as rows, losses as columns.
PREFERRED_ROWS = ("teachers", "teachers[0].experiment", "student")
PREFERRED_COLS = ("loss", "student", "augment")


def _mean_tone(text: str) -> Tone | None:
    final = "±" in text and NOTE_SEP not in text and not text.endswith(PARTIAL_MARK)
    return None if final else "warning"


def _seed_tone(text: str) -> Tone | None:
    return {"✗": "error", CANCELLED: "muted"}.get(text)


def _pivot_tone(text: str) -> Tone | None:
    if PARTIAL_MARK + " " in text or text.endswith(PARTIAL_MARK):
        return "warning"
    return "success" if BEST_MARK in text else None


# The seeds and their mean first, then what tells the group apart (never cut below 16
# characters: enough for the value that differs), then min and max, which the seeds show
# too: in 80 columns those are what gets cut, not the means nor the labels.
FIRST = [
    Column("mark", "✓"),
    Column("group", "group", max_width=28),
    Column("n", "n", justify="right"),
]
MEAN = Column("mean", "mean ± std", justify="right", tone=_mean_tone)
DELTA = Column("delta", "Δ", justify="right")
LABEL = Column("label", WHOLE_LABEL, max_width=60, flex=True, min_width=16)
LAST = [
    Column("min", "min", justify="right"),
    Column("max", "max", justify="right"),
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


def mean_cell(row: GroupRow, summary: Summary, metric: Metric) -> str:
    """Mean ± std of the finished seeds, marked * while others still run (the line under
    the table says how many), then what the finished ones leave out: ``80.58 ± 0.53 · 1
    failed``. A group with no finished seed shows – (or what became of its seeds)."""
    ended = replace(row, pending_seeds=[]).status_note(metric)  # failed, not finite...
    if summary.mean == MISSING:
        return ended or MISSING
    return summary.mean + summary.mark + (NOTE_SEP + ended if ended else "")


def row_cells(
    row: GroupRow,
    seeds: list[int],
    best: bool,
    marked: bool,
    label: str | None = None,
    delta: str | None = None,
) -> tuple[str, ...]:
    """A group's row: ✓, name, n, one cell per seed, mean, Δ (with a baseline), its label
    (what tells it apart; its models and loss when that is not known), min, max."""
    metric: Metric = "best" if best else "last"
    summary = summarize(row, metric, missing=MISSING)  # once: a std costs (statistics)
    values = row.best_by_seed if best else row.last_by_seed
    return (
        "✓" if marked else "",
        row.name,
        str(row.n),
        *(seed_cell(row, s, values) for s in seeds),
        mean_cell(row, summary, metric),
        *(() if delta is None else (delta,)),
        f"{row.label} · {row.loss}" if label is None else label,
        summary.min,
        summary.max,
    )


def sort_key(
    column: str,
    best: bool,
    labels: dict[str, str] | None = None,
    base: GroupRow | None = None,
) -> Callable[[GroupRow], Any]:
    """Numbers sort as numbers; a group with nothing to show sorts last."""

    def num(value: float | None) -> float:
        return -math.inf if value is None or not math.isfinite(value) else value

    metric: Metric = "best" if best else "last"
    if column.startswith("s") and column[1:].isdigit():
        seed = int(column[1:])
        return lambda r: num((r.best_by_seed if best else r.last_by_seed).get(seed))
    simple: dict[str, Callable[[GroupRow], Any]] = {
        "mark": lambda r: r.first_created,
        "group": lambda r: r.name,
        "label": lambda r: (labels or {}).get(r.group_key) or f"{r.label} {r.loss}",
        "n": lambda r: r.n,
        "mean": lambda r: num((r.best if best else r.last).mean),
        "delta": lambda r: num(delta_to(r, base, metric) if base is not None else None),
        "min": lambda r: num((r.best if best else r.last).min),
        "max": lambda r: num((r.best if best else r.last).max),
    }
    return simple[column]


def curve_runs(runs: list[dict[str, Any]], group_key: str) -> list[str]:
    """The runs whose curves make a group's: per seed its latest done run, else its
    latest running one (the runs its numbers come from, or will)."""
    chosen: dict[int, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: r.get("created") or 0):
        if run.get("group_key") != group_key or run.get("status") not in ("done", *ACTIVE):
            continue
        seed, prev = run.get("seed", 0), chosen.get(run.get("seed", 0))
        if prev is None or run.get("status") == "done" or prev.get("status") != "done":
            chosen[seed] = run
    return [r["run_id"] for _, r in sorted(chosen.items())]


def pivot_cell(pivot: Pivot, r: int, c: int) -> str:
    """``86.90 ± 1.74 (3) ▲ +6.33``: a pivot cell on one line, its Δ last (the CLI puts it
    under the mean; the line under the table says what it is taken from)."""
    cell = pivot.cell(r, c)
    if cell is None:
        return ""
    t = cell_text(pivot, cell)
    text = f"{t.mean} ({t.n}){t.mark}" + (f" {BEST_MARK}" if t.best else "")
    if t.delta == "baseline":
        return f"{text} {BASELINE}"
    return f"{text} {t.delta}" if t.delta else text


def default_axes(choices: list[str], current: tuple[str, str] | None) -> tuple[str, str]:
    """The rows and columns the dialog starts on: the last ones chosen where they still
    vary, else teachers × loss (the KD table) where they vary, else the first two."""
    if current and all(p in choices for p in current):
        return current
    rows = next((p for p in PREFERRED_ROWS if p in choices), choices[0])
    rest = [p for p in choices if p != rows]
    cols = next((p for p in PREFERRED_COLS if p in rest), rest[0])
    return rows, cols


class PivotDialog(ModalScreen[tuple[str, str, str | None] | None]):
    """Rows, columns and baseline of the pivot: (rows, cols, baseline key) or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PivotDialog { align: center middle; }
    PivotDialog > Vertical {
        width: 70; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    PivotDialog .row { height: 1; margin-top: 1; }
    PivotDialog .row Label { width: 10; }
    PivotDialog .row Select { width: 1fr; }
    PivotDialog #note { margin-top: 1; }
    PivotDialog #note { color: $text-muted; }
    PivotDialog #error { color: $error; display: none; }
    PivotDialog #buttons { height: auto; align-horizontal: right; }
    PivotDialog Button { margin-left: 1; }
    """

    def __init__(
        self,
        choices: list[str],
        axes: tuple[str, str],
        groups: list[tuple[str, str]],
        baseline: str | None,
    ) -> None:
        """``choices``: the paths that vary; ``groups``: (name, key) of the baseline's
        candidates."""
        super().__init__()
        self.choices, self.axes, self.groups, self.baseline = choices, axes, groups, baseline

    def compose(self) -> ComposeResult:
        paths = [(p, p) for p in self.choices]
        keys = {key for _, key in self.groups}
        with Vertical() as box:
            box.border_title = "Pivot: the groups as a paper's table"
            with Horizontal(classes="row"):
                yield Label("Rows")
                yield Select(paths, value=self.axes[0], allow_blank=False, id="rows", compact=True)
            with Horizontal(classes="row"):
                yield Label("Columns")
                yield Select(paths, value=self.axes[1], allow_blank=False, id="cols", compact=True)
            with Horizontal(classes="row"):
                yield Label("Baseline")
                yield Select(
                    self.groups,
                    value=self.baseline if self.baseline in keys else Select.NULL,
                    prompt="none (no Δ)",
                    id="baseline",
                    compact=True,
                )
            yield Static(
                "Paths that vary among the groups shown, labelled objects first. Each cell: "
                "mean ± std (n), ▲ the best of its column, Δ to the baseline.",
                id="note",
            )
            yield Static(id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Show pivot", id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()  # the usual table is one enter away

    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        rows, cols = (self.query_one(f"#{k}", Select).value for k in ("rows", "cols"))
        if rows == cols:
            error = self.query_one("#error", Static)
            error.update("✗ rows and columns name the same path: choose two")
            error.display = True
            return
        base = self.query_one("#baseline", Select).value
        self.dismiss((str(rows), str(cols), None if base is Select.NULL else str(base)))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ResultsScreen(TableScreen):
    TITLE = "Results"
    # In the order of the footer, which shows what 80 columns hold: the table's own keys first.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "b",
            "toggle_best",
            "Best/last",
            tooltip="Accuracy at the best epoch, or at the last one.",
        ),
        Binding(
            "p",
            "pivot",
            "Pivot",
            tooltip="The groups as a paper's table: rows and columns by two spec paths that "
            "vary, mean ± std (n) per cell, Δ to a baseline (p again: one row per group).",
        ),
        Binding(
            "c",
            "curves",
            "Curves",
            tooltip="Accuracy and loss parts per epoch of the selected groups (or of the "
            "cursor's: a pivot row's groups), each its mean with a ± std band.",
        ),
        Binding(
            "space",
            "mark",
            "Select",
            tooltip="Select the row for the export or the curves (or click its ✓ column).",
        ),
        Binding(
            "x",
            "export",
            "Export",
            tooltip="The selection (or every row; in the pivot, the pivot) as markdown: "
            "a file in the workspace, and the clipboard.",
        ),
        filter_binding("Filter by text: group, models, loss, dataset."),
        Binding(
            "B",
            "baseline",
            "Baseline",
            tooltip="Δ to this group: the group under the cursor (again: none); "
            "in the pivot, chosen in its dialog.",
        ),
        Binding("a", "mark_all", "Select all", tooltip="Select every row, or none."),
        SORT,
        Binding("O", "reverse", "Reverse", show=False),
        Binding("enter", "runs", "Runs", tooltip="The group's runs (in the pivot: its curves)."),
        CLEAR_FILTER,
    ]
    DEFAULT_CSS = """
    ResultsScreen #filter { height: 1; }
    ResultsScreen #legend { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    """
    grid_id = "results"
    filter_placeholder = "/ filter: group, models, loss, dataset…"

    def __init__(self) -> None:
        super().__init__([*FIRST, MEAN, LABEL, *LAST], sort_column="mark")
        self.best = True
        self.rows: list[GroupRow] = []
        self.runs: list[dict[str, Any]] = []
        self._shown: dict[str, GroupRow] = {}
        self._columns: list[Column] = []
        self.marked: set[str] = set()  # group keys, in the flat table and the pivot alike
        self.baseline: str | None = None  # a group key
        # Each group's frozen experiment (read in a worker), and what tells them apart.
        self.specs: dict[str, dict[str, Any]] = {}
        self._unreadable: set[str] = set()  # groups without a spec (outside results)
        self.differs: tuple[list[str], dict[str, str]] = ([], {})
        self._labelled_for: frozenset[str] | None = None  # the groups ``differs`` is of
        self._spec_reader: Worker | None = None
        # The pivot: chosen axes, whether it is shown, and the latest one built (in a worker).
        self.axes: tuple[str, str] | None = None
        self.pivoting = False
        self.pivot: Pivot | None = None
        self.pivot_problem = ""
        self._pivot_rows: dict[str, list[GroupRow]] = {}

    async def on_mount(self) -> None:
        """The legend (what a * or a Δ means) goes above the table screen's summary bar,
        before the first snapshot is shown (Textual runs the base classes' on_mount next)."""
        await self.mount(Static(id="legend"), before=self.query_one("#summary"))

    # ------------------------------------------------------------------ data

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.runs = snapshot.runs
        self.rows = group_rows(snapshot.runs)
        self.read_specs()
        self.refresh_rows()

    def read_specs(self) -> None:
        """Read the specs of groups not read yet (one run folder each), then label every
        group by what differs between them: in a worker, one at a time, again only when
        the groups change."""
        keys = [r.group_key for r in self.rows]  # oldest first: the same labels every time
        if frozenset(keys) == self._labelled_for:
            return
        if self._spec_reader is None or self._spec_reader.is_finished:
            self._spec_reader = self._read_specs(self.runs, keys)

    @work(thread=True, group="results-specs")
    def _read_specs(self, runs: list[dict[str, Any]], keys: list[str]) -> None:
        missing = set(keys) - set(self.specs) - self._unreadable
        read = group_specs(self.host.store, [r for r in runs if r.get("group_key") in missing])
        specs = {**self.specs, **{k: v for k, v in read.items() if v}}
        unreadable = self._unreadable | {k for k, v in read.items() if not v}
        differs = telling_labels({k: specs[k] for k in keys if k in specs})
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._specs_read, specs, unreadable, differs, frozenset(keys))

    def _specs_read(
        self,
        specs: dict[str, dict[str, Any]],
        unreadable: set[str],
        differs: tuple[list[str], dict[str, str]],
        labelled_for: frozenset[str],
    ) -> None:
        self.specs, self._unreadable, self.differs = specs, unreadable, differs
        self._labelled_for = labelled_for
        self.refresh_rows()
        self.read_specs()  # groups that came while these were read

    def shown_rows(self) -> list[GroupRow]:
        """The groups the filter lets through, in the chosen order."""
        words = self.filter_words()
        rows = [
            r
            for r in self.rows
            if all(w in f"{r.name} {r.label} {r.loss} {r.dataset}".lower() for w in words)
        ]
        assert self.sort_column is not None
        key = sort_key(self.sort_column, self.best, self.differs[1], self.baseline_row())
        rows.sort(key=key, reverse=self.sort_reverse)
        return rows

    def baseline_row(self) -> GroupRow | None:
        return next((r for r in self.rows if r.group_key == self.baseline), None)

    def metric(self) -> Metric:
        return "best" if self.best else "last"

    # ------------------------------------------------------------------ drawing

    def refresh_rows(self) -> None:
        rows = self.shown_rows()
        self._shown = {r.group_key: r for r in rows}
        if self.pivoting:
            self.build_pivot(rows)
            if self.pivot is not None and not self.pivot_problem:
                return  # the one shown stays until the new one is drawn
        self._draw_flat(rows)

    def _set_columns(self, columns: list[Column]) -> None:
        if [c.key for c in columns] != [c.key for c in self._columns] or [
            c.label for c in columns
        ] != [c.label for c in self._columns]:
            self._columns = columns
            self.grid.set_columns(columns)

    def _draw_flat(self, rows: list[GroupRow]) -> None:
        grid, metric = self.grid, self.metric()
        base = self.baseline_row()
        seeds = sorted(
            {s for r in rows for s in (*r.best_by_seed, *r.pending_seeds, *r.failed_seeds)}
        )
        seed_columns = [Column(f"s{s}", f"s{s}", justify="right", tone=_seed_tone) for s in seeds]
        self._set_columns([*FIRST, *seed_columns, MEAN, *([DELTA] if base else []), LABEL, *LAST])
        labels = self.differs[1]

        def delta(r: GroupRow) -> str | None:
            if base is None:
                return None
            if r is base:
                return BASELINE
            d = delta_to(r, base, metric)
            return "–" if d is None else delta_text(d, r.digits(2))

        grid.marked = self.marked & set(self._shown)
        grid.set_rows(
            [r.group_key for r in rows],
            {
                r.group_key: row_cells(
                    r,
                    seeds,
                    self.best,
                    r.group_key in self.marked,
                    labels.get(r.group_key),
                    delta(r),
                )
                for r in rows
            },
        )
        self.show_sort()
        which = "BEST epoch" if self.best else "LAST epoch"
        marked = len(grid.marked)
        problem = f"pivot: {self.pivot_problem} · " if self.pivoting and self.pivot_problem else ""
        waiting = "pivot: laying out… · " if self.pivoting and not problem else ""
        self.show_summary(
            problem
            + waiting
            + (
                f"accuracy % at the {which} (b toggles) · {len(rows)} groups · sample std over seeds"
                + (f" · {marked} selected" if marked else "")
                if self.rows
                else "no results yet: finished runs show up here, one row per configuration"
            )
        )
        partial = [
            f"{r.name}: {p}"
            for r in rows
            if r.pending_seeds and (p := summarize(r, metric).progress)
        ]
        self._show_legend(
            f"{PARTIAL_MARK} mean of the seeds finished so far · " + " · ".join(partial)
            if partial
            else ""
        )

    def _show_legend(self, text: str) -> None:
        legend = self.query_one("#legend", Static)
        legend.display = bool(text)
        legend.update(text)

    def column_label(self, column: Column) -> str:
        if column.key == "mean":
            return f"{'best' if self.best else 'last'} mean ± std"
        if column.key == "label" and self.differs[0]:
            return " · ".join(self.differs[0])  # the paths whose values tell groups apart
        return column.label

    # ------------------------------------------------------------------ the pivot

    def build_pivot(self, rows: list[GroupRow]) -> None:
        """Lay the shown groups out in a worker; it draws the pivot when done (or says why
        it cannot, over the flat table)."""
        if self.axes is None or not self.specs_read(rows):
            return  # built again once the specs are read
        base = self.baseline if self.baseline in self._shown else None
        self._build_pivot(rows, self.specs, self.axes, self.metric(), base)

    def specs_read(self, rows: list[GroupRow]) -> bool:
        return all(r.group_key in self.specs or r.group_key in self._unreadable for r in rows)

    @work(thread=True, exclusive=True, group="results-pivot")
    def _build_pivot(
        self,
        rows: list[GroupRow],
        specs: dict[str, dict[str, Any]],
        axes: tuple[str, str],
        metric: Metric,
        baseline: str | None,
    ) -> None:
        try:
            pivot, problem = build_pivot(rows, specs, *axes, metric, baseline), ""
        except PivotError as exc:
            pivot, problem = None, str(exc).replace("--", "")  # no options in the app
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._pivot_built, pivot, problem)

    def _pivot_built(self, pivot: Pivot | None, problem: str) -> None:
        if not self.pivoting:
            return
        self.pivot, self.pivot_problem = pivot, problem
        if pivot is None:
            self._draw_flat(list(self._shown.values()))
        else:
            self._draw_pivot(pivot)

    def _draw_pivot(self, pivot: Pivot) -> None:
        grid = self.grid
        columns = [
            Column("mark", "✓"),
            Column("row", f"{pivot.rows_path} \\ {pivot.cols_path}", max_width=24),
            *(
                Column(f"c{i}", text, justify="right", max_width=36, tone=_pivot_tone)
                for i, text in enumerate(pivot.col_labels)
            ),
        ]
        self._set_columns(columns)
        self._pivot_rows = {
            f"{PIVOT_ROW}{r}": [
                cell.group for (rr, _), cell in sorted(pivot.cells.items()) if rr == r
            ]
            for r in range(len(pivot.row_labels))
        }
        marked = {
            k for k, groups in self._pivot_rows.items() if groups and self._all_marked(groups)
        }
        grid.marked = marked
        grid.set_rows(
            list(self._pivot_rows),
            {
                f"{PIVOT_ROW}{r}": (
                    "✓" if f"{PIVOT_ROW}{r}" in marked else "",
                    text,
                    *(pivot_cell(pivot, r, c) for c in range(len(pivot.col_labels))),
                )
                for r, text in enumerate(pivot.row_labels)
            },
        )
        self.show_sort()
        what = "best" if pivot.metric == "best" else "last"
        self.show_summary(
            f"{pivot.rows_path} × {pivot.cols_path} · mean ± std (n) at the {what.upper()} "
            f"epoch (b) · {BEST_MARK} best of its column · p: one row per group"
        )
        self._show_legend(" · ".join(notes(pivot, best=BEST_MARK)[1:]))

    def _all_marked(self, groups: list[GroupRow]) -> bool:
        return all(g.group_key in self.marked for g in groups)

    def cursor_groups(self) -> list[GroupRow]:
        """The groups of the row under the cursor: one, or a pivot row's."""
        key = self.grid.cursor_key or ""
        if key.startswith(PIVOT_ROW):
            return list(self._pivot_rows.get(key, []))
        row = self._shown.get(key)
        return [row] if row is not None else []

    # ------------------------------------------------------------------ actions

    def action_toggle_best(self) -> None:
        self.best = not self.best
        self.refresh_rows()

    def action_pivot(self) -> None:
        """Off: choose rows, columns and baseline, then show the pivot. On: back to one
        row per group (the choices are kept for next time)."""
        if self.pivoting:
            self.pivoting, self.pivot, self.pivot_problem = False, None, ""
            self.refresh_rows()
            return
        self.choose_pivot()

    def choose_pivot(self) -> None:
        rows = list(self._shown.values())
        if len(rows) < 2:
            self.app.notify("a pivot needs two groups or more", severity="warning")
            return
        if not self.specs_read(rows):
            self.app.notify("still reading the groups' specs: try again in a moment")
            return
        choices = axis_paths(self.specs[r.group_key] for r in rows if r.group_key in self.specs)
        if len(choices) < 2:
            self.app.notify(
                "no two spec paths vary among these groups: nothing to lay out",
                severity="warning",
            )
            return

        def chosen(answer: tuple[str, str, str | None] | None) -> None:
            if answer is None:
                return
            self.axes, self.baseline = answer[:2], answer[2]
            self.pivoting, self.pivot, self.pivot_problem = True, None, ""
            self.refresh_rows()

        groups = [(r.name, r.group_key) for r in rows]
        dialog = PivotDialog(choices, default_axes(choices, self.axes), groups, self.baseline)
        self.app.push_screen(dialog, chosen)

    def action_baseline(self) -> None:
        """The group under the cursor becomes the baseline (again: none); in the pivot,
        whose rows hold several groups, the dialog asks which."""
        if self.pivoting:
            self.choose_pivot()
            return
        groups = self.cursor_groups()
        if not groups:
            return
        key = groups[0].group_key
        self.baseline = None if self.baseline == key else key
        self.app.notify(
            f"baseline: {groups[0].name} (Δ = mean − its mean)" if self.baseline else "no baseline"
        )
        self.refresh_rows()

    @on(Grid.Clicked)
    def _clicked(self, event: Grid.Clicked) -> None:
        if event.column == "mark":  # a click in the ✓ column selects the row
            self.action_mark()

    def action_mark(self) -> None:
        groups = {g.group_key for g in self.cursor_groups()}
        if groups:
            self.marked = self.marked - groups if groups <= self.marked else self.marked | groups
            self.redraw()

    def action_mark_all(self) -> None:
        self.marked = set() if self.marked else set(self._shown)
        self.redraw()

    def redraw(self) -> None:
        """Draw again what is shown (marks changed): the pivot as it is, without a rebuild."""
        if self.pivoting and self.pivot is not None and not self.pivot_problem:
            self._draw_pivot(self.pivot)
        else:
            self._draw_flat(list(self._shown.values()))

    @on(Grid.Selected)
    def action_runs(self) -> None:
        """From a group to its runs; from a pivot row to its groups' curves."""
        if self.pivoting and (self.grid.cursor_key or "").startswith(PIVOT_ROW):
            self.action_curves(cursor=True)
            return
        row = self._shown.get(self.grid.cursor_key or "")
        if row is not None:
            self.post_message(ShowRuns(row.name.split(" [")[0]))

    def action_curves(self, cursor: bool = False) -> None:
        """The selected groups' curves together (or the cursor row's groups)."""
        shown = [r for r in self._shown.values() if r.group_key in self.marked]
        groups = self.cursor_groups() if cursor or not shown else shown
        curves = [(g.name, curve_runs(self.runs, g.group_key)) for g in groups]
        curves = [(name, ids) for name, ids in curves if ids]
        if not curves:
            self.app.notify("no runs with epochs to plot in these groups", severity="warning")
            return
        self.post_message(ShowCurves(curves))

    def selection(self) -> list[GroupRow]:
        """The marked rows in table order, or every row shown when none is marked."""
        rows = list(self._shown.values())
        return [r for r in rows if r.group_key in self.marked] or rows

    def action_export(self) -> None:
        if self.pivoting and self.pivot is not None and not self.pivot_problem:
            table, n = pivot_markdown(self.pivot), len(self.pivot.cells)
        else:
            rows = self.selection()
            if not rows:
                self.app.notify("nothing to export", severity="warning")
                return
            table, n = markdown_table(rows), len(rows)
        self.app.copy_to_clipboard(table)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.host.clock()))
        self._write_export(self.host.store.root / f"results-{stamp}.md", table, n)

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

    # ------------------------------------------------------------------ sorting

    def action_sort(self) -> None:
        if not self.pivoting:  # a pivot's rows and columns keep the order a table reads in
            super().action_sort()

    def action_reverse(self) -> None:
        if not self.pivoting:
            super().action_reverse()

    def on_grid_header_clicked(self, event: Grid.HeaderClicked) -> None:
        if self.pivoting:  # Textual would go on to the table screen's handler, which sorts
            event.prevent_default()

    def sort_changed(self) -> None:
        self.refresh_rows()  # which shows the sort
