"""Screens of the kdtui app, one module each, and what they share.

Every screen reads the store through the app's snapshot (``KdApp.snapshot``, refreshed by
one background poll) and writes through workers, so no screen ever blocks on the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

from kdtui import launcher
from kdtui.clikit import plural
from kdtui.spec import SpecError
from kdtui.store import StoreError, need_group

if TYPE_CHECKING:
    from kdtui.app import KdApp, Snapshot
    from kdtui.widgets import Grid


class LiveScreen(Screen):
    """A screen that follows the app's snapshot of the store. Hidden screens skip the
    work and catch up when they are shown again."""

    app: KdApp
    _stale = False

    def on_mount(self) -> None:
        self.watch(self.app, "snapshot", self._snapshot_changed, init=True)

    def _snapshot_changed(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            return
        if self.is_current:
            self._stale = False
            self.show_snapshot(snapshot)
        else:
            self._stale = True

    def on_screen_resume(self) -> None:
        if self._stale and self.app.snapshot is not None:
            self._stale = False
            self.show_snapshot(self.app.snapshot)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """Bring the screen up to date with the store."""
        raise NotImplementedError


RUN_BINDINGS = [
    Binding(
        "s",
        "stop",
        "Stop",
        tooltip="Cancel the run: a queued one at once, a running one after its batch.",
    ),
    Binding(
        "r",
        "resume",
        "Resume",
        tooltip="Queue a crashed, failed or cancelled run again; it continues from last.pt.",
    ),
    Binding(
        "m",
        "more_seeds",
        "More seeds",
        tooltip="Run this run's configuration again with new seeds (same group).",
    ),
    Binding("e", "edit", "Edit as new", tooltip="Open this run's experiment in the composer."),
]


class SortByColumn:
    """Sort state the grid screens share: ``O`` reverses the order; a click on a column's
    header sorts by it, a second click reverses. The screen redraws in ``sort_changed``.
    (A plain mixin: Textual finds ``on_grid_header_clicked`` by name along the MRO.)"""

    sort_column: str
    sort_reverse: bool

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self.sort_changed()  # type: ignore[attr-defined]

    def on_grid_header_clicked(self, event: Grid.HeaderClicked) -> None:
        if event.column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = event.column, False
        self.sort_changed()  # type: ignore[attr-defined]


class RunActions:
    """Stop, resume, "more seeds" and "edit as new" (RUN_BINDINGS) for the run a screen
    has selected.
    Launching goes only through the launcher: the app is never the parent of a training
    process."""

    app: KdApp

    def selected_run(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def action_stop(self) -> None:
        """A queued run is cancelled at once; a running one, hours into training, only after
        a confirmation (enter), since students waiting for it fail with it."""
        run = self.selected_run()
        if run is None:
            return
        if run.get("status") != "running":
            self._stop(run["run_id"])
            return

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                self._stop(run["run_id"])

        note = "It ends as cancelled after its current batch; r resumes it from last.pt."
        self.app.push_screen(Prompt(f"Stop {run['run_id']}?", [], note=note), done)

    def action_resume(self) -> None:
        if run := self.selected_run():
            self._resume(run["run_id"])

    def trained_run(self) -> dict[str, Any] | None:
        """The selected run, or for an outside result (notes, record) a kdtui-trained run of
        its group, whose spec can be trained again; None (and a word) when there is none."""
        run, snapshot = self.selected_run(), self.app.snapshot
        if run is None or snapshot is None or run.get("source", "kdtui") == "kdtui":
            return run
        trained = [
            r
            for r in snapshot.runs
            if r.get("group_key") == run["group_key"] and r.get("source", "kdtui") == "kdtui"
        ]
        if not trained:
            self.app.notify(
                f"{run['name']} seed {run.get('seed')} is an outside result "
                f"({run.get('source')}): no spec to train from",
                severity="warning",
            )
        return trained[-1] if trained else None

    async def action_edit(self) -> None:
        if run := self.trained_run():
            await self.app.edit_run_spec(run["run_id"])

    def action_more_seeds(self) -> None:
        run, snapshot = self.trained_run(), self.app.snapshot
        if run is None or snapshot is None:
            return
        used = {r.get("seed", 0) for r in snapshot.runs if r.get("group_key") == run["group_key"]}
        start = max(used, default=-1) + 1
        suggestion = ", ".join(str(s) for s in range(start, start + 3))
        note = f"seeds so far: {', '.join(map(str, sorted(used)))}"
        # A same-seed student can only have the seeds its teachers have: offer those.
        teacher_seeds: set[Any] | None = None
        for need in run.get("needs") or []:
            if need.get("seed") is not None:
                have = {r.get("seed") for r in need_group({**need, "seed": None}, snapshot.runs)}
                teacher_seeds = have if teacher_seeds is None else teacher_seeds & have
        if teacher_seeds is not None:
            free = sorted(teacher_seeds - used)
            suggestion = ", ".join(map(str, free[:3]))
            note += f"; its same-seed teacher has {', '.join(map(str, sorted(teacher_seeds)))}"

        def check(values: dict[str, str]) -> str | None:
            seeds = parse_ints(values["seeds"])
            if not seeds:
                return "give at least one seed"
            if bad := [s for s in seeds if not isinstance(s, int) or s < 0]:
                return f"not a seed: {', '.join(map(str, bad))} (seeds are whole numbers ≥ 0)"
            if again := [s for s in seeds if s in used]:
                return f"the group already has seed(s) {again}"
            if teacher_seeds is not None and (
                lacking := [s for s in seeds if s not in teacher_seeds]
            ):
                return f"the same-seed teacher has no seed(s) {lacking}: train them first"
            if len(set(map(str, seeds))) < len(seeds):
                return "a seed is given twice"
            return None  # anything else wrong is the validator's to say

        def done(values: dict[str, str] | None) -> None:
            if values:
                self._more_seeds(run["run_id"], values["seeds"])

        self.app.push_screen(
            Prompt(
                f"More seeds for {run['name']}",
                [Field("seeds", "seeds", suggestion)],
                note=note,
                check=check,
            ),
            done,
        )

    @work(thread=True, group="store-write")
    def _stop(self, run_id: str) -> None:
        try:
            stopped = launcher.stop_runs(self.app.store, [run_id])
        except StoreError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        message = f"stopping {run_id}" if stopped else f"{run_id} is not queued or running"
        self.app.call_from_thread(self.app.notify, message)
        self.app.call_from_thread(self.app.poll)

    @work(thread=True, group="store-write")
    def _resume(self, run_id: str) -> None:
        try:
            again = launcher.requeue(self.app.store, [run_id])  # and hands them on to start
        except StoreError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        message = f"resuming {run_id}" if again else "only crashed, failed or cancelled runs resume"
        self.app.call_from_thread(self.app.notify, message)
        self.app.call_from_thread(self.app.poll)

    @work(thread=True, group="store-write")
    def _more_seeds(self, run_id: str, seeds_text: str) -> None:
        try:
            run_ids = launcher.more_seeds(self.app.store, run_id, parse_ints(seeds_text))
        except SpecError as exc:
            problems = "\n".join(map(str, exc.problems))
            self.app.call_from_thread(
                self.app.notify, problems, title="not queued", severity="error", timeout=10
            )
            return
        except (StoreError, OSError, ValueError) as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.app.notify, f"queued {plural(len(run_ids), 'more run')}")
        self.app.call_from_thread(self.app.poll)


def parse_ints(text: str) -> list[Any]:
    """``"0, 1 2"`` → ``[0, 1, 2]``; what is not a number is passed on as text, so the spec
    validator names the field and the bad value."""
    items = [t for t in text.replace(",", " ").split() if t]
    return [int(t) if t.lstrip("-").isdigit() else t for t in items]


@dataclass(frozen=True)
class Field:
    """One line of a Prompt."""

    key: str
    label: str
    value: str = ""
    placeholder: str = ""
    suggestions: Sequence[str] = ()


class Prompt(ModalScreen[dict[str, str] | None]):
    """A small form in a dialog: enter (or OK) returns {key: text}, escape returns None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    Prompt { align: center middle; }
    Prompt > Vertical {
        width: 70; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    Prompt .row { height: auto; }
    Prompt .row Label { width: 12; padding-top: 1; }
    Prompt .row Input { width: 1fr; }
    Prompt #note { color: $text-muted; }
    Prompt #error { color: $error; display: none; }
    Prompt #buttons { height: auto; align-horizontal: right; }
    Prompt Button { margin-left: 1; }
    """

    def __init__(
        self,
        title: str,
        fields: Sequence[Field],
        note: str = "",
        check: Callable[[dict[str, str]], str | None] | None = None,
        *,
        risky: bool = False,
    ) -> None:
        """``check`` returns what is wrong with the values, shown in the dialog, which then
        stays open with everything typed so far; None lets them through. A ``risky``
        confirmation (something is lost) starts on Cancel: a second enter must not do it."""
        super().__init__()
        self.prompt_title, self.fields, self.note, self.check = title, list(fields), note, check
        self.risky = risky

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.prompt_title
            for f in self.fields:
                with Horizontal(classes="row"):
                    yield Label(f.label)
                    suggester = (
                        SuggestFromList(f.suggestions, case_sensitive=False)
                        if f.suggestions
                        else None
                    )
                    yield Input(
                        f.value, placeholder=f.placeholder, id=f"field-{f.key}", suggester=suggester
                    )
            if self.note:
                yield Static(self.note, id="note")
            yield Static(id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("OK", id="ok", variant="primary")

    def on_mount(self) -> None:
        if not self.fields:  # a confirmation: enter confirms, unless something is lost
            self.query_one("#cancel" if self.risky else "#ok", Button).focus()

    def values(self) -> dict[str, str]:
        return {f.key: self.query_one(f"#field-{f.key}", Input).value for f in self.fields}

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        values = self.values()
        problem = self.check(values) if self.check else None
        if problem:
            error = self.query_one("#error", Static)
            error.update(f"✗ {problem}")
            error.display = True
            return
        self.dismiss(values)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
