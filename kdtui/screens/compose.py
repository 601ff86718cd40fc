"""Compose: a form for one experiment, built from the spec's pydantic models.

The form (``kdtui.widgets.form``) walks ``Experiment.model_fields``, so a loss term added to
``LossSpec`` shows up here without edits. Its value is validated by
``kdtui.spec.validate_spec`` in a worker as the user types; each problem is shown under the
field whose JSON path it names, or under the nearest section that exists. Save, load, new,
"edit as new" and launch live here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.timer import Timer
from textual.widgets import Button, Checkbox, Footer, Header, Input, Select, Static

from kdtui import launcher
from kdtui.fmt import plural
from kdtui.screens.live import LiveScreen
from kdtui.spec import Experiment, LoadedSpec, Problem, SpecError, read_spec_file, validate_spec
from kdtui.store import StoreError
from kdtui.tui.messages import ShowRuns, StoreWritten
from kdtui.tui.snapshot import Snapshot
from kdtui.widgets import Field, Prompt, json_view
from kdtui.widgets.form import Choices, FieldRow, FormNode, ModelBox, Unsettled, parents_of

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
        self.checked: dict[str, Any] | None = None  # the form value the problems are of
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
        loaded spec or a switched variant composes its children a frame later, and a
        Select shows the value it was built with only once mounted)."""
        try:
            return self.query_one("#root", ModelBox).value()
        except (NoMatches, Unsettled):
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
        snapshot = self.host.snapshot  # the runs in memory: no index read per check
        again = launcher.seeds_in_store(snapshot.runs, loaded) if loaded and snapshot else {}
        self.app.call_from_thread(self._show_check, raw, problems, again)

    def _validate(self, raw: dict[str, Any]) -> tuple[LoadedSpec | None, list[Problem]]:
        try:
            return (
                validate_spec(
                    raw,
                    base_dir=self.base_dir,
                    source="form",
                    store_lookup=launcher.store_lookup(self.host.store),
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
        self.problems, self.checking, self.checked = problems, False, raw
        nodes: dict[str, FormNode] = {}
        for node in self.query(FormNode):
            nodes.setdefault(node.path, node)  # a box's own problems go on its outer frame
        found: dict[str, list[str]] = {}
        for p in problems:
            at = next(path for path in parents_of(p.path) if path in nodes)
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
        """The launcher's one launch path (as ``kdtui run``); this only presents it."""
        store = self.app.store
        try:  # the queue runner, or Slurm: a probe job the first time only
            executor = launcher.choose_executor(store, where)
            launch = launcher.prepare_launch(
                store, raw, executor, base_dir=self.base_dir, source="form"
            )
        except SpecError as exc:
            self.app.call_from_thread(self._show_check, raw, exc.problems)
            return
        except (StoreError, OSError, ValueError, launcher.ExecutorError) as exc:
            self.app.call_from_thread(self._launched, None, f"not launched: {exc}")
            return
        self.app.call_from_thread(self._keep, raw)
        for note in launch.notes():  # e.g. a name that names another configuration
            self.app.call_from_thread(self.app.notify, note, severity="warning", timeout=10)
        name, run_ids = str(launch.loaded.experiments[0].name), launch.run_ids
        self.app.call_from_thread(
            self._launched, run_ids, f"queued {plural(len(run_ids), 'run')}", name
        )

    def _launched(self, run_ids: list[str] | None, message: str, name: str = "") -> None:
        self.query_one("#launch", Button).disabled = False
        self.app.notify(message, severity="information" if run_ids else "error")
        if run_ids:
            self.post_message(StoreWritten())
            self.post_message(ShowRuns(name))  # the runs list, not a detail on top

    def _keep(self, raw: dict[str, Any]) -> None:
        self._kept = raw

    def has_edits(self) -> bool:
        """Whether the form holds edits not saved or launched (they would be lost)."""
        raw = self.form_value()
        return not (raw is None or self._kept is None or raw == self._kept)

    def unless_edited(self, question: str, then: Callable[[], None]) -> Prompt | None:
        """``then()`` at once, or after a yes when the form holds edits (``has_edits``);
        the question asked, if one was."""
        if not self.has_edits():
            then()
            return None
        note = "The form has edits that were not saved or launched (ctrl+s saves them)."
        question_screen = Prompt(question, [], note=note, risky=True)
        self.app.push_screen(question_screen, lambda values: values is not None and then())
        return question_screen

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
            experiment = launcher.run_experiment(self.host.store, self.host.store.read_spec(run_id))
        except (OSError, ValueError, KeyError, StoreError) as exc:
            self.app.call_from_thread(
                self.app.notify, f"cannot read {run_id}: {exc}", severity="error"
            )
            return
        experiment["seeds"] = [0, 1, 2]
        self.app.call_from_thread(self.load_experiment, experiment)
