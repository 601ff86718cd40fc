"""Runs (home): every run of the workspace, live, filtered and sorted.

Built for thousands of runs: a snapshot becomes one list of keys and one tuple of strings
per run; the Grid compares them with what it shows and repaints only changed, visible rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Input, Select

from kdtui.fmt import fmt_acc, fmt_age, fmt_epoch
from kdtui.results import run_selected_on
from kdtui.screens.run_actions import RUN_BINDINGS, RunActions
from kdtui.screens.table import CLEAR_FILTER, REVERSE, SORT, TableScreen, filter_binding
from kdtui.store import STATUSES
from kdtui.tui.messages import CompareRuns, OpenRun, ShowCurves
from kdtui.tui.snapshot import Snapshot
from kdtui.widgets import STATUS_TONE, Column, Grid

COLUMNS = [
    Column("status", "status", tone=STATUS_TONE.get),
    Column("group", "group", max_width=28),
    Column("seed", "seed", justify="right"),
    Column("epoch", "epoch", justify="right"),
    Column("acc", "acc", justify="right"),
    Column("best", "best", justify="right"),
    Column("device", "device", max_width=10),
    Column("age", "age", justify="right"),
    Column("label", "teacher → student · loss", max_width=60, flex=True),
]
AGES_S = 15  # ages ("3m", "2h") are written again this often
AGE = [c.key for c in COLUMNS].index("age")
#: Where the "best" column's epochs were chosen, in the summary bar (as `kdtui ls` says it
#: under its table): a spec without data.val picks its best epoch on the test set.
PICKED = {
    frozenset({"test"}): "best picked on test",
    frozenset({"val"}): "best picked on validation",
    frozenset({"test", "val"}): "best on validation, ° on test",
}
_STATUS_RANK = {s: i for i, s in enumerate(STATUSES)}
# How each column sorts: by the value behind the text (numbers as numbers; age: newest first).
SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "status": lambda r: _STATUS_RANK.get(r.get("status", ""), 99),
    "group": lambda r: r.get("name") or "",
    "seed": lambda r: r.get("seed") or 0,
    "epoch": lambda r: (r.get("epoch") or 0) / max(1, r.get("epochs") or 1),
    "acc": lambda r: r.get("acc") if r.get("acc") is not None else -1.0,
    "best": lambda r: r.get("best_acc") if r.get("best_acc") is not None else -1.0,
    "device": lambda r: r.get("device") or "",
    "age": lambda r: -(r.get("created") or 0),
    "label": lambda r: f"{r.get('label', '')} {r.get('loss', '')}",
}


def run_cells(run: dict[str, Any], now: float, mark: bool = False) -> tuple[str, ...]:
    """The text of one run's row, in COLUMNS order; ``mark``: a workspace whose runs chose
    their best epochs in both places marks a test-chosen best °, as `kdtui ls`."""
    best = fmt_acc(run.get("best_acc"))
    if mark and run.get("best_acc") is not None and run_selected_on(run) == "test":
        best += "°"
    return (
        run.get("status", "?"),
        run.get("name", "?"),
        str(run.get("seed", "")),
        fmt_epoch(run),
        fmt_acc(run.get("acc")),
        best,
        str(run.get("device") or "–"),
        fmt_age(run.get("created"), now=now),
        f"{run.get('label', '')} · {run.get('loss', '')}",
    )


def matches(run: dict[str, Any], words: list[str]) -> bool:
    """Every word of the filter appears in the run's id, group, models, loss, device or error."""
    hay = " ".join(
        str(run.get(k) or "")
        for k in ("run_id", "name", "label", "loss", "device", "error", "dataset")
    ).lower()
    return all(w in hay for w in words)


