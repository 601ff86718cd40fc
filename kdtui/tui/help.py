"""The help screen: every key of every screen, from the screens' own bindings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

MOUSE_HELP = (
    "Mouse: click a column title to sort by it, a row to move to it, twice to open it; "
    "click ✓ boxes to tick or select; the keys in the footer are buttons too.\n"
    "ctrl+p opens the command palette: every action of the screen, by name."
)
# One section of the help: a title, a line about it, and its bindings.
Section = tuple[str, str, Iterable[BindingType]]


class HelpScreen(ModalScreen[None]):
    """Every key of every screen, as the app lists them (``sections``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, sections: Sequence[Section]) -> None:
        super().__init__()
        self.sections = list(sections)

    def compose(self) -> ComposeResult:
        parts: list[Any] = []
        for title, about, bindings in self.sections:
            parts.append(Text(title, style="bold"))
            if about:
                parts.append(Text(f"  {about}", style="italic"))
            # A grid, so a long description wraps under itself, never under the keys.
            keys = Table.grid(padding=(0, 1))
            keys.add_column(min_width=13, style="bold", no_wrap=True)
            keys.add_column()
            for b in bindings:
                if isinstance(b, Binding) and b.description:
                    shown = b.key_display or ", ".join(k.strip() for k in b.key.split(","))
                    keys.add_row(f"  {shown}", b.tooltip or b.description)
            parts += [keys, Text()]
        parts.append(Text(MOUSE_HELP, style="italic"))
        with VerticalScroll() as box:
            box.border_title = "kdtui keys"
            yield Static(Group(*parts))
