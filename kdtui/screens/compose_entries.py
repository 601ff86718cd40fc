"""The composer's list of the file's entries (the defaults, then each experiment):
moving through it shows another entry in the form, built anew; add, copy, rename and
remove act on the file (``compose_file.SpecDoc``) and rebuild the form.

A part of ``ComposeScreen`` (``kdtui.screens.compose``), which holds the file, the
selected entry and the form these act on, and draws the list.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from textual import on
from textual.containers import VerticalScroll
from textual.widgets import Button, OptionList

from kdtui.fmt import plural
from kdtui.screens.compose_file import DEFAULTS, Counts, SpecDoc, fresh_name
from kdtui.screens.live import LiveScreen
from kdtui.widgets import Field, Prompt
from kdtui.widgets.entry_list import EntryList

# What a new form starts from: the lab's usual student on the bundled synthetic data.
TEMPLATE: dict[str, Any] = {
    "name": "my-experiment",
    "data": {"dataset": "synthetic-har"},
    "student": {"depth": 16, "width": 1, "view": {"kind": "signal"}},
    "loss": {"ce": 1.0},
    "epochs": 30,
    "seeds": [0, 1, 2],
}


class EntryActions(LiveScreen):
    """The list's keys and buttons, and the form rebuilt for the entry selected."""

    doc: SpecDoc
    selected: int  # the entry in the form: DEFAULTS or an experiment's index
    checking: bool
    counts: Counts | None
    _store_names: list[str]

    @on(OptionList.OptionHighlighted, "#entries")
    async def _entry_highlighted(self) -> None:
        """Show the entry highlighted now (not the one this message was about: moving
        through the list faster than forms are built goes straight to where it stopped)."""
        highlighted = self.query_one("#entries", EntryList).highlighted
        if highlighted is not None and highlighted - 1 != self.selected:
            await self.select_entry(highlighted - 1)

    async def select_entry(self, entry: int) -> None:
        """Show another entry in the form (the form's value of this one is kept)."""
        if entry == self.selected:
            return
        if not await self._keep_form():
            return
        self.checking = True  # the form of another entry, not checked yet
        self.selected = entry
        await self._rebuild(highlight=False)

    async def _settled_form(self) -> dict[str, Any] | None:
        """The form's value once every part of it has mounted (None: there is no form,
        or it never settled). A form is never removed while it mounts: a Select removed
        mid-mount breaks."""
        for _ in range(200):  # a variant switched a moment ago composes within frames
            value = self.form_value()
            if value is not None or not self.query("#root"):
                return value
            await asyncio.sleep(0.01)
        return None

    async def _keep_form(self) -> bool:
        """Store the form's value of the selected entry in the file; False when the form
        never settled (nothing stored, nothing lost: it holds what was stored)."""
        value = await self._settled_form()
        if value is not None:
            self.doc.store(self.selected, value)
        return value is not None

    async def _rebuild(self, highlight: bool = True) -> None:
        """The form of the selected entry, built anew (only when the entry changes); the
        list's highlight moved to it unless the user moved it there."""
        self.checking = True
        await self._settled_form()
        await self.query("#root").remove()
        await self.query_one("#form", VerticalScroll).mount(self._root())
        self._show_entries(highlight=highlight)
        self._show_counts()
        self._edited()

    def _selected_name(self) -> str:
        if self.selected == DEFAULTS:
            return "defaults"
        return str((self.form_value() or self.doc.experiments[self.selected]).get("name") or "")

    def _taken(self) -> set[str]:
        return self.doc.taken(self.counts) | set(self._store_names)

    @on(Button.Pressed, "#add-entry")
    async def action_add_entry(self) -> None:
        """A new experiment after the selected one: a bare name when the file has
        defaults (it inherits the rest), else the template."""
        if not await self._keep_form():
            return
        base = "experiment" if self.doc.defaults else str(TEMPLATE["name"])
        new = {"name": fresh_name(base, self._taken())}
        if not self.doc.defaults:
            new = {**TEMPLATE, **new}
        await self._insert(new)

    @on(Button.Pressed, "#copy-entry")
    async def action_copy_entry(self) -> None:
        """A copy of the selected experiment under a new name, right after it."""
        if self.selected == DEFAULTS:
            self.app.notify("the defaults are one per file: add an experiment instead")
            return
        if not await self._keep_form():
            return
        new = copy.deepcopy(self.doc.experiments[self.selected])
        new["name"] = fresh_name(str(new.get("name") or "experiment"), self._taken())
        await self._insert(new)

    async def _insert(self, experiment: dict[str, Any]) -> None:
        at = self.selected + 1
        self.doc.experiments.insert(at, experiment)
        self.selected = at
        await self._rebuild()
        self.app.notify(f"added {experiment['name']}")

    @on(Button.Pressed, "#rename-entry")
    async def action_rename_entry(self) -> None:
        if self.selected == DEFAULTS:
            self.app.notify("the defaults have no name")
            return
        if not await self._keep_form():
            return
        entry, old = self.selected, self._selected_name()
        others = {n for i, n in enumerate(self.doc.names()) if i != entry}

        def check(values: dict[str, str]) -> str | None:
            name = values["name"].strip()
            if not name:
                return "a name, please"
            return f"{name!r} already names an experiment of this file" if name in others else None

        def done(values: dict[str, str] | None) -> None:
            if values and values["name"].strip() != old:
                self.call_later(self._rename, entry, values["name"].strip())

        self.app.push_screen(
            Prompt(
                f"Rename {old}",
                [Field("name", "name", old)],
                note="Teachers of this file that name it follow (a {path} in it is a template).",
                check=check,
            ),
            done,
        )

    async def _rename(self, entry: int, name: str) -> None:
        if entry != self.selected or not await self._keep_form():
            return
        followed = self.doc.rename(entry, name)
        await self._rebuild()
        refs = f"; {plural(followed, 'reference')} followed" if followed else ""
        self.app.notify(f"renamed to {name}{refs}")

    @on(Button.Pressed, "#remove-entry")
    def action_remove_entry(self) -> None:
        if self.selected == DEFAULTS:
            self.app.notify("the defaults stay: empty their fields to have none")
            return
        if len(self.doc.experiments) == 1:
            self.app.notify("a file holds at least one experiment", severity="warning")
            return
        entry, name = self.selected, self._selected_name()
        self.app.push_screen(
            Prompt(f"Remove {name} from the file?", [], risky=True, ok="Remove"),
            lambda values: values is not None and self.call_later(self._remove, entry),
        )

    async def _remove(self, entry: int) -> None:
        if entry != self.selected:
            return
        del self.doc.experiments[entry]
        self.selected = min(entry, len(self.doc.experiments) - 1)
        await self._rebuild()

    def action_focus_list(self) -> None:
        self.query_one("#entries").focus()