class RunsScreen(RunActions, TableScreen):
    TITLE = "Runs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open"),
        *RUN_BINDINGS,
        filter_binding("Filter by text: group, run id, models, loss, device, error."),
        Binding(
            "f", "cycle_status", "Status", tooltip="Show one status only (cycles through them)."
        ),
        Binding(
            "c",
            "curves",
            "Curves",
            tooltip="The selected runs' curves on one chart (or the cursor's run's).",
        ),
        Binding("space", "mark", "Select", show=False, tooltip="Select the run for the curves."),
        Binding(
            "i",
            "compare",
            "Compare",
            show=False,
            tooltip="The two selected runs' insides: confusion difference, per-class accuracy.",
        ),
        SORT,
        REVERSE,
        CLEAR_FILTER,
    ]
    DEFAULT_CSS = """
    RunsScreen #filters { height: 1; }
    RunsScreen #filter { width: 1fr; }
    RunsScreen #status { width: 20; }
    """
    grid_id = "runs"
    filter_placeholder = "/ filter: group, run id, model, loss…"

    def __init__(self) -> None:
        super().__init__(COLUMNS, sort_column="age")
        self._runs: list[dict[str, Any]] = []
        self._cells: dict[str, tuple[str, ...]] = {}
        self._summaries: dict[str, dict[str, Any]] = {}  # each run's, as its cells show it
        self._aged = float("-inf")  # when every age was last written
        self._picked: frozenset[str] = frozenset()  # where the runs' best epochs were chosen
        self._marking: list[str] = []  # the runs selected, in the order they were

    def compose_filters(self) -> Iterator[Widget]:
        with Horizontal(id="filters"):
            yield from super().compose_filters()
            yield Select(
                [(s, s) for s in STATUSES],
                prompt="any status",
                id="status",
                compact=True,
            )

    def on_mount(self) -> None:
        super().on_mount()
        self.sort_changed()
        self.set_interval(AGES_S, self._ages_move_on)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self._runs = snapshot.runs
        self._compute_cells()

    def _ages_move_on(self) -> None:
        if self.is_current:
            self._compute_cells()
        else:
            self._stale = True  # written again when the screen is shown

    def _compute_cells(self) -> None:
        """The text of every run, filtering and sorting then only pick from it: written
        again for the runs whose summary changed since (a live workspace changes a few per
        poll, and 5,000 rows cost a tenth of a second on a loaded box), and every run's age
        once it may read differently."""
        now = self.host.clock()
        every = now - self._aged >= AGES_S
        if every:
            self._aged = now
        picked = frozenset(
            on for r in self._runs if r.get("best_acc") is not None and (on := run_selected_on(r))
        )
        mark = len(picked) > 1
        cells, summaries = self._cells, self._summaries
        if mark != (len(self._picked) > 1):
            cells = {}  # the ° marks come or go: every row written again
        self._picked = picked
        self._cells, self._summaries = {}, {}
        for run in self._runs:
            key = run["run_id"]
            row = cells.get(key)
            if row is None or summaries.get(key) != run:
                row = run_cells(run, now, mark)
            elif every:
                row = (*row[:AGE], fmt_age(run.get("created"), now=now), *row[AGE + 1 :])
            self._cells[key], self._summaries[key] = row, run
        self.refresh_rows()

    def refresh_rows(self) -> None:
        words = self.filter_words()
        status = self.query_one("#status", Select).value
        runs = [
            r
            for r in self._runs
            if (status is Select.NULL or r.get("status") == status)
            and (not words or matches(r, words))
        ]
        assert self.sort_column is not None
        runs.sort(key=SORT_KEYS[self.sort_column], reverse=self.sort_reverse)
        order = [r["run_id"] for r in runs]
        self.grid.set_rows(order, {k: self._cells[k] for k in order})
        shown = (
            f"{len(runs)} of {len(self._runs)} runs"
            if len(runs) != len(self._runs)
            else f"{len(runs)} runs"
        )
        picked = f" · {PICKED[self._picked]}" if self._picked else ""
        self.show_summary(
            f"{shown}{picked} · sorted by {self.sort_column} · enter opens a run · ? for keys"
            if self._runs
            else "no runs yet: compose one (2) or `kdtui run examples/quickstart.json`"
        )

    def selected_run(self) -> dict[str, Any] | None:
        key = self.grid.cursor_key
        snapshot = self.host.snapshot
        return snapshot.by_id.get(key) if key and snapshot else None

    # ------------------------------------------------------------------ actions

    @on(Grid.Selected)
    def action_open(self) -> None:
        if run := self.selected_run():
            self.post_message(OpenRun(run["run_id"]))

    def action_mark(self) -> None:
        """Select the run under the cursor (again: no longer), for the curves."""
        if (key := self.grid.cursor_key) is not None:
            self.grid.toggle_mark(key)
            self._marking = [k for k in self._marking if k != key] + [key]  # in the order marked

    def action_curves(self) -> None:
        """The selected runs shown (or the cursor's run) on one chart, each on its own."""
        grid, snapshot = self.grid, self.host.snapshot
        keys = [k for k in grid.order if k in grid.marked] or [grid.cursor_key]
        runs = [snapshot.by_id[k] for k in keys if snapshot and k in snapshot.by_id]
        if runs:
            curves = [(f"{r.get('name')} s{r.get('seed')}", [r["run_id"]]) for r in runs]
            self.post_message(ShowCurves(curves))

    def action_compare(self) -> None:
        """The two selected runs compared: B − A, A the one selected first (the baseline,
        say, then the KD student)."""
        marked = self.grid.marked
        first = [k for k in self._marking if k in marked]
        keys = first + [k for k in self.grid.order if k in marked and k not in first]
        if len(keys) != 2:
            self.notify(
                f"select two runs with space to compare them ({len(keys)} selected)",
                severity="warning",
            )
            return
        self.post_message(CompareRuns(*keys))

    def show_filter(self, text: str) -> None:
        """The runs matching ``text`` (the app's answer to ``ShowRuns``)."""
        self.query_one("#filter", Input).value = text
        self.grid.focus()

    def action_clear_filter(self) -> None:
        super().action_clear_filter()  # first: it lets an open list close (SkipAction)
        self.query_one("#status", Select).clear()

    def action_cycle_status(self) -> None:
        select = self.query_one("#status", Select)
        order = [Select.NULL, *STATUSES]
        select.value = order[(order.index(select.value) + 1) % len(order)]

    @on(Select.Changed, "#status")
    def _status_changed(self) -> None:
        self.refresh_rows()
