"""TODO: the checklist kept in the store, next to the runs it is about.

Linked items show their progress (finished seeds / target) and tick themselves when the
target is met; see ``kdtui.todo.todo_items``, which ``kdtui todo ls`` shares.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.binding import Binding, BindingType

from kdtui.screens.table import TableScreen
from kdtui.store import StoreError
from kdtui.todo import DEFAULT_TARGET, TodoItem, close_hint, group_known, todo_items
from kdtui.tui.messages import StoreWritten
from kdtui.tui.snapshot import Snapshot
from kdtui.widgets import Column, Field, Grid, Prompt, Tone


def _tick_tone(text: str) -> Tone | None:
    return "success" if text == "✓" else None


COLUMNS = [
    Column("done", "✓", tone=_tick_tone),
    Column("text", "item", max_width=70, flex=True),
    Column("group", "linked group", max_width=28),
    Column("progress", "seeds", justify="right"),
]


class TodoScreen(TableScreen):
    TITLE = "TODO"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "tick", "Tick", tooltip="Tick or untick (or click the box)."),
        Binding(
            "a",
            "add",
            "Add",
            tooltip="A new item: free text, or linked to a group with a seed target.",
        ),
        Binding("e,enter", "edit", "Edit"),
        Binding("d,delete", "delete", "Delete"),
        Binding("K,shift+up", "move(-1)", "Move up", key_display="K"),
        Binding("J,shift+down", "move(1)", "Move down", key_display="J"),
    ]

    grid_id = "todos"

    def __init__(self) -> None:
        super().__init__(COLUMNS)  # in the list's own order: J and K move items
        self.items: dict[str, TodoItem] = {}
        self.order: list[str] = []
        self.runs: list[dict[str, Any]] = []

    def show_snapshot(self, snapshot: Snapshot) -> None:
        items = todo_items(snapshot.todos, snapshot.runs)
        self.items = {i.id: i for i in items}
        self.order = [i.id for i in items]
        self.runs = snapshot.runs
        self.refresh_rows()

    def refresh_rows(self) -> None:
        items = [self.items[key] for key in self.order]
        self.grid.set_rows(
            self.order,
            {i.id: ("✓" if i.done else "☐", i.text, i.group or "", i.progress_text) for i in items},
        )
        left = sum(1 for i in items if not i.done)
        self.show_summary(
            f"{left} to do · {len(items) - left} done · linked items tick themselves"
            if items
            else "nothing to do yet: a adds an item (link it to a group to track its seeds)"
        )

    def current(self) -> TodoItem | None:
        key = self.grid.cursor_key
        return self.items.get(key) if key else None

    # ------------------------------------------------------------------ actions

    @on(Grid.Clicked)
    def _clicked(self, event: Grid.Clicked) -> None:
        if event.column == "done":  # a click on the box ticks it
            self.action_tick()

    def action_tick(self) -> None:
        item = self.current()
        if item is None:
            return
        if item.done and not item.ticked:
            self.app.notify(f"{item.progress_text} seeds done: this item ticks itself")
            return
        self._write([(item.id, {"done": not item.ticked})])

    def action_add(self) -> None:
        self._ask("Add an item", None)

    @on(Grid.Selected)
    def action_edit(self) -> None:
        if item := self.current():
            self._ask("Edit the item", item)

    def _ask(self, title: str, item: TodoItem | None) -> None:
        fields = [
            Field("text", "item", item.text if item else "", "what to run or check"),
            Field(
                "group",
                "group",
                (item.group or "") if item else "",
                "experiment name (optional)",
                sorted({r.get("name", "") for r in self.runs}),
            ),
            Field(
                "target",
                "seeds",
                str(item.target or "") if item else "",
                "seeds to finish (default 3)",
            ),
        ]

        def check(values: dict[str, str]) -> str | None:
            if not values["text"].strip():
                return "say what to do: the text is empty"
            target = values["target"].strip()
            if values["group"].strip() and target and not (target.isdigit() and int(target) >= 1):
                return "seeds: a whole number ≥ 1"
            return None

        def done(values: dict[str, str] | None) -> None:
            if not values or not values["text"].strip():
                return
            group = values["group"].strip() or None
            target = values["target"].strip()
            fields = {
                "text": values["text"].strip(),
                "group": group,
                "target": (int(target) if target else DEFAULT_TARGET) if group else None,
            }
            self._write([(item.id, fields)] if item else [(None, fields)])
            if group and not group_known(group, self.runs):  # the CLI asks for --new; here a word
                self.app.notify(
                    f"no runs named {group} yet{close_hint(group, self.runs)}: "
                    "the item ticks itself once they finish",
                    severity="warning",
                )

        self.app.push_screen(
            Prompt(
                title,
                fields,
                note="Linked items tick themselves once that many seeds are done.",
                check=check,
            ),
            done,
        )

    def action_delete(self) -> None:
        item = self.current()
        if item is None:
            return

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                self._delete(item.id)

        question = Prompt("Delete this item?", [], note=item.text, ok="Delete", cancel="Keep")
        self.app.push_screen(question, done)

    def action_move(self, step: int) -> None:
        item = self.current()
        if item is None:
            return
        i = self.order.index(item.id)
        j = i + step
        if not 0 <= j < len(self.order):
            return
        other = self.items[self.order[j]]
        if other.order != item.order:  # swap the two places: two small writes
            self._write([(item.id, {"order": other.order}), (other.id, {"order": item.order})])
        else:  # a tie (added at the same moment elsewhere): number them all afresh
            order = list(self.order)
            order[i], order[j] = order[j], order[i]
            self._write([(key, {"order": n}) for n, key in enumerate(order)])

    # ------------------------------------------------------------------ store

    @work(thread=True, group="todo-write")
    def _write(self, changes: list[tuple[str | None, dict[str, Any]]]) -> None:
        """Add (id None) or update items; then poll, so the list shows it at once."""
        store = self.host.store
        try:
            for todo_id, fields in changes:
                if todo_id is None:
                    store.add_todo(fields.pop("text"), **fields)
                else:
                    store.update_todo(todo_id, **fields)
        except StoreError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
        self.post_message(StoreWritten())

    @work(thread=True, group="todo-write")
    def _delete(self, todo_id: str) -> None:
        try:
            self.host.store.delete_todo(todo_id)
        except StoreError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
        self.post_message(StoreWritten())
