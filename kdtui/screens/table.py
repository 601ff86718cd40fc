"""TableScreen: what the runs, results and TODO screens share — a Grid under an optional
text filter, a summary bar, and sorting by a column (``o`` for the next column, ``O`` to
reverse, a click on a column's title; a second click reverses)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar

from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import Header, Input, Select, Static

from kdtui.screens.live import LiveScreen
from kdtui.widgets import Column, Grid, KeyFooter, TextInput

# The bindings a table screen lists among its own (each screen orders its footer).
SORT = Binding("o", "sort", "Sort", tooltip="Sort by the next column (or click a column title).")
REVERSE = Binding("O", "reverse", "Reverse", show=False, tooltip="Reverse the order.")
# Priority, so the focus is back on the table before the keys typed after it are handed out
# (they went into the filter, and were cleared with it); an open list closes first.
CLEAR_FILTER = Binding("escape", "clear_filter", "Clear filter", show=False, priority=True)


def filter_binding(tooltip: str) -> Binding:
    """``/`` focuses the filter as the app reads the key (a priority binding), so the keys
    typed after it go into the filter, not to the table; in a text field, or an open list
    that searches as you type, ``/`` stays a character (``action_filter``)."""
    return Binding("slash", "filter", "Filter", key_display="/", tooltip=tooltip, priority=True)


class FilterInput(TextInput):
    """A table's text filter. Enter goes on into the table as the app reads the key (a
    priority binding), like Down on the screen: the filter's submit reached the screen only
    after the keys typed after Enter had gone into the filter. On the filter, not the
    screen, whose subclasses bind enter for their rows."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.to_table", show=False, priority=True),
    ]


class TableScreen(LiveScreen):
    """A Grid of ``columns`` with id ``grid_id``; a text filter above it when
    ``filter_placeholder`` is set; sorted by ``sort_column`` unless that is None. A screen
    draws its rows in ``refresh_rows``, called whenever the filter or the order changes."""

    # Down or up in the filter goes on into the table: the next key is a command there. A
    # priority binding, so the focus moves as the app reads the key, before the keys typed
    # after it are handed out (they went into the filter on a loaded box); elsewhere the
    # key goes on as ever (SkipAction).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,up", "to_table", show=False, priority=True),
    ]
    grid_id: ClassVar[str]
    filter_placeholder: ClassVar[str | None] = None

    def __init__(self, columns: Iterable[Column], sort_column: str | None = None) -> None:
        super().__init__()
        self.initial_columns = list(columns)
        self.sort_column, self.sort_reverse = sort_column, False

    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.compose_filters()
        yield Grid(self.initial_columns, id=self.grid_id)
        yield Static(id="summary", classes="bar")
        yield KeyFooter()

    def compose_filters(self) -> Iterator[Widget]:
        if self.filter_placeholder is not None:
            yield FilterInput(placeholder=self.filter_placeholder, id="filter", compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.grid.focus()

    @property
    def grid(self) -> Grid:
        return self.query_one(Grid)

    def refresh_rows(self) -> None:
        """Show the rows the filter lets through, in the chosen order."""
        raise NotImplementedError

    def show_summary(self, text: str) -> None:
        self.query_one("#summary", Static).update(text, layout=False)  # one line

    # ------------------------------------------------------------------ filter

    def filter_words(self) -> list[str]:
        """The filter's words, lower case (none without a filter)."""
        if self.filter_placeholder is None:
            return []
        return self.query_one("#filter", Input).value.lower().split()

    def action_filter(self) -> None:
        focused = self.focused
        if focused is not None and focused.check_consume_key("slash", "/"):
            raise SkipAction()  # typed there (Textual filters only named keys it can spell)
        self.set_focus(self.query_one("#filter", Input))  # at once, as in action_to_table

    def action_clear_filter(self) -> None:
        focused = self.focused
        if focused is not None and any(
            isinstance(node, Select) and node.expanded for node in focused.ancestors_with_self
        ):
            raise SkipAction()  # an open list closes first, as ever
        field = self.query_one("#filter", Input)
        field.call_later(field.clear)  # after the keys typed before escape, queued there
        self.set_focus(self.grid)  # at once, as in action_to_table

    def action_to_table(self) -> None:
        if self.focused is None or self.focused.id != "filter":
            raise SkipAction()
        self.set_focus(self.grid)  # at once (Widget.focus waits for the queued messages)

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self.refresh_rows()

    # ------------------------------------------------------------------ sort

    def column_label(self, column: Column) -> str:
        """A column's title (without the sort arrow)."""
        return column.label

    def show_sort(self) -> None:
        """The column titles, the sorted one with its arrow (▲ ascending, ▼ reversed)."""
        arrow = "▼" if self.sort_reverse else "▲"
        self.grid.set_labels(
            [
                f"{self.column_label(c)} {arrow}"
                if c.key == self.sort_column and c.key != "mark"  # a ✓ column needs no arrow
                else self.column_label(c)
                for c in self.grid.columns
            ]
        )

    def sort_changed(self) -> None:
        self.show_sort()
        self.refresh_rows()

    def action_sort(self) -> None:
        keys = [c.key for c in self.grid.columns]
        if self.sort_column is None or not keys:
            return
        at = keys.index(self.sort_column) + 1 if self.sort_column in keys else 0
        self.sort_column, self.sort_reverse = keys[at % len(keys)], False
        self.sort_changed()

    def action_reverse(self) -> None:
        if self.sort_column is not None:
            self.sort_reverse = not self.sort_reverse
            self.sort_changed()

    def on_grid_header_clicked(self, event: Grid.HeaderClicked) -> None:
        if self.sort_column is None:
            return
        if event.column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = event.column, False
        self.sort_changed()
