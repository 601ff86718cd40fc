"""Compose: a form for one experiment, built from the spec's pydantic models.

Walking ``Experiment.model_fields`` (and the models under it) gives one editor per field,
so a loss term added to ``LossSpec`` shows up here without edits. The form's value is the
JSON a user would write (only what was filled in; empty means "the default"), validated by
``kdtui.spec.validate_spec`` in a worker as the user types; each problem is shown under the
field whose JSON path it names, or under the nearest section that exists.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static

from kdtui import launcher
from kdtui.clikit import plural
from kdtui.screens import Field, LiveScreen, Prompt, parse_ints
from kdtui.spec import Experiment, LoadedSpec, Problem, SpecError, read_spec_file, validate_spec
from kdtui.store import StoreError
from kdtui.widgets import json_view

if TYPE_CHECKING:
    from kdtui.app import Snapshot

MISSING: Any = object()  # a field left empty: the model's default applies

# What a new form starts from: the lab's usual student on the bundled synthetic data.
TEMPLATE: dict[str, Any] = {
    "name": "my-experiment",
    "data": {"dataset": "synthetic-har"},
    "student": {"depth": 16, "width": 1, "view": {"kind": "signal"}},
    "loss": {"ce": 1.0},
    "epochs": 30,
    "seeds": [0, 1, 2],
}
# Shown first; the remaining fields of Experiment follow, in model order.
FIELD_ORDER = ("name", "description", "data", "student", "teachers", "loss", "optim", "schedule")
PREVIEW_FROM = 110  # columns from which the JSON preview shows beside the form
TEACHER_CHOICES = "TeacherSpec.experiment"  # picked from the store's finished groups
CHECK_DELAY_S = 0.25  # validate once typing pauses


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


def _parents(path: str) -> Iterator[str]:
    """``a.b[0].c`` → ``a.b[0].c, a.b[0], a.b, a, ''``."""
    while path:
        yield path
        path = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", path) if re.search(r"[.\[]", path) else ""
    yield ""


def _constant(model: type[BaseModel], name: str) -> bool:
    """A field with one possible value (``arch: "wrn"``): nothing to edit."""
    tp, optional = _unwrap(model.model_fields[name].annotation)
    return get_origin(tp) is Literal and len(get_args(tp)) == 1 and not optional


def _default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return None if info.is_required() else info.default


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

    def compose(self) -> ComposeResult:
        yield Label(self.label)
        yield self.editor

    def set_choices(self, options: list[str]) -> None:
        """New options for a Select whose choices come from the store; keeps the value."""
        assert isinstance(self.editor, Select)
        current = self.editor.value
        if current is not Select.NULL and current not in options:
            options = [*options, str(current)]
        self.editor.set_options([(o, o) for o in options])
        self.editor.value = current

    def value(self) -> Any:
        editor = self.editor
        if isinstance(editor, Checkbox):
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
    ) -> None:
        super().__init__(path, label, help_text)
        self.model, self.initial, self.choices = model, value, choices
        names = [n for n in order if n in model.model_fields]
        names += [n for n in model.model_fields if n not in names]
        self.names = [n for n in names if n not in skip and not _constant(model, n)]
        self.extra = {k: v for k, v in value.items() if k not in model.model_fields}
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
            node = build_node(self.model, name, value, _join(self.path, name), self.choices)
            if node is not None:
                yield node

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

    def value(self) -> dict[str, Any]:
        if self.folded:
            return dict(self.initial)
        out = dict(self.extra)
        for child in self.children:
            if isinstance(child, FormNode):
                v = child.value()
                if v is not MISSING and (child.explicit or v != child.default_json):
                    out[child.path.rsplit(".", 1)[-1]] = v
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
    ) -> None:
        super().__init__(path, label, help_text)
        self.model, self.choices = model, choices
        self.initial = self.initial_value(value)

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
            yield ModelBox(self.path, self.label, self.model, self.initial, self.choices)

    @on(Checkbox.Changed)
    def _toggle(self, event: Checkbox.Changed) -> None:
        if event.checkbox.parent is not self:
            return
        boxes = self.query_children(ModelBox)
        if boxes:
            boxes.first().display = event.value
        elif event.value:
            self.mount(ModelBox(self.path, self.label, self.model, {}, self.choices))

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
    ) -> None:
        super().__init__(path, label, help_text)
        self.variants, self.tag, self.initial, self.choices = variants, tag, value, choices
        self.border_title = label
        self.current = value[tag] if value.get(tag) in variants else next(iter(variants))

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.tag)
            yield Select(
                [(k, k) for k in self.variants], value=self.current, allow_blank=False, compact=True
            )
        with Vertical(id="variant"):
            yield self._variant(self.initial)

    def _variant(self, value: dict[str, Any]) -> ModelBox:
        model, folded = self.variants[self.current], not set(value) - {self.tag}
        box = ModelBox(
            self.path, self.label, model, value, self.choices, skip=(self.tag,), folded=folded
        )
        box.add_class("-root")
        return box

    @on(Select.Changed)
    async def _switch(self, event: Select.Changed) -> None:
        if event.select.parent is None or event.select.parent.parent is not self:
            return
        event.stop()
        if event.value == self.current or event.value is Select.NULL:
            return
        self.current = str(event.value)
        holder = self.query_one("#variant", Vertical)
        await holder.remove_children()
        await holder.mount(self._variant({}))
        self.post_message(self.Edited())

    def value(self) -> dict[str, Any]:
        boxes = self.query_one("#variant").query_children(ModelBox)  # none mid-switch
        return {self.tag: self.current, **(boxes.first(ModelBox).value() if boxes else {})}


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
            yield ModelBox(path, path, self.model, v, self.choices)

    def value(self) -> list[Any]:
        return [box.value() for box in self.query_one("#items").query_children(ModelBox)]

    @on(Button.Pressed)
    async def _edit(self, event: Button.Pressed) -> None:
        if event.button.id != "add" and "remove" not in event.button.classes:
            return
        event.stop()
        values = self.value()
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
    model: type[BaseModel], name: str, value: Any, path: str, choices: Choices
) -> FormNode | None:
    """The editor for one field of a model, chosen from its type annotation. It remembers
    whether the value was given and what the default is, so the form's JSON leaves out
    what was never set and still equals the default."""
    node = _editor(model, name, value, path, choices)
    if node is not None:
        node.explicit = value is not MISSING
        node.default_json = _as_json(_default(model.model_fields[name]))
    return node


def _as_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


def _editor(
    model: type[BaseModel], name: str, value: Any, path: str, choices: Choices
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
        current = default if value is MISSING else value
        select = Select(
            [(str(o), o) for o in options],
            value=current if current in options else Select.NULL,
            allow_blank=optional or current not in options,
            prompt="(none)" if from_store is not None else "(default)" if optional else "choose",
            compact=True,
        )
        store_key = choices_key if from_store is not None else None
        return FieldRow(path, name, select, tp, help_text, store_key)
    if tp is bool:
        checked = bool(default if value is MISSING else value)
        return FieldRow(path, name, Checkbox("", checked, compact=True), tp, help_text)
    if origin is list and _is_model(_unwrap(get_args(tp)[0])[0]):
        return ListBox(path, name, _unwrap(get_args(tp)[0])[0], value, choices, help_text)
    if _is_model(tp):
        if optional:
            return OptionalBox(path, name, tp, value, choices, help_text)
        initial = value if isinstance(value, dict) else {}
        return ModelBox(path, name, tp, initial, choices, help_text=help_text, folded=not initial)
    if origin is Union and info.discriminator:
        variants = {}
        tag = str(info.discriminator)
        for variant in get_args(tp):
            (tag_value,) = get_args(_unwrap(variant.model_fields[tag].annotation)[0])
            variants[str(tag_value)] = variant
        if isinstance(value, str):
            value = {tag: value}  # the "view": "gaf" shorthand
        if not isinstance(value, dict):
            value = {tag: getattr(default, tag)} if default is not None else {}
        return UnionBox(path, name, variants, tag, value, choices, help_text)
    text = "" if value is MISSING or value is None else _as_text(value)
    placeholder = "" if default is None else _as_text(default)
    editor = Input(text, placeholder=placeholder, compact=True)
    return FieldRow(path, name, editor, tp, help_text)


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


# ---------------------------------------------------------------------- the screen


def slurm_here() -> bool:
    """Whether Slurm takes jobs from here (sbatch on PATH: a login node)."""
    return shutil.which("sbatch") is not None


def _experiments_in(raw: Any) -> list[dict[str, Any]]:
    """The experiment objects of a parsed spec file: one, a list, or {"experiments": [...]}."""
    items = raw.get("experiments") if isinstance(raw, dict) and "experiments" in raw else raw
    return [e for e in (items if isinstance(items, list) else [items]) if isinstance(e, dict)]


def _experiment_names(path: Path) -> list[str]:
    """The experiments a spec file holds, by name (none when it is no spec)."""
    try:
        return [str(e.get("name") or "?") for e in _experiments_in(read_spec_file(path))]
    except SpecError:
        return []


class ComposeScreen(LiveScreen):
    TITLE = "Compose"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+r",
            "launch",
            "Launch",
            tooltip="Queue one run per seed (only when the spec is valid).",
        ),
        Binding("ctrl+s", "save", "Save", tooltip="Save the form as a spec JSON."),
        Binding("ctrl+o", "load", "Load", tooltip="Load a spec JSON to edit."),
        Binding("ctrl+n", "new", "New", tooltip="Start again from the template."),
        Binding(
            "escape",
            "blur",
            "Leave field",
            show=False,
            tooltip="Leave the field, so 1-4 switch screens again.",
        ),
    ]
    DEFAULT_CSS = """
    ComposeScreen #body { height: 1fr; }
    ComposeScreen #form { width: 1fr; padding: 0 1; }
    ComposeScreen #preview { width: 48; border-left: vkey $panel-lighten-2; padding: 0 1; }
    ComposeScreen #root-problems { color: $text-error; height: auto; display: none; }
    ComposeScreen #status.-ok { color: $text-success; }
    ComposeScreen #status.-bad { color: $text-error; }
    ComposeScreen #status.-warn { color: $text-warning; }
    ComposeScreen #actions { height: 1; padding: 0 1; }
    ComposeScreen #actions Button { margin-right: 1; width: auto; min-width: 8; }
    ComposeScreen #executor { width: 18; display: none; }
    ComposeScreen #executor.-slurm { display: block; }
    ComposeScreen #help { height: 1; color: $text-muted; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.base_dir = Path.cwd()
        self.problems: list[Problem] | None = None  # of the last check (None: none yet)
        self.checking = True  # an edit not checked yet
        self.group_names: list[str] = []
        self._pending: Timer | None = None
        # The form as last loaded, saved or launched (None: the next check's value), so
        # that New asks before it throws away edits.
        self._kept: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with VerticalScroll(id="form"):
                yield Static(id="root-problems")
                yield self._root(TEMPLATE)
            with VerticalScroll(id="preview"):
                yield Static(id="json")
        yield Static(id="help")
        yield Static("checking…", id="status", classes="bar")
        with Horizontal(id="actions"):
            yield Button("Launch", id="launch", variant="success", compact=True, disabled=True)
            yield Button("Save…", id="save", compact=True)
            yield Button("Load…", id="load", compact=True)
            yield Button("New", id="new", compact=True)
            yield Select(
                [("on this machine", "local"), ("on Slurm", "slurm")],
                value="local",
                allow_blank=False,
                compact=True,
                id="executor",
                tooltip="Where Launch sends the runs (Slurm: the workspace's slurm.json).",
            )
        yield Footer()

    def _root(self, value: dict[str, Any]) -> ModelBox:
        choices: Choices = {TEACHER_CHOICES: self.group_names}
        box = ModelBox("", "experiment", Experiment, value, choices, order=FIELD_ORDER)
        box.add_class("-root")
        box.id = "root"
        return box

    def on_mount(self) -> None:
        super().on_mount()
        self.app.composer = self  # so that quitting can ask about unsaved edits
        self.call_after_refresh(self._edited)
        # The executor choice shows where Slurm can be reached (a login node)
        self.query_one("#executor").set_class(slurm_here(), "-slurm")

    def on_resize(self, event: events.Resize) -> None:
        # Toggled on the preview alone: a class on the screen would restyle the whole form.
        preview, show = self.query_one("#preview"), event.size.width >= PREVIEW_FROM
        if show and not preview.display and (raw := self.form_value()) is not None:
            self.query_one("#json", Static).update(json_view(raw))  # hidden, it was not kept up
        preview.display = show

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """Teachers are picked from groups that have finished runs."""
        names = sorted({r["name"] for r in snapshot.runs if r.get("status") == "done"})
        if names != self.group_names:
            self.group_names[:] = names  # the form's context holds this very list
            for row in self.query(FieldRow):
                if row.choices_key == TEACHER_CHOICES:
                    row.set_choices(names)
            self._edited()

    # ------------------------------------------------------------------ editing

    def form_value(self) -> dict[str, Any] | None:
        """The form as a spec dict, or None while part of it is still being mounted (a
        loaded spec or a switched variant composes its children a frame later)."""
        try:
            return self.query_one("#root", ModelBox).value()
        except NoMatches:
            return None

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    @on(FormNode.Edited)
    def _edited(self) -> None:
        """Check again once typing pauses. Nothing else changes per key press: restyling
        a form of this size on every key would make typing lag."""
        self.checking = True
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(CHECK_DELAY_S, self._check_form)

    def _check_form(self) -> None:
        raw = self.form_value()
        if raw is None:
            self._edited()  # still mounting: look again once it has settled
        else:
            self._check(raw)

    @on(events.DescendantFocus)
    def _show_help(self, event: events.DescendantFocus) -> None:
        node = next((n for n in event.widget.ancestors if isinstance(n, FormNode)), None)
        text = (
            f"{node.path}: {node.help_text}"
            if node and node.help_text
            else (node.path if node else "")
        )
        self.query_one("#help", Static).update(text, layout=False)  # one line

    @work(thread=True, exclusive=True, group="compose-check")
    def _check(self, raw: dict[str, Any]) -> None:
        """Validate in a worker: teacher references are looked up in the store."""
        loaded, problems = self._validate(raw)
        snapshot = self.app.snapshot  # the runs in memory: no index read per check
        again = launcher.seeds_in_store(snapshot.runs, loaded) if loaded and snapshot else {}
        self.app.call_from_thread(self._show_check, raw, problems, again)

    def _validate(self, raw: dict[str, Any]) -> tuple[LoadedSpec | None, list[Problem]]:
        try:
            return (
                validate_spec(
                    raw,
                    base_dir=self.base_dir,
                    source="form",
                    store_lookup=launcher.store_lookup(self.app.store),
                ),
                [],
            )
        except SpecError as exc:
            return None, exc.problems
        except (StoreError, OSError) as exc:
            return None, [Problem("", f"store not readable: {exc}")]

    def _show_check(
        self,
        raw: dict[str, Any],
        problems: list[Problem],
        again: dict[str, list[int]] | None = None,
    ) -> None:
        if raw != self.form_value():
            return  # the form moved on; a newer check is on its way
        if self._kept is None:
            self._kept = raw
        validity_changed = (problems == []) != (self.problems == [])
        self.problems, self.checking = problems, False
        nodes: dict[str, FormNode] = {}
        for node in self.query(FormNode):
            nodes.setdefault(node.path, node)  # a box's own problems go on its outer frame
        found: dict[str, list[str]] = {}
        for p in problems:
            at = next(path for path in _parents(p.path) if path in nodes)
            found.setdefault(at, []).append(p.message if at == p.path else str(p))
        for path, node in nodes.items():
            if path:  # the spec's own problems are shown once, above the form
                node.show_problems(found.get(path, []))
        root = self.query_one("#root-problems", Static)
        root_text = "\n".join(f"✗ {m}" for m in found.get("", []))
        if root.content != root_text:  # every update of a Static re-lays out the form
            root.update(root_text)
            root.display = bool(root_text)
        status = self.query_one("#status", Static)
        if problems:
            status.update(f"✗ {plural(len(problems), 'problem')}: {problems[0]}", layout=False)
        else:
            seeds = raw.get("seeds", [0, 1, 2])
            n = len(seeds) if isinstance(seeds, list) else 0
            text = f"✓ valid: launching queues {plural(n, 'run')}, one per seed"
            if again:  # an "edit as new" launched unchanged would train the same seeds again
                text = f"⚠ valid · the store has {launcher.seeds_text(again)}: trained again"
            status.update(text, layout=False)
        status.set_class(not problems and not again, "-ok")
        status.set_class(not problems and bool(again), "-warn")
        status.set_class(bool(problems), "-bad")
        if validity_changed:
            self.query_one("#launch", Button).disabled = bool(problems)
            self.refresh_bindings()
        preview = self.query_one("#json", Static)
        if preview.parent and preview.parent.display:  # only beside the form, when wide
            preview.update(json_view(raw))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "launch":
            return True if self.problems == [] else None  # None: shown, but disabled
        return True

    # ------------------------------------------------------------------ actions

    def action_blur(self) -> None:
        self.set_focus(None)

    @on(Button.Pressed, "#launch")
    def action_launch(self) -> None:
        """Launch what the form holds now; the worker validates it once more first, so an
        edit made since the last check can never slip through."""
        raw = self.form_value()
        if self.problems == [] and raw is not None:
            self.query_one("#launch", Button).disabled = True
            self._launch(raw, str(self.query_one("#executor", Select).value))
        else:
            self.app.notify("fix the problems first", severity="warning")

    @work(thread=True, exclusive=True, group="compose-launch")
    def _launch(self, raw: dict[str, Any], where: str = "local") -> None:
        loaded, problems = self._validate(raw)
        if loaded is None:
            self.app.call_from_thread(self._show_check, raw, problems)
            return
        store = self.app.store
        try:
            executor: launcher.Executor = launcher.LocalExecutor()  # the queue runner
            if where == "slurm":
                from kdtui.slurm import SlurmExecutor, SlurmOptions

                executor = SlurmExecutor(SlurmOptions.load(store))
                executor.check(store, lambda line: None)  # a probe job, the first time only
            run_ids = launcher.enqueue(store, loaded, executor)
            executor.start(store, run_ids)
        except (StoreError, OSError, ValueError, launcher.ExecutorError) as exc:
            self.app.call_from_thread(self._launched, None, f"not launched: {exc}")
            return
        self.app.call_from_thread(self._keep, raw)
        name = str(loaded.experiments[0].name)
        self.app.call_from_thread(
            self._launched, run_ids, f"queued {plural(len(run_ids), 'run')}", name
        )

    def _launched(self, run_ids: list[str] | None, message: str, name: str = "") -> None:
        self.query_one("#launch", Button).disabled = False
        self.app.notify(message, severity="information" if run_ids else "error")
        if run_ids:
            self.app.poll()
            self.app.call_later(self.app.show_runs, name)  # the runs list, not a detail on top

    def _keep(self, raw: dict[str, Any]) -> None:
        self._kept = raw

    def has_edits(self) -> bool:
        """Whether the form holds edits not saved or launched (they would be lost)."""
        raw = self.form_value()
        return not (raw is None or self._kept is None or raw == self._kept)

    def unless_edited(self, question: str, then: Callable[[], None]) -> None:
        """``then()`` at once, or after a yes when the form holds edits (``has_edits``)."""
        if not self.has_edits():
            then()
            return
        note = "The form has edits that were not saved or launched (ctrl+s saves them)."
        self.app.push_screen(
            Prompt(question, [], note=note, risky=True),
            lambda values: values is not None and then(),
        )

    @on(Button.Pressed, "#new")
    def action_new(self) -> None:
        self.unless_edited(
            "Start again from the template?",
            lambda: self.call_later(self.load_experiment, dict(TEMPLATE), Path.cwd()),
        )

    async def load_experiment(
        self, experiment: dict[str, Any], base_dir: Path | None = None
    ) -> None:
        """Replace the form with ``experiment`` (a loaded file, or a run's frozen spec)."""
        if base_dir is not None:
            self.base_dir = base_dir
        self._kept = None
        await self.query("#root").remove()
        await self.query_one("#form", VerticalScroll).mount(self._root(experiment))
        self._edited()

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        raw = self.form_value()
        if raw is None:
            return  # still mounting; the key press is a frame early
        default = str(self.base_dir / f"{raw.get('name') or 'experiment'}.json")

        def done(values: dict[str, str] | None) -> None:
            if values and values["path"].strip():
                self._save(Path(values["path"].strip()).expanduser(), raw)

        self.app.push_screen(Prompt("Save spec as", [Field("path", "file", default)]), done)

    @work(thread=True, group="compose-files")
    def _save(self, path: Path, raw: dict[str, Any], overwrite: bool = False) -> None:
        if path.exists() and not overwrite:
            self.app.call_from_thread(self._ask_overwrite, path, raw, _experiment_names(path))
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
        except OSError as exc:
            self.app.call_from_thread(self.app.notify, f"not saved: {exc}", severity="error")
            return
        note = "" if self.problems == [] else " (it still has problems)"
        self.app.call_from_thread(self._keep, raw)
        self.app.call_from_thread(self.app.notify, f"saved {path}{note}")

    def _ask_overwrite(self, path: Path, raw: dict[str, Any], names: list[str]) -> None:
        held = f"It holds {plural(len(names), 'experiment')}: {', '.join(names)}. " if names else ""
        note = f"{held}Saving replaces the whole file with this one experiment."
        self.app.push_screen(
            Prompt(f"Overwrite {path}?", [], note=note, risky=True),
            lambda values: values is not None and self._save(path, raw, overwrite=True),
        )

    @on(Button.Pressed, "#load")
    def action_load(self) -> None:
        def done(values: dict[str, str] | None) -> None:
            if values and values["path"].strip():
                path = Path(values["path"].strip()).expanduser()
                self.unless_edited(f"Load {path} over your edits?", lambda: self._load(path))

        self.app.push_screen(
            Prompt(
                "Load a spec",
                [Field("path", "file", placeholder="path/to/spec.json")],
                note="A file with several experiments asks which one to edit.",
            ),
            done,
        )

    @work(thread=True, group="compose-files")
    def _load(self, path: Path) -> None:
        try:
            raw = read_spec_file(path)
        except SpecError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        items = _experiments_in(raw)
        if not items:
            self.app.call_from_thread(
                self.app.notify, f"{path}: no experiment in it", severity="error"
            )
            return
        self.app.call_from_thread(self._pick, path, items)

    def _pick(self, path: Path, items: list[dict[str, Any]]) -> None:
        if len(items) == 1:
            self.call_later(self.load_experiment, items[0], path.parent.resolve())
            return
        names = [str(e.get("name")) for e in items]

        def done(values: dict[str, str] | None) -> None:
            if values and values["name"] in names:
                chosen = items[names.index(values["name"])]
                self.call_later(self.load_experiment, chosen, path.parent.resolve())
            elif values:
                self.app.notify(f"no experiment {values['name']!r} in {path}", severity="error")

        self.app.push_screen(
            Prompt(
                f"{path.name}: which experiment?",
                [Field("name", "experiment", names[-1], suggestions=names)],
                note="in the file: " + ", ".join(names),
            ),
            done,
        )

    def edit_run(self, run_id: str) -> None:
        """A run's experiment in the form ("edit as new"), asking before edits are lost."""
        self.unless_edited(f"Edit {run_id} as new, over your edits?", lambda: self.load_run(run_id))

    @work(thread=True, group="compose-files")
    def load_run(self, run_id: str) -> None:
        """Edit a run's frozen experiment as a new one (teachers stay as they were)."""
        try:
            experiment = launcher.run_experiment(self.app.store, self.app.store.read_spec(run_id))
        except (OSError, ValueError, KeyError, StoreError) as exc:
            self.app.call_from_thread(
                self.app.notify, f"cannot read {run_id}: {exc}", severity="error"
            )
            return
        experiment["seeds"] = [0, 1, 2]
        self.app.call_from_thread(self.load_experiment, experiment)
