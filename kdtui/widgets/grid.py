"""The Grid: the table of the runs, results and TODO screens.

``Grid`` is a read-only table for thousands of rows. Textual's DataTable measures every
cell it is given and re-lays itself out on each change, which takes seconds at 5,000 runs;
a Grid renders only the lines on screen (Line API), so a new snapshot costs a list
comparison and a repaint of the rows that changed and are visible.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.geometry import Region, Size
from textual.highlight import highlight
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

# Semantic colours (theme variables, readable in dark and light themes) by run status.
STATUS_TONE = {
    "queued": "primary",
    "running": "warning",
    "done": "success",
    "failed": "error",
    "crashed": "error",
    "cancelled": "muted",
}
Tone = Literal["primary", "warning", "success", "error", "muted"]


def json_view(value: Any) -> Content:
    """Highlighted JSON in the theme's own colours (dark or light alike), lists of numbers
    on one line (seeds, channels, milestones), so a spec fits on a screen."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    text = re.sub(
        r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m[1]) + "]", text
    )
    return highlight(text, language="json")


@dataclass(frozen=True)
class Column:
    """One column of a Grid: a ``flex`` column takes the width left over, or gives up
    width down to ``min_width``; ``tone`` picks a colour for a cell from its text."""

    key: str
    label: str
    justify: Literal["left", "right"] = "left"
    max_width: int = 40
    flex: bool = False
    min_width: int = 12
    tone: Callable[[str], Tone | None] | None = None


