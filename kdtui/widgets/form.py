"""A form for a pydantic model, built from its fields: one editor per field, walking
``model_fields`` and the models under them, so a field added to the spec shows up without
edits here. The form's value is the JSON a user would write (only what was filled in;
empty means "the default"); ``FormNode.show_problems`` puts a validator's messages under
the field whose JSON path they name. The Compose screen is one user of it.

A ``partial`` form (a study's defaults, or an experiment whose fields the defaults may
give) writes exactly what was given: every choice can be left blank, a section left empty
is left out, a value equal to the model's default is kept when it was given; ``inherited``
values (the file's defaults) show as the placeholders of the fields left empty.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from kdtui.fmt import parse_ints
from kdtui.widgets.text_input import TextInput

MISSING: Any = object()  # a field left empty: the model's default applies


class Unsettled(Exception):
    """Part of the form is still being mounted: its value is not known yet (a Select takes
    the value it was built with only once mounted, and reads as empty until then)."""


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``Annotated[X | None, ...]`` → ``(X, True)``."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            if len(args) > 1:
                return Union[tuple(args)], optional  # noqa: UP007 (a runtime union of models)
            annotation = args[0]
        else:
            return annotation, optional


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _join(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


# The last step of a JSON path: ``.name``, ``[0]`` or a quoted key ``["loss.kd.T"]``.
_LAST_STEP = re.compile(r'(\["(?:[^"\\]|\\.)*"\]|\[\d+\]|\.[^.\["]+)$')


def parents_of(path: str) -> Iterator[str]:
    """``a.b[0].c`` → ``a.b[0].c, a.b[0], a.b, a, ''``; a quoted key is one step
    (``grid["loss.kd.T"][1]`` → ``grid["loss.kd.T"]``, ``grid``)."""
    while path:
        yield path
        cut = _LAST_STEP.sub("", path)
        path = "" if cut == path else cut
    yield ""


def _constant(model: type[BaseModel], name: str) -> bool:
    """A field with one possible value (``arch: "wrn"``): nothing to edit."""
    tp, optional = _unwrap(model.model_fields[name].annotation)
    return get_origin(tp) is Literal and len(get_args(tp)) == 1 and not optional


def _default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return None if info.is_required() else info.default


def _inner(inherited: Any, name: str) -> Any:
    """The inherited value of a field inside an inherited object."""
    return inherited.get(name, MISSING) if isinstance(inherited, dict) else MISSING


# Values for fields that name something in the store: "Model.field" -> the choices.
Choices = dict[str, list[str]]


# ---------------------------------------------------------------------- form nodes


class FormNode(Widget):
    """An element of the form that has a JSON path, a value, and a place for problems.

    The place (a Static) is mounted only when a problem first shows up: most fields never
    have one, and every widget less makes the form quicker to build and to restyle."""

    DEFAULT_CSS = """
    FormNode { height: auto; }
    FormNode > .problems { color: $text-error; height: auto; padding-left: 2; }
    """
    problems_at = 0  # where the problems go among the node's children
    explicit = True  # the value was given (loaded, or the template's)
    default_json: Any = MISSING  # the field's default, as JSON
    partial = False  # write only what was given (see the module's docstring)
    null = False  # written as null (in a study: "switch the default off"), kept while empty

    class Edited(Message):
        """Some value in the form changed (after any re-layout it caused)."""

    def __init__(self, path: str, label: str, help_text: str = "") -> None:
        super().__init__()
        self.path, self.label, self.help_text = path, label, help_text
        self._shown: tuple[str, ...] = ()

    def value(self) -> Any:
        raise NotImplementedError

    def show_problems(self, messages: list[str]) -> None:
        if tuple(messages) == self._shown or not self.children:  # same, or still composing
            return
        self._shown = tuple(messages)
        self.set_class(bool(messages), "-invalid")
        text = "\n".join(f"✗ {m}" for m in messages)
        places = self.query_children(".problems")
        if places:
            place = places.first(Static)
            place.update(text)
            place.display = bool(messages)
        elif messages:
            at = min(self.problems_at, len(self.children)) if self.problems_at >= 0 else None
            self.mount(Static(text, classes="problems"), before=at)


class FieldRow(FormNode):
    """One scalar field: label, editor, and its problems underneath."""

    DEFAULT_CSS = """
    FieldRow { layout: grid; grid-size: 2; grid-columns: 16 1fr; grid-rows: auto; }
    FieldRow > Label { color: $text-muted; }
    FieldRow > .problems { column-span: 2; }
    FieldRow > Checkbox { width: 5; }
    """
    problems_at = -1  # after the editor

    def __init__(
        self,
        path: str,
        label: str,
        editor: Widget,
        kind: Any,
        help_text: str = "",
        choices_key: str | None = None,
    ) -> None:
        super().__init__(path, label, help_text)
        self.editor, self.kind, self.choices_key = editor, kind, choices_key
        self.shown = editor.value if isinstance(editor, Checkbox) else None

    def compose(self) -> ComposeResult:
        yield Label(self.label)
        yield self.editor

    def set_choices(self, options: list[str]) -> None:
        """New options for a Select whose choices come from the store; keeps the value."""
        assert isinstance(self.editor, Select)
        if not self.editor.is_mounted:  # its value is not set yet: it would be lost
            self.call_after_refresh(self.set_choices, options)
            return
        current = self.editor.value
        if current is not Select.NULL and current not in options:
            options = [*options, str(current)]
        self.editor.set_options([(o, o) for o in options])
        self.editor.value = current

    def value(self) -> Any:
        editor = self.editor
        if not editor.is_mounted:
            raise Unsettled(self.path)
        if isinstance(editor, Checkbox):
            if self.partial and not self.explicit and editor.value == self.shown:
                return MISSING  # never touched: the defaults' value stands
            return editor.value
        if isinstance(editor, Select):
            return MISSING if editor.value is Select.NULL else editor.value
        assert isinstance(editor, Input)
        text = editor.value.strip()
        if not text:
            return MISSING
        if get_origin(self.kind) is list:
            return parse_ints(text)
        if self.kind is int and re.fullmatch(r"-?\d+", text):
            return int(text)
        if self.kind is float:
            if re.fullmatch(r"-?\d+", text):
                return int(text)  # 4 stays 4 in the file, as written (a float field takes it)
            try:
                return float(text)
            except ValueError:
                return text  # the validator says what is wrong with it
        return text


class ModelBox(FormNode):
    """The fields of one pydantic model, in a titled box. A section left at its defaults
    starts folded to one line and builds its fields when opened: the form stays short, and
    quick to build. Keys the form does not know (a loaded file's typo, a field of a newer
    kdtui) are kept, so they reach the validator and are saved back, never dropped."""

    DEFAULT_CSS = """
    ModelBox { border: round $panel-lighten-2; padding: 0 1; }
    ModelBox.-root, ModelBox.-folded { border: none; padding: 0; }
    ModelBox > .problems { padding-left: 0; }
    ModelBox > .unfold { color: $text-muted; }
    """

    def __init__(
        self,
        path: str,
        label: str,
        model: type[BaseModel],
        value: dict[str, Any],
        choices: Choices,
        *,
        skip: tuple[str, ...] = (),
        order: tuple[str, ...] = (),
        help_text: str = "",
        folded: bool = False,
        partial: bool = False,
        inherited: Any = MISSING,
        after: dict[str, tuple[str, Callable[[], FormNode]]] | None = None,
    ) -> None:
        """``after`` adds editors of keys the model does not have (a study's ``grid``):
        field name → (the key, its editor's factory), the editor shown after that field;
        those keys are the editors', not kept as unknown."""
        super().__init__(path, label, help_text)
        self.model, self.initial, self.choices = model, value, choices
        self.partial, self.inherited, self.after = partial, inherited, after or {}
        names = [n for n in order if n in model.model_fields]
        names += [n for n in model.model_fields if n not in names]
        self.names = [n for n in names if n not in skip and not _constant(model, n)]
        added = {key for key, _ in self.after.values()}
        self.extra = {
            k: v for k, v in value.items() if k not in model.model_fields and k not in added
        }
        self.folded = folded and bool(self.names)
        self.set_class(self.folded, "-folded")
        self.display = bool(self.names) or bool(self.extra)  # e.g. the signal view: no fields
        self.border_title = label

    def compose(self) -> ComposeResult:
        if self.folded:
            shown = ", ".join(self.names[:4]) + (", …" if len(self.names) > 4 else "")
            yield Button(f"▸ {self.label}: {shown} (defaults)", classes="unfold", compact=True)
        else:
            yield from self._fields()

    def _fields(self) -> Iterator[FormNode]:
        for name in self.names:
            value = self.initial.get(name, MISSING)
            node = build_node(
                self.model,
                name,
                value,
                _join(self.path, name),
                self.choices,
                partial=self.partial,
                inherited=_inner(self.inherited, name),
            )
            if node is not None:
                yield node
            if name in self.after:
                yield self.after[name][1]()

    @on(Button.Pressed, ".unfold")
    async def _unfold(self, event: Button.Pressed) -> None:
        if event.button.parent is not self:
            return
        event.stop()
        self.folded = False
        self.remove_class("-folded")
        await event.button.remove()
        await self.mount_all(list(self._fields()))
        self.screen.focus_next()  # on into the fields just opened
        self.post_message(self.Edited())

    def value(self) -> Any:
        if self.folded:
            out = dict(self.initial)
        else:
            out = dict(self.extra)
            for child in self.children:
                if isinstance(child, FormNode):
                    v = child.value()
                    if v is MISSING and child.null and child.partial:
                        v = None  # still empty: the null stays as written
                    if v is not MISSING and (
                        child.explicit or child.partial or v != child.default_json
                    ):
                        out[child.path.rsplit(".", 1)[-1]] = v
        if self.partial and not out and not self.explicit:
            return MISSING  # a section left empty is left out
        if list(out) != [k for k in self.initial if k in out]:  # keys in the order written
            out = {
                **{k: out[k] for k in self.initial if k in out},
                **{k: v for k, v in out.items() if k not in self.initial},
            }
        return out


class ModelSlot(FormNode):
    """A node holding boxes of one pydantic model, built on demand: an optional term (one
    box once ticked) or a list (one box per item). ``initial_value`` reads the loaded JSON."""

    def __init__(
        self,
        path: str,
        label: str,
        model: type[BaseModel],
        value: Any,
        choices: Choices,
        help_text: str,
        partial: bool = False,
        inherited: Any = MISSING,
    ) -> None:
        super().__init__(path, label, help_text)
        self.model, self.choices = model, choices
        self.partial, self.inherited = partial, inherited
        self.initial = self.initial_value(value)

    def _box(self, path: str, label: str, value: dict[str, Any], **kwargs: Any) -> ModelBox:
        box = ModelBox(path, label, self.model, value, self.choices, partial=self.partial, **kwargs)
        box.explicit = True  # a ticked term or a list item is given, even when empty
        return box

    @staticmethod
    def initial_value(value: Any) -> Any:
        return value


class OptionalBox(ModelSlot):
    """A model that may be left out (``kd: KDTerm | None``): a checkbox, and its fields
    once it is ticked (built then: most optional terms are never used)."""

    problems_at = 1  # under the checkbox

    @staticmethod
    def initial_value(value: Any) -> dict[str, Any] | None:
        return value if isinstance(value, dict) else None

    def compose(self) -> ComposeResult:
        yield Checkbox(self.label, self.initial is not None, compact=True)
        if self.initial is not None:
            yield self._box(self.path, self.label, self.initial, inherited=self.inherited)

    @on(Checkbox.Changed)
    def _toggle(self, event: Checkbox.Changed) -> None:
        if event.checkbox.parent is not self:
            return
        boxes = self.query_children(ModelBox)
        if boxes:
            boxes.first().display = event.value
        elif event.value:
            self.mount(self._box(self.path, self.label, {}, inherited=self.inherited))

    def value(self) -> Any:
        if not self.query_children(Checkbox).first(Checkbox).value:
            return MISSING
        boxes = self.query_children(ModelBox)
        return boxes.first(ModelBox).value() if boxes else {}  # {}: the term's defaults


class UnionBox(FormNode):
    """A tagged union (data by ``dataset``, view and schedule by ``kind``): a choice of
    variant, then that variant's fields, rebuilt when the choice changes."""

    DEFAULT_CSS = """
    UnionBox { border: round $panel-lighten-2; padding: 0 1; }
    UnionBox > Horizontal { height: auto; }
    UnionBox > Horizontal > Label { width: 16; color: $text-muted; }
    UnionBox > Horizontal > Select { width: 1fr; }
    UnionBox > #variant { height: auto; }
    """
    problems_at = 1  # under the choice of variant

    def __init__(
        self,
        path: str,
        label: str,
        variants: dict[str, type[BaseModel]],
        tag: str,
        value: dict[str, Any],
        choices: Choices,
        help_text: str,
        *,
        partial: bool = False,
        inherited: Any = MISSING,
        shorthand: str | None = None,
        prompt: str = "(not set)",
    ) -> None:
        """``shorthand``: the value was written as its kind alone (``"view": "gaf"``), and
        is written back so while nothing else is set. A ``partial`` union may be left
        blank (``prompt`` says what applies then)."""
        super().__init__(path, label, help_text)
        self.variants, self.tag, self.initial, self.choices = variants, tag, value, choices
        self.partial, self.inherited, self.shorthand = partial, inherited, shorthand
        self.prompt = prompt
        self.border_title = label
        given = value.get(tag) in variants
        first = None if partial else next(iter(variants))
        self.current: str | None = value[tag] if given else first
        self.kind_select = Select(
            [(k, k) for k in self.variants],
            value=Select.NULL if self.current is None else self.current,
            allow_blank=self.partial,
            prompt=self.prompt,
            compact=True,
        )

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.tag)
            yield self.kind_select
        with Vertical(id="variant"):
            if self.current is not None:
                yield self._variant(self.initial)

    def _variant(self, value: dict[str, Any]) -> ModelBox:
        assert self.current is not None
        model, folded = self.variants[self.current], not set(value) - {self.tag}
        inherited = self.inherited
        if isinstance(inherited, str) or _inner(inherited, self.tag) not in (MISSING, self.current):
            inherited = MISSING  # another kind's fields say nothing about this one's
        box = ModelBox(
            self.path,
            self.label,
            model,
            value,
            self.choices,
            skip=(self.tag,),
            folded=folded,
            partial=self.partial,
            inherited=inherited,
        )
        box.explicit = True  # the kind is given: its fields go with it
        box.add_class("-root")
        return box

    @on(Select.Changed)
    async def _switch(self, event: Select.Changed) -> None:
        if event.select.parent is None or event.select.parent.parent is not self:
            return
        event.stop()
        chosen = None if event.value is Select.NULL else str(event.value)
        if chosen == self.current or (chosen is None and not self.partial):
            return
        self.current = chosen
        holder = self.query_one("#variant", Vertical)
        await holder.remove_children()
        if chosen is not None:
            await holder.mount(self._variant({}))
        self.post_message(self.Edited())

    def value(self) -> Any:
        if not self.kind_select.is_mounted:
            raise Unsettled(self.path)  # removing it now would break Select's own mounting
        if self.current is None:  # left blank: what was written without a kind stays
            rest = {k: v for k, v in self.initial.items() if k != self.tag}
            return rest if rest else MISSING
        boxes = self.query_one("#variant").query_children(ModelBox)  # none mid-switch
        out = {self.tag: self.current, **(boxes.first(ModelBox).value() if boxes else {})}
        return self.shorthand if out == {self.tag: self.shorthand} else out


class ListBox(ModelSlot):
    """A list of models (teachers): one box per item, with add and remove."""

    DEFAULT_CSS = """
    ListBox { border: round $panel-lighten-2; padding: 0 1; }
    ListBox > #items { height: auto; }
    ListBox Button { margin-right: 1; }
    ListBox .remove { color: $text-muted; }
    """

    @staticmethod
    def initial_value(value: Any) -> list[dict[str, Any]]:
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.border_title = self.label

    def compose(self) -> ComposeResult:
        with Vertical(id="items"):
            yield from self._items(self.initial)
        yield Button(f"+ add {self.label.rstrip('s')}", id="add", compact=True)

    def _items(self, values: list[dict[str, Any]]) -> Iterator[Widget]:
        for i, v in enumerate(values):
            path = _join(self.path, i)
            yield Button(f"✕ remove {path}", name=str(i), classes="remove", compact=True)
            yield self._box(path, path, v)

    def value(self) -> Any:
        out = [box.value() for box in self.query_one("#items").query_children(ModelBox)]
        return MISSING if self.partial and not out and not self.explicit else out

    @on(Button.Pressed)
    async def _edit(self, event: Button.Pressed) -> None:
        if event.button.id != "add" and "remove" not in event.button.classes:
            return
        event.stop()
        values = self.value()
        values = [] if values is MISSING else values
        if event.button.id == "add":
            values.append({})
        else:
            del values[int(event.button.name or 0)]
        items = self.query_one("#items", Vertical)
        await items.remove_children()
        await items.mount_all(list(self._items(values)))
        if event.button.id == "add":  # on into the new item's first field
            items.query_children(ModelBox).last().query("Select, Input").first().focus()
        self.post_message(self.Edited())


def build_node(
    model: type[BaseModel],
    name: str,
    value: Any,
    path: str,
    choices: Choices,
    *,
    partial: bool = False,
    inherited: Any = MISSING,
) -> FormNode | None:
    """The editor for one field of a model, chosen from its type annotation. It remembers
    whether the value was given and what the default is, so the form's JSON leaves out
    what was never set and still equals the default."""
    node = _editor(model, name, value, path, choices, partial, inherited)
    if node is not None:
        node.explicit = value is not MISSING
        node.partial, node.null = partial, value is None
        node.default_json = _as_json(_default(model.model_fields[name]))
    return node


def _as_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


def _blank(inherited: Any, default: Any, choice: bool = False) -> str:
    """What an empty field stands for: the file's defaults' value, else the model's
    (an input shows the model's bare, as its placeholder always did)."""
    if inherited is not MISSING:
        return f"defaults: {_as_text(inherited)}"
    if default is None:
        return ""
    return f"default: {_as_text(default)}" if choice else _as_text(default)


def _editor(
    model: type[BaseModel],
    name: str,
    value: Any,
    path: str,
    choices: Choices,
    partial: bool = False,
    inherited: Any = MISSING,
) -> FormNode | None:
    info = model.model_fields[name]
    tp, optional = _unwrap(info.annotation)
    help_text = info.description or ""
    default = _default(info)
    origin = get_origin(tp)
    choices_key = f"{model.__name__}.{name}"
    from_store = choices.get(choices_key)

    if from_store is not None or origin is Literal:
        options = list(from_store if from_store is not None else get_args(tp))
        if len(options) == 1 and not optional and from_store is None:
            return None  # a constant, e.g. arch "wrn": nothing to choose
        if value is not MISSING and value is not None and value not in options:
            options.append(value)  # keep a loaded value the list does not know
        current = (None if partial else default) if value is MISSING else value
        if from_store is not None:
            prompt = "(none)"
        elif partial:
            prompt = f"({_blank(inherited, default, choice=True) or 'not set'})"
        else:
            prompt = "(default)" if optional else "choose"
        select = Select(
            [(str(o), o) for o in options],
            value=current if current in options else Select.NULL,
            allow_blank=optional or partial or current not in options,
            prompt=prompt,
            compact=True,
        )
        store_key = choices_key if from_store is not None else None
        return FieldRow(path, name, select, tp, help_text, store_key)
    if tp is bool:
        shown = inherited if isinstance(inherited, bool) else default
        checked = bool(shown if value is MISSING else value)
        return FieldRow(path, name, Checkbox("", checked, compact=True), tp, help_text)
    slot = {"partial": partial, "inherited": inherited}
    if origin is list and _is_model(_unwrap(get_args(tp)[0])[0]):
        item = _unwrap(get_args(tp)[0])[0]
        return ListBox(path, name, item, value, choices, help_text, partial=partial)
    if _is_model(tp):
        if optional:
            return OptionalBox(path, name, tp, value, choices, help_text, **slot)
        initial = value if isinstance(value, dict) else {}
        return ModelBox(
            path, name, tp, initial, choices, help_text=help_text, folded=not initial, **slot
        )
    if origin is Union and info.discriminator:
        variants = {}
        tag = str(info.discriminator)
        for variant in get_args(tp):
            (tag_value,) = get_args(_unwrap(variant.model_fields[tag].annotation)[0])
            variants[str(tag_value)] = variant
        shorthand = value if isinstance(value, str) else None
        if shorthand is not None:
            value = {tag: value}  # the "view": "gaf" shorthand
        if not isinstance(value, dict):
            value = {tag: getattr(default, tag)} if default is not None and not partial else {}
        kind = inherited if isinstance(inherited, str) else _inner(inherited, tag)
        default_kind = getattr(default, tag, None)
        prompt = f"({_blank(kind, default_kind, choice=True) or 'not set'})"
        return UnionBox(
            path, name, variants, tag, value, choices, help_text,
            shorthand=shorthand, prompt=prompt, **slot,
        )  # fmt: skip
    text = "" if value is MISSING or value is None else _as_text(value)
    placeholder = _blank(inherited, default)
    editor = TextInput(text, placeholder=placeholder, compact=True)
    return FieldRow(path, name, editor, tp, help_text)


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)
