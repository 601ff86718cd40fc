"""Results: one row per group (configuration), each seed in its own column, mean ± std;
or, with ``p``, the groups as a paper's table: a pivot of two spec paths, mean ± std (n)
per cell, the best of each column marked and Δ to a baseline group.

The numbers come from ``kdtui.results`` (``summarize``, ``build_pivot``, ``delta_to``,
``telling_labels``: the functions ``kdtui table`` uses), so the app and the command line
never disagree. A group with seeds still running shows the mean of its finished seeds,
marked ``*``, and the line under the table says how far it is; seeds that failed or were
cancelled are named after the mean. Groups are labelled by what differs between them,
read from their frozen specs — in a worker, like the pivot, never on the event loop.

The screen is here; the flat table's columns and cells are in ``results_rows``, the
pivot's cells and its dialog in ``results_pivot``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.widgets import Static
from textual.worker import Worker, get_current_worker

from kdtui.results import (
    PARTIAL_MARK,
    GroupRow,
    Metric,
    Pivot,
    PivotError,
    build_pivot,
    group_rows,
    group_specs,
    markdown_table,
    selected_on_note,
    summarize,
)
from kdtui.results.pivot import (
    axis_paths,
    delta_text,
    delta_to,
    notes,
    pivot_markdown,
    telling_labels,
)
from kdtui.screens.results_pivot import (
    BEST_MARK,
    PIVOT_ROW,
    PivotDialog,
    default_axes,
    pivot_cell,
    pivot_tone,
)
from kdtui.screens.results_rows import (
    BASELINE,
    DELTA,
    FIRST,
    LABEL,
    LAST,
    MEAN,
    curve_runs,
    row_cells,
    seed_tone,
    sort_key,
)
from kdtui.screens.table import CLEAR_FILTER, SORT, TableScreen, filter_binding
from kdtui.tui.messages import ShowCurves, ShowRuns
from kdtui.tui.snapshot import Snapshot
from kdtui.widgets import Column, Grid


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
        # Each shown group's row as last written, with what it was written from.
        self._written: dict[str, tuple[tuple[Any, ...], tuple[str, ...]]] = {}
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
        seed_columns = [Column(f"s{s}", f"s{s}", justify="right", tone=seed_tone) for s in seeds]
        self._set_columns([*FIRST, *seed_columns, MEAN, *([DELTA] if base else []), LABEL, *LAST])
        labels = self.differs[1]

        def delta(r: GroupRow) -> str | None:
            if base is None:
                return None
            if r is base:
                return BASELINE
            d = delta_to(r, base, metric)
            return "–" if d is None else delta_text(d, r.digits(2))

        written, self._written = self._written, {}

        def cells(r: GroupRow) -> tuple[str, ...]:
            """Written again only when what it shows changed: a new snapshot of a live
            workspace changes a few groups, and thousands cost tenths of a second."""
            args = (r, seeds, self.best, r.group_key in self.marked, labels.get(r.group_key))
            args += (delta(r),)
            known = written.get(r.group_key)
            row = known[1] if known is not None and known[0] == args else row_cells(*args)
            self._written[r.group_key] = (args, row)
            return row

        grid.marked = self.marked & set(self._shown)
        grid.set_rows([r.group_key for r in rows], {r.group_key: cells(r) for r in rows})
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
        legend = [f"{PARTIAL_MARK} mean of the seeds finished so far", *partial] if partial else []
        if self.best and (on := selected_on_note(rows)):  # a test-chosen best flatters
            legend.insert(0, on)
        self._show_legend(" · ".join(legend))

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
                Column(f"c{i}", text, justify="right", max_width=36, tone=pivot_tone)
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