class Grid(ScrollView, can_focus=True):
    """Rows of text cells under a fixed header, with a row cursor and marked rows.

    The owner hands over the whole visible state with ``set_rows(order, cells)``; the Grid
    keeps the cursor on the same row key (and that row on the same screen line) when rows
    move, and repaints only what changed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "cursor(-1_000_000_000)", "First", show=False),
        Binding("end", "cursor(1_000_000_000)", "Last", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("enter", "select", "Open", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "grid--header",
        "grid--cursor",
        "grid--marked",
        "grid--primary",
        "grid--warning",
        "grid--success",
        "grid--error",
        "grid--muted",
    }
    DEFAULT_CSS = """
    Grid {
        background: $surface;
        color: $foreground;
        height: 1fr;
        & > .grid--header { text-style: bold; background: $panel; color: $foreground; }
        & > .grid--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .grid--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .grid--marked { background: $accent 30%; }
        & > .grid--primary { color: $text-primary; }
        & > .grid--warning { color: $text-warning; }
        & > .grid--success { color: $text-success; }
        & > .grid--error { color: $text-error; }
        & > .grid--muted { color: $text-muted; }
    }
    """

    class Selected(Message):
        """Enter or a double click on a row."""

        def __init__(self, grid: Grid, key: str) -> None:
            super().__init__()
            self.grid, self.key = grid, key

        @property
        def control(self) -> Grid:
            return self.grid

    class HeaderClicked(Message):
        """A click on a column label (screens sort by it)."""

        def __init__(self, grid: Grid, column: str) -> None:
            super().__init__()
            self.grid, self.column = grid, column

        @property
        def control(self) -> Grid:
            return self.grid

    class Clicked(Message):
        """A single click on a cell (after the cursor moved there)."""

        def __init__(self, grid: Grid, key: str, column: str | None) -> None:
            super().__init__()
            self.grid, self.key, self.column = grid, key, column

        @property
        def control(self) -> Grid:
            return self.grid

    def __init__(
        self, columns: Sequence[Column], *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.columns: list[Column] = list(columns)
        self.labels = [c.label for c in self.columns]
        self.order: list[str] = []
        self.cells: dict[str, tuple[str, ...]] = {}
        self.marked: set[str] = set()
        self.cursor = 0
        self._index: dict[str, int] = {}
        self._natural: list[int] = [cell_len(c.label) for c in self.columns]
        self._widths: list[int] = list(self._natural)
        self._styles: dict[str, Style] = {}

    # ------------------------------------------------------------------ data

    @property
    def cursor_key(self) -> str | None:
        return self.order[self.cursor] if 0 <= self.cursor < len(self.order) else None

    def set_rows(self, order: list[str], cells: dict[str, tuple[str, ...]]) -> None:
        """Show ``order`` (row keys, top to bottom) with ``cells`` (text per column)."""
        old_order, old_cells, old_key = self.order, self.cells, self.cursor_key
        screen_line = self.cursor - self.scroll_y
        self.order, self.cells = order, cells
        self._index = {key: i for i, key in enumerate(order)}
        natural = self._measure()
        widths_changed = natural != self._natural
        self._natural = natural
        if old_key in self._index:
            self.cursor = self._index[old_key]
        else:
            self.cursor = max(0, min(self.cursor, len(order) - 1))
        self._update_virtual_size()
        if order != old_order or widths_changed:
            if old_key is not None and self.cursor_key == old_key:
                self.scroll_to(y=self.cursor - screen_line, animate=False, immediate=True)
            self._scroll_cursor_into_view()
            self.refresh()
        else:
            top = int(self.scroll_y)
            for i, key in enumerate(order[top : top + self.size.height]):
                if old_cells.get(key) != cells.get(key):
                    self.refresh_line(top + i + 1)

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Other columns (e.g. one per seed); takes effect with the next ``set_rows``."""
        self.columns = list(columns)
        self.labels = [c.label for c in self.columns]

    def set_labels(self, labels: Sequence[str]) -> None:
        """New column labels (e.g. a sort arrow)."""
        self.labels = list(labels)
        natural = self._measure()
        if natural != self._natural:
            self._natural = natural
            self._update_virtual_size()
            self.refresh()
        else:
            self.refresh(Region(0, 0, self.size.width, 1))

    def _measure(self) -> list[int]:
        """Each column's widest text (label included)."""
        natural = [cell_len(label) for label in self.labels]
        for row in self.cells.values():
            for i, text in enumerate(row):
                if len(text) > natural[i]:  # cheap first test; a wide CJK name may get an …
                    natural[i] = max(natural[i], cell_len(text))
        return natural

    def toggle_mark(self, key: str) -> None:
        self.marked ^= {key}
        if key in self._index:
            self.refresh_line(self._index[key] + 1)

    # ------------------------------------------------------------------ layout

    def _update_virtual_size(self) -> None:
        """Column widths: each as wide as its text (up to its maximum); a flex column
        fills what is left of the width, or gives up space down to its minimum."""
        widths = [min(n, c.max_width) for n, c in zip(self._natural, self.columns, strict=True)]
        flex = next((i for i, c in enumerate(self.columns) if c.flex), None)
        if flex is not None:
            spare = self.scrollable_content_region.width - (sum(widths) + len(widths) + 1)
            floor = min(self.columns[flex].min_width, widths[flex])
            widths[flex] = max(floor, widths[flex] + spare)
        self._widths = widths
        self.virtual_size = Size(sum(widths) + len(widths) + 1, len(self.order) + 1)

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def _style(self, name: str) -> Style:
        if name not in self._styles:
            self._styles[name] = self.get_component_rich_style(f"grid--{name}", partial=True)
        return self._styles[name]

    # ------------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        base = self.rich_style
        if y == 0:
            style = base + self._style("header")
            strip = self._line(self.labels, lambda _i, _t: style, style)
        else:
            index = scroll_y + y - 1
            if index >= len(self.order):
                return Strip.blank(self.size.width, base)
            key = self.order[index]
            row_style = base
            if key in self.marked:
                row_style += self._style("marked")
            if index == self.cursor:
                row_style += self._style("cursor")

            def cell_style(i: int, text: str) -> Style:
                tone = self.columns[i].tone
                name = tone(text) if tone else None
                return row_style + self._style(name) if name and index != self.cursor else row_style

            strip = self._line(self.cells.get(key, ()), cell_style, row_style)
        return strip.crop_extend(scroll_x, scroll_x + self.size.width, base)

    def _line(
        self, texts: Sequence[str], cell_style: Callable[[int, str], Style], fill: Style
    ) -> Strip:
        segments = [Segment(" ", fill)]
        for i, width in enumerate(self._widths):
            text = texts[i] if i < len(texts) else ""
            if cell_len(text) > width:
                text = set_cell_size(text, width - 1) + "…"
            elif self.columns[i].justify == "right":
                text = " " * (width - cell_len(text)) + text
            else:
                text += " " * (width - cell_len(text))
            segments.append(Segment(text, cell_style(i, texts[i] if i < len(texts) else "")))
            segments.append(Segment(" ", fill))
        return Strip(segments)

    # ------------------------------------------------------------------ cursor

    def _set_cursor(self, index: int) -> None:
        index = max(0, min(index, len(self.order) - 1))
        if index == self.cursor:
            return
        old, self.cursor = self.cursor, index
        self.refresh_line(old + 1)
        self.refresh_line(index + 1)
        self._scroll_cursor_into_view()

    def _scroll_cursor_into_view(self) -> None:
        rows = max(1, self.scrollable_content_region.height - 1)
        if self.cursor < self.scroll_y:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= self.scroll_y + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self._set_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._set_cursor(
            self.cursor + direction * max(1, self.scrollable_content_region.height - 1)
        )

    def action_select(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.Selected(self, self.cursor_key))

    def _column_at(self, x: int) -> str | None:
        x += int(self.scroll_x) - 1
        for column, width in zip(self.columns, self._widths, strict=True):
            if x < width + 1:
                return column.key
            x -= width + 1
        return None

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        column = self._column_at(offset.x)
        if offset.y == 0:
            if column is not None:
                self.post_message(self.HeaderClicked(self, column))
            return
        index = int(self.scroll_y) + offset.y - 1
        if index < len(self.order):
            self._set_cursor(index)
            if event.chain >= 2:
                self.action_select()
            else:
                self.post_message(self.Clicked(self, self.order[index], column))
