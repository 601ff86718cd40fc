"""The composer's list of a spec file's entries: its defaults, then its experiments, each
with how many configurations it expands to and a mark when it has problems. Keys act on
the highlighted entry (add, copy, rename, remove); the screen does the work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import OptionList


@dataclass(frozen=True)
class Entry:
    """What one line of the list shows."""

    name: str
    expands: int = 1  # configurations it expands to
    problems: int = 0
    defaults: bool = False

    def label(self, width: int) -> Text:
        """The line, cut to ``width`` cells with an ellipsis, its marks kept."""
        suffix = f" ×{self.expands}" if self.expands != 1 else ""
        mark = " ✗" if self.problems else ""
        room = max(4, width - len(suffix) - len(mark))
        name = self.name if len(self.name) <= room else self.name[: room - 1] + "…"
        text = Text(name, style="italic" if self.defaults else "")
        text.append(suffix, style="dim")
        text.append(mark, style="red")
        return text


class EntryList(OptionList):
    """Highlighting an entry shows it in the form; the keys below edit the list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "screen.add_entry", "Add", tooltip="A new experiment after this one."),
        Binding("c", "screen.copy_entry", "Copy", tooltip="A copy of this experiment."),
        Binding("r", "screen.rename_entry", "Rename", tooltip="Rename; references follow."),
        Binding("delete,x", "screen.remove_entry", "Remove", tooltip="Remove (asks first)."),
    ]
    WIDTH = 22  # cells for a line (the list's width less its frame)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(compact=True, **kwargs)  # type: ignore[arg-type]
        self.entries: list[Entry] = []

    def show(self, entries: list[Entry], highlighted: int | None = None) -> None:
        """Show ``entries``, rebuilt only when their number changes (else line by line:
        a label that did not change is left alone); ``highlighted``: move the highlight
        there (None: it stays where the user put it)."""
        if len(entries) != len(self.entries):
            at = self.highlighted
            self.set_options([e.label(self.WIDTH) for e in entries])
            if highlighted is None and at is not None:
                highlighted = min(at, len(entries) - 1)
        else:
            for i, (old, new) in enumerate(zip(self.entries, entries, strict=True)):
                if old != new:
                    self.replace_option_prompt_at_index(i, new.label(self.WIDTH))
        self.entries = list(entries)
        if highlighted is not None and self.highlighted != highlighted:
            self.highlighted = highlighted
