"""The composer's file actions: new, load, save (asking before it overwrites a file),
"edit as new" from a run, and the question asked before edits that were neither saved
nor launched would be lost.

A part of ``ComposeScreen`` (``kdtui.screens.compose``), which holds the file being
edited and its last check; files are read and written in workers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.widgets import Button

from kdtui import launcher
from kdtui.fmt import plural
from kdtui.screens.compose_entries import TEMPLATE, EntryActions
from kdtui.screens.compose_file import DEFAULTS, SpecDoc, dumps, fresh_name
from kdtui.spec import Problem, SpecError, read_spec_file
from kdtui.store import StoreError
from kdtui.widgets import Field, Prompt


class FileActions(EntryActions):
    """Load, save, new and "edit as new", each keeping the edits unless told otherwise."""

    base_dir: Path
    problems: list[Problem] | None
    _kept: Any  # the file as last loaded, saved or launched (None: the next check's value)
    _by_entry: dict[int | None, list[Problem]]

    def _keep(self, raw: Any) -> None:
        self._kept = raw

    def has_edits(self) -> bool:
        """Whether the file holds edits not saved or launched (they would be lost)."""
        raw = self.file_value()
        return not (raw is None or self._kept is None or raw == self._kept)

    def unless_edited(self, question: str, then: Callable[[], None]) -> Prompt | None:
        """``then()`` at once, or after a yes when the form holds edits (``has_edits``);
        the question asked, if one was."""
        if not self.has_edits():
            then()
            return None
        note = "The file has edits that were not saved or launched (ctrl+s saves them)."
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
        """Replace the file with one experiment (the template, or a run's frozen spec)."""
        await self.load_doc(SpecDoc([experiment]), base_dir)

    async def load_doc(self, doc: SpecDoc, base_dir: Path | None = None) -> None:
        """Replace the file being edited with ``doc``; its first experiment in the form."""
        if base_dir is not None:
            self.base_dir = base_dir
        self.checking = True  # of another file, from now on
        self.doc, self.selected, self.counts = doc, 0, None
        self._kept, self._by_entry = None, {}
        await self._rebuild()

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        raw = self.file_value()
        if raw is None:
            return  # still mounting; the key press is a frame early
        name = self._selected_name() if self.selected != DEFAULTS else "study"
        default = str(self.doc.path or self.base_dir / f"{name or 'experiment'}.json")

        def done(values: dict[str, str] | None) -> None:
            if values and values["path"].strip():
                self._save(Path(values["path"].strip()).expanduser(), raw)

        self.app.push_screen(Prompt("Save spec as", [Field("path", "file", default)]), done)

    @work(thread=True, group="compose-files")
    def _save(self, path: Path, raw: Any, overwrite: bool = False) -> None:
        if path.exists() and not overwrite:
            self.app.call_from_thread(self._ask_overwrite, path, raw, _experiment_names(path))
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dumps(raw), encoding="utf-8")
        except OSError as exc:
            self.app.call_from_thread(self.app.notify, f"not saved: {exc}", severity="error")
            return
        note = "" if self.problems == [] else " (it still has problems)"
        self.app.call_from_thread(self._saved, path, raw)
        self.app.call_from_thread(self.app.notify, f"saved {path}{note}")

    def _saved(self, path: Path, raw: Any) -> None:
        self._kept = raw
        self.doc.path = path
        self.base_dir = path.parent.resolve()

    def _ask_overwrite(self, path: Path, raw: Any, names: list[str]) -> None:
        held = f"It holds {plural(len(names), 'experiment')}: {', '.join(names)}. " if names else ""
        n = len(self.doc.experiments)
        note = f"{held}Saving replaces the whole file with the {plural(n, 'experiment')} here."
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
                note="The whole file: its defaults and experiments, grids kept.",
            ),
            done,
        )

    @work(thread=True, group="compose-files")
    def _load(self, path: Path) -> None:
        try:
            doc = SpecDoc.from_raw(read_spec_file(path), path)
        except SpecError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        except ValueError as exc:
            self.app.call_from_thread(self.app.notify, f"{path}: {exc}", severity="error")
            return
        self.app.call_from_thread(self.call_later, self.load_doc, doc, path.parent.resolve())

    def edit_run(self, run_id: str) -> None:
        """A run's experiment in the form ("edit as new"), asking before edits are lost."""
        self.unless_edited(f"Edit {run_id} as new, over your edits?", lambda: self.load_run(run_id))

    @work(thread=True, group="compose-files")
    def load_run(self, run_id: str) -> None:
        """Edit a run's frozen experiment as a new one (teachers stay as they were), under
        a name no group of the store has: launched, it is a new group, never one more
        seed of the old one by accident."""
        store = self.host.store
        try:
            experiment = launcher.run_experiment(store, store.read_spec(run_id))
            taken = {str(r.get("name")) for r in store.runs()}
        except (OSError, ValueError, KeyError, StoreError) as exc:
            self.app.call_from_thread(
                self.app.notify, f"cannot read {run_id}: {exc}", severity="error"
            )
            return
        experiment["seeds"] = [0, 1, 2]
        old = str(experiment.get("name") or run_id)
        experiment["name"] = fresh_name(old, taken | {old})
        self.app.call_from_thread(self.load_experiment, experiment)
        self.app.call_from_thread(
            self.app.notify, f"a copy of {old}, named {experiment['name']}: rename it to suit"
        )


def _experiment_names(path: Path) -> list[str]:
    """The experiments a spec file holds, by name (none when it is no spec)."""
    try:
        doc = SpecDoc.from_raw(read_spec_file(path))
    except (SpecError, ValueError):
        return []
    return [n or "?" for n in doc.names()]
