"""A study experiment's ``grid`` as rows of the form: a field path and the values it takes.

Values are typed as a user writes them, comma-separated: ``16, 28``; ``gaf-WRN16-1,
gaf-WRN16-3``; ``{"depth": 28, "width": 3}, {"depth": 16, "width": 1}``. Each is JSON when
it reads as JSON, else text, so a name needs no quotes and ``"16"`` stays a string.
Problems of an axis come back at ``grid["<path>"]`` (and ``[i]`` for one value): the row
whose path it is shows them.
"""

from __future__ import annotations

import functools
import json
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input

from kdtui.widgets.form import MISSING, FormNode, Unsettled, _is_model, _unwrap
from kdtui.widgets.text_input import TextInput


def format_values(values: Any) -> str:
    """An axis's values as typed: ``16, 28``; JSON where a bare word would read otherwise."""
    if not isinstance(values, list):
        return json.dumps(values, ensure_ascii=False)
    return ", ".join(_one(v) for v in values)


def _one(value: Any) -> str:
    if (
        isinstance(value, str)
        and value.strip() == value
        and value
        and not any(c in value for c in ',"[]{}')
    ):
        try:
            json.loads(value)
        except ValueError:
            return value  # a bare word: it cannot be read as anything but text
    return json.dumps(value, ensure_ascii=False)


def parse_values(text: str) -> list[Any]:
    """``format_values`` read back: the list as JSON when it is JSON, else item by item."""
    text = text.strip()
    if not text:
        return []
    try:
        values = json.loads(f"[{text}]")
    except ValueError:
        return [_read(t.strip()) for t in text.split(",")]
    return values if isinstance(values, list) else [values]


def _read(item: str) -> Any:
    try:
        return json.loads(item)
    except ValueError:
        return item


def _key_path(key: str) -> str:
    return f"grid[{json.dumps(key, ensure_ascii=False)}]"


@functools.cache
def field_paths(model: type[BaseModel], prefix: str = "") -> tuple[str, ...]:
    """Every field path of ``model`` a grid may vary (the paths an axis is offered)."""
    out: list[str] = []
    for name, info in model.model_fields.items():
        if not prefix and name in ("name", "seeds"):
            continue
        path = f"{prefix}.{name}" if prefix else name
        tp, _ = _unwrap(info.annotation)
        inner = [tp]
        if get_origin(tp) in (Union, types.UnionType):
            inner = list(get_args(tp))
        if get_origin(tp) is list and _is_model(_unwrap(get_args(tp)[0])[0]):
            out.extend(field_paths(_unwrap(get_args(tp)[0])[0], f"{path}[0]"))
            continue
        models = [m for m in inner if _is_model(m)]
        out.append(path)
        for m in models:
            out.extend(p for p in field_paths(m, path) if p not in out)
    return tuple(dict.fromkeys(out))


class AxisRow(FormNode):
    """One axis: its field path, its values, and a remove button."""

    DEFAULT_CSS = """
    AxisRow { height: auto; }
    AxisRow > Horizontal { height: auto; }
    AxisRow .key { width: 2fr; margin-right: 1; }
    AxisRow .values { width: 3fr; }
    AxisRow .remove-axis { min-width: 3; width: 3; color: $text-muted; }
    """
    problems_at = -1  # under the row

    def __init__(self, key: str, values: Any, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(_key_path(key), key, "a field path, and the values it takes")
        self.initial_key, self.initial, self.suggestions = key, values, suggestions
        self.initial_text = format_values(values) if values != [] else ""

    def compose(self) -> ComposeResult:
        suggester = SuggestFromList(self.suggestions) if self.suggestions else None
        with Horizontal():
            yield TextInput(
                self.initial_key,
                placeholder="path, e.g. loss.kd.T",
                classes="key",
                compact=True,
                suggester=suggester,
            )
            yield TextInput(
                self.initial_text,
                placeholder="values, e.g. 2, 4, 8",
                classes="values",
                compact=True,
            )
            yield Button("✕", classes="remove-axis", compact=True, tooltip="Remove this axis")

    @on(Input.Changed, ".key")
    def _key_changed(self, event: Input.Changed) -> None:
        self.path = _key_path(event.value.strip())  # where its problems now come back

    def key(self) -> str:
        return self._input("key").value.strip()

    def value(self) -> Any:
        text = self._input("values").value
        if text == self.initial_text and not isinstance(self.initial, list):
            return self.initial  # as written, untouched: the validator says what is wrong
        return parse_values(text)

    def _input(self, kind: str) -> Input:
        inputs = self.query(f"Input.{kind}")
        if not inputs:
            raise Unsettled(self.path)
        return inputs.first(Input)


class GridBox(FormNode):
    """The grid: one AxisRow per field path, and a button to add one."""

    DEFAULT_CSS = """
    GridBox { border: round $panel-lighten-2; padding: 0 1; height: auto; }
    GridBox > #axes { height: auto; }
    GridBox > .problems { padding-left: 0; }
    """

    def __init__(self, value: Any, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__("grid", "grid", "each combination of the axes' values: one experiment")
        self.initial = value if isinstance(value, dict) else {}
        self.suggestions = suggestions
        self.border_title = "grid: one experiment per combination"

    def compose(self) -> ComposeResult:
        with Vertical(id="axes"):
            for key, values in self.initial.items():
                yield AxisRow(key, values, self.suggestions)
        yield Button("+ add axis", id="add-axis", compact=True)

    def rows(self) -> list[AxisRow]:
        return list(self.query_one("#axes").query_children(AxisRow))

    def value(self) -> Any:
        out: dict[str, Any] = {}
        for row in self.rows():
            key, values = row.key(), row.value()
            if key or values != []:
                out.setdefault(key, values)  # a repeated path: see duplicates()
        return out or MISSING

    def duplicates(self) -> list[str]:
        """Paths given on more than one row (only the first row's values count)."""
        keys = [row.key() for row in self.rows()]
        return sorted({k for k in keys if k and keys.count(k) > 1})

    @on(Button.Pressed, "#add-axis")
    async def _add(self, event: Button.Pressed) -> None:
        event.stop()
        row = AxisRow("", [], self.suggestions)
        await self.query_one("#axes").mount(row)
        row.query_one(Input).focus()
        self.post_message(self.Edited())

    @on(Button.Pressed, ".remove-axis")
    async def _remove(self, event: Button.Pressed) -> None:
        event.stop()
        row = next(a for a in event.button.ancestors if isinstance(a, AxisRow))
        await row.remove()
        self.post_message(self.Edited())
