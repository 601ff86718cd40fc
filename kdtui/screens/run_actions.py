"""What the run screens (the runs list, a run's detail) share: stop, resume, "more seeds"
and "edit as new" for the run they have selected. Launching goes only through the
launcher: the app is never the parent of a training process."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.binding import Binding

from kdtui import launcher
from kdtui.fmt import parse_ints, plural
from kdtui.needs import need_group
from kdtui.store import StoreError
from kdtui.tui.messages import EditRunAsNew, StoreWritten
from kdtui.tui.snapshot import Host
from kdtui.widgets import Field, Prompt

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


class RunActions:
    """Stop, resume, "more seeds" and "edit as new" (RUN_BINDINGS) for the run a screen
    has selected. A mixin for a LiveScreen, which provides ``host``; results come back as
    notifications, and a ``StoreWritten`` so that every screen shows them at once."""

    host: Host

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
        question = Prompt(
            f"Stop {run['run_id']}?", [], note=note, ok="Stop run", cancel="Keep running"
        )
        self.app.push_screen(question, done)

    def action_resume(self) -> None:
        if run := self.selected_run():
            self._resume(run["run_id"])

    def trained_run(self) -> dict[str, Any] | None:
        """The selected run, or for an outside result (notes, record) a kdtui-trained run of
        its group, whose spec can be trained again; None (and a word) when there is none."""
        run, snapshot = self.selected_run(), self.host.snapshot
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

    def action_edit(self) -> None:
        if run := self.trained_run():
            self.post_message(EditRunAsNew(run["run_id"]))

    def action_more_seeds(self) -> None:
        run, snapshot = self.trained_run(), self.host.snapshot
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
            stopped = launcher.stop_runs(self.host.store, [run_id])
        except StoreError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        message = f"stopping {run_id}" if stopped else f"{run_id} is not queued or running"
        self.app.call_from_thread(self.app.notify, message)
        self.post_message(StoreWritten())

    @work(thread=True, group="store-write")
    def _resume(self, run_id: str) -> None:
        try:
            again = launcher.requeue(self.host.store, [run_id])  # and hands them on to start
        except StoreError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        message = f"resuming {run_id}" if again else "only crashed, failed or cancelled runs resume"
        self.app.call_from_thread(self.app.notify, message)
        self.post_message(StoreWritten())

    @work(thread=True, group="store-write")
    def _more_seeds(self, run_id: str, seeds_text: str) -> None:
        from kdtui.spec import SpecError  # the spec's models: not at the app's start

        try:
            run_ids = launcher.more_seeds(self.host.store, run_id, parse_ints(seeds_text))
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
        self.post_message(StoreWritten())
