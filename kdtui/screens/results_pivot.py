"""The results screen's pivot, the groups as a paper's table: each cell on one line, the
axes the dialog starts on, and the dialog that chooses rows, columns and baseline. The
pivot itself is laid out by ``kdtui.results.build_pivot``, as ``kdtui table`` lays it.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Select, Static

from kdtui.results import PARTIAL_MARK, Pivot
from kdtui.results.pivot import cell_text
from kdtui.screens.results_rows import BASELINE
from kdtui.widgets import Tone
from kdtui.widgets.prompt import Dialog

BEST_MARK = "▲"  # after the best mean of a pivot column, as `kdtui table` marks it
PIVOT_ROW = "pivot:"  # the key of a pivot row: PIVOT_ROW + its index
# The axes a KD table is usually read by, when they vary: teachers as rows, losses as columns.
PREFERRED_ROWS = ("teachers", "teachers[0].experiment", "student")
PREFERRED_COLS = ("loss", "student", "augment")


def pivot_tone(text: str) -> Tone | None:
    """A pivot cell's colour: partial means warn, the best of a column stands out."""
    if PARTIAL_MARK + " " in text or text.endswith(PARTIAL_MARK):
        return "warning"
    return "success" if BEST_MARK in text else None


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


class PivotDialog(Dialog[tuple[str, str, str | None] | None]):
    """Rows, columns and baseline of the pivot: (rows, cols, baseline key) or None."""

    DEFAULT_CSS = """
    PivotDialog .row { height: 1; margin-top: 1; }
    PivotDialog .row Label { width: 10; }
    PivotDialog .row Select { width: 1fr; }
    PivotDialog #note { margin-top: 1; }
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
            self.refuse("rows and columns name the same path: choose two")
            return
        base = self.query_one("#baseline", Select).value
        self.dismiss((str(rows), str(cols), None if base is Select.NULL else str(base)))
