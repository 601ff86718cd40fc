"""Compose: a whole spec file — its defaults and experiments in a list, the selected one
in a form built from the spec's pydantic models.

The form (``kdtui.widgets.form``) walks ``Experiment.model_fields``, so a loss term added to
``LossSpec`` shows up here without edits. The file (``compose_file.SpecDoc``) keeps what
was written: ``defaults`` are an entry of the list with the same form, every field
optional; an experiment's ``grid`` is a list of axes (``kdtui.widgets.axes``); saving
writes the file compact again, nothing expanded. The whole file is validated by
``kdtui.spec.validate_spec`` in a worker once typing pauses: each problem is shown under
the field whose path it names in the file as written (or marked on its entry in the list),
and the file's expansion is counted (experiments → configurations, runs). The form is
rebuilt only when another entry is selected. Launch (through ``launcher.prepare_launch``,
with a choice of runs at a time) lives here.

The screen holds the file, the form and its check; its other parts are classes it
inherits: the list of entries (``compose_entries.EntryActions``: select, add, copy,
rename, remove) and the file actions (``compose_files.FileActions``: new, load, save,
"edit as new").
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.timer import Timer
from textual.widgets import (
    Button,
    Checkbox,
    Header,
    Input,
    Label,
    Select,
    Static,
)

from kdtui import launcher
from kdtui.fmt import plural
from kdtui.screens.compose_entries import TEMPLATE
from kdtui.screens.compose_file import DEFAULTS, Counts, SpecDoc, counts
from kdtui.screens.compose_files import FileActions
from kdtui.spec import Experiment, LoadedSpec, Problem, SpecError, validate_spec
from kdtui.store import StoreError
from kdtui.tui.messages import ShowRuns, StoreWritten
from kdtui.tui.snapshot import Snapshot
from kdtui.widgets import KeyFooter, TextInput, json_view
from kdtui.widgets.axes import GridBox, field_paths
from kdtui.widgets.entry_list import Entry, EntryList
from kdtui.widgets.form import (
    MISSING,
    Choices,
    FieldRow,
    FormNode,
    ModelBox,
    Unsettled,
    parents_of,
)

# Shown first; the remaining fields of Experiment follow, in model order.
FIELD_ORDER = ("name", "description", "data", "student", "teachers", "loss", "optim", "schedule")
PREVIEW_FROM = 130  # columns from which the JSON preview shows beside the list and form
TEACHER_CHOICES = "TeacherSpec.experiment"  # the store's finished groups, the file's names
CHECK_DELAY_S = 0.25  # validate once typing pauses
SHOWN_NAMES = 6  # expanded names listed above a grid experiment's form


def slurm_here() -> bool:
    """Whether Slurm takes jobs from here (sbatch on PATH: a login node)."""
    return shutil.which("sbatch") is not None


def _join(prefix: str, path: str) -> str:
    if not path:
        return prefix
    if not prefix or path.startswith("["):
        return prefix + path
    return f"{prefix}.{path}"


class ComposeScreen(FileActions):
    TITLE = "Compose"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+r",
            "launch",
            "Launch",
            tooltip="Queue the file's runs, one per seed of each configuration (only when it is valid).",
        ),
        Binding("ctrl+s", "save", "Save", tooltip="Save the file (compact: defaults, grids)."),
        Binding("ctrl+o", "load", "Load", tooltip="Open a spec file to edit."),
        Binding("ctrl+n", "new", "New", tooltip="Start again from the template."),
        Binding("ctrl+l", "focus_list", "List", tooltip="The list of the file's experiments."),
        Binding(
            "escape",
            "blur",
            "Leave field",
            show=False,
            tooltip="Leave the field, so 1-4 switch screens again.",
            priority=True,  # the keys after it are commands, however fast they follow
        ),
    ]
    DEFAULT_CSS = """
    ComposeScreen #body { height: 1fr; }
    ComposeScreen #side { width: 24; border-right: vkey $panel-lighten-2; }
    ComposeScreen #entries { height: 1fr; }
    ComposeScreen #file-name { height: 1; text-style: bold; color: $text-muted; }
    ComposeScreen #counts { height: auto; color: $text-muted; }
    ComposeScreen #list-actions { height: 1; }
    ComposeScreen #list-actions Button { width: auto; min-width: 1; margin: 0; }
    ComposeScreen #form { width: 1fr; padding: 0 1; }
    ComposeScreen #preview { width: 48; border-left: vkey $panel-lighten-2; padding: 0 1; }
    ComposeScreen #root-problems { color: $text-error; height: auto; display: none; }
    ComposeScreen #expands { color: $text-muted; height: auto; display: none; }
    ComposeScreen #status.-ok { color: $text-success; }
    ComposeScreen #status.-bad { color: $text-error; }
    ComposeScreen #status.-warn { color: $text-warning; }
    ComposeScreen #actions { height: auto; padding: 0 1; }
    ComposeScreen #actions Button { margin-right: 1; width: auto; min-width: 8; }
    ComposeScreen #jobs-label { color: $text-muted; margin-right: 1; }
    ComposeScreen #jobs { width: 5; margin-right: 2; }
    ComposeScreen #executor { width: 18; display: none; }
    ComposeScreen #executor.-slurm { display: block; }
    ComposeScreen #help { height: 1; color: $text-muted; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.base_dir = Path.cwd()
        self.doc = SpecDoc([dict(TEMPLATE)])
        self.selected = 0  # the entry in the form: DEFAULTS or an experiment's index
        self.problems: list[Problem] | None = None  # of the last check (None: none yet)
        self.checking = True  # an edit not checked yet
        self.checked: dict[str, Any] | None = None  # the form value the problems are of
        self.counts: Counts | None = None  # the file's expansion, as of the last check
        self.group_names: list[str] = []  # teachers to pick: the store's, the file's
        self._store_names: list[str] = []
        self._by_entry: dict[int | None, list[Problem]] = {}
        self._pending: Timer | None = None
        # The file as last loaded, saved or launched (None: the next check's value), so
        # that New asks before it throws away edits.
        self._kept: Any = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="side"):
                yield Static(id="file-name")
                yield EntryList(id="entries")
                yield Static(id="counts")
                with Horizontal(id="list-actions"):
                    yield Button(
                        "+Add", id="add-entry", compact=True, tooltip="A new experiment (a)"
                    )
                    yield Button("Copy", id="copy-entry", compact=True, tooltip="Copy it (c)")
                    yield Button("Rename", id="rename-entry", compact=True, tooltip="Rename (r)")
                    yield Button("✕", id="remove-entry", compact=True, tooltip="Remove (del)")
            with VerticalScroll(id="form"):
                yield Static(id="root-problems")
                yield Static(id="expands")
                yield self._root()
            with VerticalScroll(id="preview"):
                yield Static(id="json")
        yield Static(id="help")
        yield Static("checking…", id="status", classes="bar")
        with Horizontal(id="actions"):
            yield Button("Launch", id="launch", variant="success", compact=True, disabled=True)
            yield Button("Save…", id="save", compact=True)
            yield Button("Load…", id="load", compact=True)
            yield Button("New", id="new", compact=True)
            yield Label("runs at a time", id="jobs-label")
            yield TextInput(
                "1",
                type="integer",
                compact=True,
                id="jobs",
                tooltip="Runs trained side by side on this machine (kdtui run --jobs); "
                "the workspace's queue runner keeps it for every queued run.",
            )
            yield Select(
                [("on this machine", "local"), ("on Slurm", "slurm")],
                value="local",
                allow_blank=False,
                compact=True,
                id="executor",
                tooltip="Where Launch sends the runs (Slurm: the workspace's slurm.json).",
            )
        yield KeyFooter()  # rebuilt only when its keys change, not at every Tab

    def _root(self) -> ModelBox:
        """The form of the selected entry. Every field may be left to the defaults."""
        choices: Choices = {TEACHER_CHOICES: self.group_names}
        if self.selected == DEFAULTS:
            value = self.doc.defaults
            skip = () if "name" in value else ("name",)  # a name there is a problem, kept
            box = ModelBox(
                "", "defaults", Experiment, value, choices, order=FIELD_ORDER, skip=skip,
                partial=True,
            )  # fmt: skip
        else:
            value = self.doc.experiments[self.selected]
            grid = value.get("grid", MISSING)
            paths = field_paths(Experiment)
            box = ModelBox(
                "",
                "experiment",
                Experiment,
                value,
                choices,
                order=FIELD_ORDER,
                partial=True,
                inherited=self.doc.defaults or MISSING,
                after={"description": ("grid", lambda: GridBox(grid, paths))},
            )
        box.add_class("-root")
        box.id = "root"
        return box

    def on_mount(self) -> None:
        super().on_mount()
        self._show_entries(highlight=True)
        self.call_after_refresh(self._edited)
        # The executor choice shows where Slurm can be reached (a login node)
        self.query_one("#executor").set_class(slurm_here(), "-slurm")
        self._show_jobs()

    def _show_jobs(self) -> None:
        """Runs at a time starts at the workspace runner's setting (a number typed in: a
        dropdown this close to the screen's foot would have no room to open)."""
        jobs = launcher.read_runner_config(self.host.store).get("jobs")
        if isinstance(jobs, int) and jobs >= 1:
            self.query_one("#jobs", Input).value = str(jobs)

    def on_resize(self, event: events.Resize) -> None:
        # Toggled on the preview alone: a class on the screen would restyle the whole form.
        preview, show = self.query_one("#preview"), event.size.width >= PREVIEW_FROM
        if show and not preview.display and (raw := self.form_value()) is not None:
            self.query_one("#json", Static).update(json_view(raw))  # hidden, it was not kept up
        preview.display = show

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """Teachers are picked from groups that have finished runs (and the file's own)."""
        names = sorted({r["name"] for r in snapshot.runs if r.get("status") == "done"})
        if names != self._store_names:
            self._store_names = names
            self._offer_teachers()
            self._edited()

    def _offer_teachers(self) -> None:
        file_names = self.doc.taken(self.counts) if self.counts else set(self.doc.names())
        names = sorted(set(self._store_names) | {n for n in file_names if n})
        if names != self.group_names:
            self.group_names[:] = names  # the form's context holds this very list
            for row in self.query(FieldRow):
                if row.choices_key == TEACHER_CHOICES:
                    row.set_choices(names)

    # ------------------------------------------------------------------ the values

    def form_value(self) -> dict[str, Any] | None:
        """The selected entry as the form holds it, or None while part of it is still
        being mounted (a loaded spec or a switched variant composes its children a frame
        later, and a Select shows the value it was built with only once mounted)."""
        try:
            return self.query_one("#root", ModelBox).value()
        except (NoMatches, Unsettled):
            return None

    def file_value(self) -> Any:
        """The whole file as it would be saved (compact), or None while mounting."""
        value = self.form_value()
        return None if value is None else self.doc.value(self.selected, value)

    # ------------------------------------------------------------------ checking

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    @on(FormNode.Edited)
    def _edited(self, event: Message | None = None) -> None:
        """Check again once typing pauses. Nothing else changes per key press: restyling
        a form of this size on every key would make typing lag."""
        control = getattr(event, "control", None)
        if control is not None and control.id in ("jobs", "executor"):
            return  # where and how fast to launch: nothing to check
        self.checking = True
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(CHECK_DELAY_S, self._check_form)

    def _check_form(self) -> None:
        raw = self.file_value()
        if raw is None:
            self._edited()  # still mounting: look again once it has settled
        else:
            self._check(raw, len(self.doc.experiments))

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
    def _check(self, raw: Any, written: int) -> None:
        """Validate and count the expansion in a worker: teacher references are looked up
        in the store."""
        loaded, problems = self._validate(raw)
        expansion = counts(raw, written)
        snapshot = self.host.snapshot  # the runs in memory: no index read per check
        again = launcher.seeds_in_store(snapshot.runs, loaded) if loaded and snapshot else {}
        self.app.call_from_thread(self._show_check, raw, problems, again, expansion)

    def _validate(self, raw: Any) -> tuple[LoadedSpec | None, list[Problem]]:
        try:
            return (
                validate_spec(
                    raw,
                    base_dir=self.base_dir,
                    source=self._source(),
                    store_lookup=launcher.store_lookup(self.host.store),
                ),
                [],
            )
        except SpecError as exc:
            return None, exc.problems
        except (StoreError, OSError) as exc:
            return None, [Problem("", f"store not readable: {exc}")]

    def _source(self) -> str:
        return str(self.doc.path) if self.doc.path else "form"

    def _local_problems(self) -> list[Problem]:
        """What the form alone knows is wrong: a grid path on two rows (the file can hold
        it once), at the grid's path in the file."""
        try:
            grid = self.query_one("#root GridBox", GridBox)
        except NoMatches:
            return []
        where = _join(self.doc.prefix(self.selected), "grid")
        return [
            Problem(where, f"{key!r} is on two rows: give each field path one row")
            for key in grid.duplicates()
        ]

    def _show_check(
        self,
        raw: Any,
        problems: list[Problem],
        again: dict[str, list[int]] | None = None,
        expansion: Counts | None = None,
    ) -> None:
        """A check's answer, shown once it lands on the event loop."""
        if not self.is_attached or not self.query("#entries"):
            return  # the app is closing
        try:
            self._show_answer(raw, problems, again, expansion)
        except NoMatches:
            if self.is_attached and not self.is_closing():
                raise
            # the app closed the screen while the answer waited: its widgets go one by one

    def is_closing(self) -> bool:
        return self._closing or self._pruning or not self.app.is_running

    def _show_answer(
        self,
        raw: Any,
        problems: list[Problem],
        again: dict[str, list[int]] | None,
        expansion: Counts | None,
    ) -> None:
        entry_value = self.form_value()
        if entry_value is None or raw != self.doc.value(self.selected, entry_value):
            return  # the form moved on; a newer check is on its way
        if self._kept is None:
            self._kept = raw
        problems = problems + self._local_problems()
        validity_changed = (problems == []) != (self.problems == [])
        self.problems, self.checking, self.checked = problems, False, entry_value
        if expansion is not None:
            self.counts = expansion
        self._by_entry = self.doc.route(problems)
        self._show_problems(self._by_entry.get(self.selected, []) + self._by_entry.get(None, []))
        self._show_entries(entry_value)
        self._show_counts()
        self._show_status(problems, again or {})
        self._offer_teachers()
        if validity_changed:
            self.query_one("#launch", Button).disabled = bool(problems)
            self.refresh_bindings()
        preview = self.query_one("#json", Static)
        if preview.parent and preview.parent.display:  # only beside the form, when wide
            preview.update(json_view(entry_value))

    def _show_problems(self, problems: list[Problem]) -> None:
        """Each problem under the field at its path (or the nearest section shown)."""
        nodes: dict[str, FormNode] = {}
        for node in self.query(FormNode):
            nodes.setdefault(node.path, node)  # a box's own problems go on its outer frame
        found: dict[str, list[str]] = {}
        for p in problems:
            at = next(path for path in parents_of(p.path) if path in nodes)
            found.setdefault(at, []).append(p.message if at == p.path else str(p))
        for path, node in nodes.items():
            if path:  # the entry's own problems are shown once, above the form
                node.show_problems(found.get(path, []))
        root = self.query_one("#root-problems", Static)
        root_text = "\n".join(f"✗ {m}" for m in found.get("", []))
        if root.content != root_text:  # every update of a Static re-lays out the form
            root.update(root_text)
            root.display = bool(root_text)

    def _show_entries(
        self, entry_value: dict[str, Any] | None = None, highlight: bool = False
    ) -> None:
        """The list: the defaults, then each experiment with its expansion and a mark
        for its problems; ``highlight``: the selected entry highlighted."""
        entries = [Entry("defaults", 1, len(self._by_entry.get(DEFAULTS, [])), defaults=True)]
        names = self.counts.names if self.counts else {}
        for i, exp in enumerate(self.doc.experiments):
            if i == self.selected and entry_value is not None:
                exp = entry_value
            name = str(exp.get("name") or f"(experiment {i + 1})")
            entries.append(Entry(name, len(names.get(i, [name])), len(self._by_entry.get(i, []))))
        self.query_one("#entries", EntryList).show(
            entries, self.selected + 1 if highlight else None
        )
        name = self.query_one("#file-name", Static)
        text = self.doc.path.name if self.doc.path else "new file"
        if name.content != text:
            name.update(text)

    def _show_counts(self) -> None:
        c = self.counts
        text = (
            ""
            if c is None
            else f"→ {plural(c.configurations, 'configuration')}\n→ {plural(c.runs, 'run')}"
        )
        counts_view = self.query_one("#counts", Static)
        if counts_view.content != text:
            counts_view.update(text)
        expands = self.query_one("#expands", Static)
        if self.selected == DEFAULTS:
            text = "Merged under every experiment of the file; an experiment's own value wins."
        elif c is not None and (
            len(names := c.names.get(self.selected, [])) > 1 or "grid" in (self.form_value() or {})
        ):
            shown = ", ".join(names[:SHOWN_NAMES]) + (", …" if len(names) > SHOWN_NAMES else "")
            runs = c.runs_of.get(self.selected, 0)
            text = f"→ {plural(len(names), 'configuration')}, {plural(runs, 'run')}: {shown}"
        else:
            text = ""
        if expands.content != text:
            expands.update(text)
            expands.display = bool(text)

    def _show_status(self, problems: list[Problem], again: dict[str, list[int]]) -> None:
        status = self.query_one("#status", Static)
        c = self.counts
        if problems:
            status.update(f"✗ {plural(len(problems), 'problem')}: {problems[0]}", layout=False)
        elif again:  # an "edit as new" launched unchanged would train the same seeds again
            text = f"⚠ valid · the store has {launcher.seeds_text(again)}: trained again"
            status.update(text, layout=False)
        elif c is not None and c.written == 1 and c.configurations == 1:
            text = f"✓ valid: launching queues {plural(c.runs, 'run')}, one per seed"
            status.update(text, layout=False)
        elif c is not None:
            status.update(f"✓ valid: {c.text()}", layout=False)
        status.set_class(not problems and not again, "-ok")
        status.set_class(not problems and bool(again), "-warn")
        status.set_class(bool(problems), "-bad")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "launch":
            return True if self.problems == [] else None  # None: shown, but disabled
        return True

    # ------------------------------------------------------------------ actions

    def action_blur(self) -> None:
        focused = self.focused
        if focused is not None and any(
            isinstance(node, Select) and node.expanded for node in focused.ancestors_with_self
        ):
            raise SkipAction()  # an open list closes first, as ever
        self.set_focus(None)

    @on(Button.Pressed, "#launch")
    def action_launch(self) -> None:
        """Launch what the file holds now; the worker validates it once more first, so an
        edit made since the last check can never slip through."""
        raw = self.file_value()
        if self.problems != [] or raw is None:
            self.app.notify("fix the problems first", severity="warning")
            return
        where = str(self.query_one("#executor", Select).value)
        text = self.query_one("#jobs", Input).value.strip()
        if where == "local" and text and (not text.isdigit() or int(text) < 1):
            self.app.notify("runs at a time: a whole number, 1 or more", severity="warning")
            return
        self.query_one("#launch", Button).disabled = True
        self._launch(raw, where, int(text) if text and where == "local" else None)

    @on(Select.Changed, "#executor")
    def _executor_changed(self, event: Select.Changed) -> None:
        """Runs at a time are this machine's: Slurm schedules its own."""
        for widget in self.query("#jobs-label, #jobs"):
            widget.display = event.value == "local"

    @work(thread=True, exclusive=True, group="compose-launch")
    def _launch(self, raw: Any, where: str = "local", jobs: int | None = None) -> None:
        """The launcher's one launch path (as ``kdtui run``); this only presents it."""
        store = self.app.store
        options = {"jobs": jobs} if where == "local" and jobs else {}
        try:  # the queue runner, or Slurm: a probe job the first time only
            executor = launcher.choose_executor(store, where, **options)
            launch = launcher.prepare_launch(
                store, raw, executor, base_dir=self.base_dir, source=self._source()
            )
        except SpecError as exc:
            self.app.call_from_thread(self._show_check, raw, exc.problems)
            self.app.call_from_thread(self._launched, None, "not launched: the spec has problems")
            return
        except (StoreError, OSError, ValueError, launcher.ExecutorError) as exc:
            self.app.call_from_thread(self._launched, None, f"not launched: {exc}")
            return
        self.app.call_from_thread(self._keep, raw)
        for note in launch.notes():  # e.g. a name that names another configuration
            self.app.call_from_thread(self.app.notify, note, severity="warning", timeout=10)
        experiments, run_ids = launch.loaded.experiments, launch.run_ids
        message = f"queued {plural(len(run_ids), 'run')}"
        if len(experiments) > 1:
            message += f" of {plural(len(experiments), 'configuration')}"
        name = str(experiments[0].name) if len(experiments) == 1 else ""
        self.app.call_from_thread(self._launched, run_ids, message, name)

    def _launched(self, run_ids: list[str] | None, message: str, name: str = "") -> None:
        self.query_one("#launch", Button).disabled = bool(self.problems)
        self.app.notify(message, severity="information" if run_ids else "error")
        if run_ids:
            self.post_message(StoreWritten())
            self.post_message(ShowRuns(name))  # the runs list, not a detail on top
