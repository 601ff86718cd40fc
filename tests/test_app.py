"""The Textual app, driven headlessly with Pilot: live runs, compose and launch, results,
TODO, and the store misbehaving. Each test opens the app on a workspace in tmp_path."""

from __future__ import annotations

import fcntl
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_experiment
from rich.console import Console
from textual.widgets import Select, Static
from tuikit import (
    NOW,
    build_workspace,
    checked,
    grid_lines,
    hold_crash_detection,
    settle,
    until,
    write_index,
)

from kdtui import launcher
from kdtui.executors import local
from kdtui.screens import compose
from kdtui.screens.compose import ComposeScreen
from kdtui.screens.results import ResultsScreen
from kdtui.screens.run_detail import RunDetailScreen
from kdtui.screens.runs import RunsScreen
from kdtui.screens.todo import TodoScreen
from kdtui.spec import LossSpec, validate_spec
from kdtui.store import Store
from kdtui.tui.app import KdApp
from kdtui.tui.help import HelpScreen
from kdtui.tui.messages import ShowRuns
from kdtui.widgets import Grid, Prompt
from kdtui.widgets.form import FieldRow, FormNode, OptionalBox

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _no_crash_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    hold_crash_detection(monkeypatch)
    # The composer checks 20 ms after an edit instead of waiting for typing to pause: the
    # tests wait for the check itself (tuikit.checked), never for a time.
    monkeypatch.setattr(compose, "CHECK_DELAY_S", 0.02)


@pytest.fixture
def runner_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """ensure_runner is recorded, never started: the tests own no training processes."""
    calls: list[Path] = []
    monkeypatch.setattr(local, "ensure_runner", lambda store: calls.append(store.root))
    return calls


def make_app(root: Path) -> KdApp:
    return KdApp(root, clock=lambda: NOW, devices="cpu ×2", poll_s=0.05)


def grid(app: KdApp) -> Grid:
    return app.screen.query_one(Grid)


def row_of(app: KdApp, key: str) -> str:
    g = grid(app)
    return " ".join(g.cells[key]) if key in g.cells else ""


def one_run(store: Store, name: str = "live", seeds: tuple[int, ...] = (0,)) -> list[str]:
    """Queue a tiny experiment's runs, as ``kdtui run --detach`` would (no runner)."""
    loaded = validate_spec(tiny_experiment(name, seeds=list(seeds)))
    return launcher.enqueue(store, loaded)


# ---------------------------------------------------------------------- runs


async def test_run_turns_running_then_done_while_events_arrive(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    (run_id,) = one_run(store)
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "queued" in row_of(app, run_id), "the queued run")
        store.record_event(run_id, {"type": "start", "device": "cpu", "epochs": 2})
        await until(pilot, lambda: row_of(app, run_id).startswith("running"), "running")
        store.record_event(run_id, {"type": "epoch", "epoch": 1, "acc": 55.0, "train_loss": 1})
        await until(pilot, lambda: "1/2 55.00 55.00 cpu" in row_of(app, run_id), "epoch 1")
        assert "1 running · 0 queued" in app.sub_title
        store.record_event(run_id, {"type": "epoch", "epoch": 2, "acc": 50.0, "train_loss": 1})
        store.record_event(run_id, {"type": "end", "status": "done"})
        await until(pilot, lambda: row_of(app, run_id).startswith("done"), "done")
        assert "2/2 50.00 55.00" in row_of(app, run_id)
        assert "0 running · 0 queued" in app.sub_title


async def test_runs_filter_sort_and_cursor_stays_on_its_run(tmp_path: Path) -> None:
    build_workspace(tmp_path / "ws")
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(grid(app).order) == 11, "11 runs")
        assert grid(app).order[0] == "two-teachers-s1"  # newest first
        await pilot.press("down", "down", "down")
        assert grid(app).cursor_key == "kd-gaf-to-signal-s1"
        await pilot.click(Grid, offset=(2, 0))  # a click on "status": queued, running, done...
        assert grid(app).order[:3] == ["two-teachers-s0", "two-teachers-s1", "kd-gaf-to-signal-s2"]
        assert grid(app).cursor_key == "kd-gaf-to-signal-s1"  # the cursor followed its run
        await pilot.press("slash", *"teacher-s", "enter")
        assert [k.rsplit("-", 1)[0] for k in grid(app).order] == ["gaf-teacher"] * 3
        await pilot.press("escape", "f", "f", "f")  # cleared; then status: running, done
        assert set(grid(app).cells[k][0] for k in grid(app).order) == {"done"}
        assert "7 of 11 runs" in str(app.screen.query_one("#summary").render())


async def test_new_runs_do_not_move_the_cursor(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    base = {"status": "done", "name": "g", "group_key": "k", "epochs": 1, "epoch": 1}
    write_index(
        root, [base | {"run_id": f"r{i:03d}", "seed": i, "created": NOW - i} for i in range(200)]
    )
    app = make_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(grid(app).order) == 200, "200 runs")
        await pilot.press(*["pagedown"] * 3, "down")
        g = grid(app)
        key, line = g.cursor_key, g.cursor - g.scroll_y
        store = Store(root)
        store.add_runs(
            [base | {"run_id": "new", "seed": 999, "created": NOW + 1}],
            {"new": {"run_id": "new"}},
        )
        await until(pilot, lambda: "new" in g.order, "the new run")
        assert g.order[0] == "new"
        assert g.cursor_key == key and g.cursor - g.scroll_y == line


async def test_stop_resume_and_more_seeds(tmp_path: Path, runner_calls: list[Path]) -> None:
    store = Store(tmp_path / "ws")
    (run_id,) = one_run(store, "grp")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: run_id in grid(app).cells, "the run")
        await pilot.press("s")
        await until(pilot, lambda: row_of(app, run_id).startswith("cancelled"), "cancelled")
        await pilot.press("enter")  # its detail draws "cancelled" in the theme's muted tone
        detail = await until(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen, "detail"
        )
        assert str(detail.query_one("#summary").render()).startswith("cancelled")
        await pilot.press("escape")
        await pilot.press("r")
        await until(pilot, lambda: row_of(app, run_id).startswith("queued"), "queued again")
        await until(pilot, lambda: runner_calls == [store.root], "the runner asked for")
        await pilot.press("m")
        prompt = await until(pilot, lambda: isinstance(app.screen, Prompt) and app.screen, "prompt")
        assert prompt.values() == {"seeds": "1, 2, 3"}
        prompt.query_one("#field-seeds").value = "0, 1"
        await pilot.press("enter")  # seed 0 is there already: said in the dialog
        await until(pilot, lambda: prompt.query_one("#error").display, "the dialog's error")
        prompt.query_one("#field-seeds").value = "5, 5"
        await pilot.press("enter")
        await until(pilot, lambda: "twice" in str(prompt.query_one("#error").render()), "twice")
        for typed, said in (("a", "not a seed: a"), ("", "give at least one seed")):
            prompt.query_one("#field-seeds").value = typed
            await pilot.press("enter")  # said in the dialog, which stays open
            await until(pilot, lambda s=said: s in str(prompt.query_one("#error").render()), said)
        prompt.query_one("#field-seeds").value = "1, 2, 3"
        await pilot.press("enter")
        await until(pilot, lambda: len(grid(app).order) == 4, "three more runs")
        await until(pilot, lambda: len(runner_calls) == 2, "the runner asked for again")
    runs = store.runs()
    assert sorted(r["seed"] for r in runs) == [0, 1, 2, 3]
    assert {r["group_key"] for r in runs} == {runs[0]["group_key"]}  # the same group


async def test_more_seeds_of_a_same_seed_student_offers_its_teachers_seeds(
    tmp_path: Path, runner_calls: list[Path]
) -> None:
    store = Store(tmp_path / "ws")
    kd = {"loss": {"kd": {}}, "teachers": [{"experiment": "t", "pick": "same-seed"}]}
    loaded = validate_spec(
        [tiny_experiment("t", seeds=[0, 1, 2, 3]), tiny_experiment("stu", seeds=[0], **kd)]
    )
    *_, student = launcher.enqueue(store, loaded)
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: student in grid(app).cells, "the student")
        await pilot.press("slash", *"stu", "enter", "m")
        prompt = await until(pilot, lambda: isinstance(app.screen, Prompt) and app.screen, "prompt")
        assert prompt.values() == {"seeds": "1, 2, 3"}  # not 4: the teacher has no seed 4
        assert "same-seed teacher has 0, 1, 2, 3" in str(prompt.query_one("#note").render())
        prompt.query_one("#field-seeds").value = "1, 4"
        await pilot.press("enter")
        await until(pilot, lambda: "no seed(s) [4]" in str(prompt.query_one("#error").render()),
                    "the teacher's missing seed")  # fmt: skip


async def test_outside_results_repeat_their_groups_trained_spec_or_say_why_not(
    tmp_path: Path, runner_calls: list[Path]
) -> None:
    from kdtui.notes import record

    store = Store(tmp_path / "ws")
    one_run(store, "grp")
    joined, _ = record(store, "grp", 50.0, seed=5)  # beside a trained run of its group
    alone, _ = record(store, "paper", 71.0)  # no spec anywhere
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: alone["run_id"] in grid(app).cells, "the runs")
        await pilot.press("slash", *"paper", "enter", "m")
        await until(
            pilot,
            lambda: any("outside result (record)" in n.message for n in app._notifications),
            "the reason",
        )
        assert not isinstance(app.screen, Prompt)
        await pilot.press("enter")  # its detail says what it is, and why there is no log
        detail = await until(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen, "detail"
        )
        assert "outside result (record)" in str(detail.query_one("#summary").render())
        log = detail.query_one("Log")
        await until(pilot, lambda: "(no log: an outside result" in "".join(log.lines), "no log")
        await pilot.press("escape")
        await pilot.press("slash", *["backspace"] * 5, *"record-grp", "enter", "m")
        prompt = await until(pilot, lambda: isinstance(app.screen, Prompt) and app.screen, "prompt")
        assert "More seeds for grp" in prompt.prompt_title  # from the trained run's spec
        prompt.query_one("#field-seeds").value = "1"
        await pilot.press("enter")
        await until(pilot, lambda: len(store.runs()) == 4, "the new run")
    new = [r for r in store.runs() if r["seed"] == 1]
    assert new[0]["group_key"] == joined["group_key"] and new[0]["epochs"] == 2


async def test_stopping_a_running_run_asks_first(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    (run_id,) = one_run(store, "grp")
    store.record_event(run_id, {"type": "start", "pid": 1, "host": "elsewhere", "epochs": 3})
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_of(app, run_id).startswith("running"), "the run")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, Prompt), "the question")
        await pilot.press("escape")  # no: nothing asked of the run
        await settle(pilot)
        assert not store.get(run_id).get("cancel_requested")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, Prompt), "the question")
        await pilot.press("enter")
        await until(pilot, lambda: store.get(run_id).get("cancel_requested"), "the stop asked")


async def test_run_detail_follows_the_log_and_links_teachers(tmp_path: Path) -> None:
    store = build_workspace(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(grid(app).order) == 11, "runs")
        app.screen.query_one("#filter").value = "kd-gaf-to-signal-s2"
        await until(pilot, lambda: grid(app).order == ["kd-gaf-to-signal-s2"], "the filter")
        await pilot.press("enter")
        detail = await until(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen, "detail"
        )
        log = detail.query_one("Log")
        await until(pilot, lambda: "epoch 12: test acc" in "\n".join(log.lines), "the log tail")
        with open(store.run_dir("kd-gaf-to-signal-s2") / "stdout.log", "a") as fh:
            fh.write("[12:02:10] epoch 13: test acc 84.00%\n")
        await until(pilot, lambda: "epoch 13: test acc 84.00%" in log.lines[-1], "a new log line")
        summary = str(detail.query_one("#summary").render())
        assert "running" in summary and "epoch 12/30" in summary
        assert "CE+KD(T=4,w=0.7)" in summary
        await pilot.press("j")
        spec = detail.query_one("#spec-json", Static).content.plain
        assert '"T": 4' in spec and '"seeds": [2]' in spec
        button = detail.query_one("#teachers Button")
        assert "gaf-teacher-s2" in str(button.label)
        await pilot.click(button)
        teacher = await until(
            pilot,
            lambda: (
                isinstance(app.screen, RunDetailScreen) and app.screen is not detail and app.screen
            ),
            "the teacher's run",
        )
        assert teacher.run_id == "gaf-teacher-s2"
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, RunsScreen)


async def test_failed_run_shows_its_reason(tmp_path: Path) -> None:
    store = build_workspace(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(grid(app).order) == 11, "runs")
        app.open_run("signal-student-s2")
        error = await until(
            pilot,
            lambda: isinstance(app.screen, RunDetailScreen) and app.screen.query_one("#error"),
            "detail",
        )
        await until(pilot, lambda: error.display, "the error line")
        assert "failed: diverged at epoch 4" in str(error.render())


async def test_a_students_teacher_line_follows_its_status(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    spec = validate_spec(
        [
            tiny_experiment("t", seeds=[0]),
            tiny_experiment("s", seeds=[0], teachers=[{"experiment": "t"}], loss={"kd": {}}),
        ]
    )
    _, student = launcher.enqueue(store, spec)
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: student in grid(app).cells, "the student")
        app.open_run(student)
        box = await until(
            pilot,
            lambda: isinstance(app.screen, RunDetailScreen) and app.screen.query_one("#teachers"),
            "detail",
        )

        def line() -> str:
            return " ".join(str(w.render()) for w in box.query(Static))

        await until(pilot, lambda: "waits for teacher t seed 0" in line(), "waiting")
        store.record_event(student, {"type": "error", "message": "teacher 't' seed 0 failed"})
        await until(pilot, lambda: line() == "teacher t seed 0", "no longer waiting")


# ---------------------------------------------------------------------- compose
# (files, studies, save and load, edit as new: tests/test_app_compose.py)


async def wait_checked(pilot: Any, screen: ComposeScreen) -> list[Any]:
    return await checked(pilot, screen)


def field(screen: ComposeScreen, path: str) -> Any:
    return next((n for n in screen.query(FormNode) if n.path == path), None)


async def test_compose_validates_as_you_type_and_launches(
    tmp_path: Path, runner_calls: list[Path]
) -> None:
    store = build_workspace(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(grid(app).order) == 11, "runs")
        await pilot.press("enter")  # a run's detail left open on the runs stack
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen), "a run's detail")
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        await wait_checked(pilot, screen)
        assert screen.problems == []
        # Every field of LossSpec has an editor: new loss terms appear without edits.
        paths = {n.path for n in screen.query(FormNode)}
        assert {f"loss.{name}" for name in LossSpec.model_fields} <= paths
        epochs = field(screen, "epochs")
        assert isinstance(epochs, FieldRow)
        epochs.editor.focus()
        await pilot.press("0")
        await until(pilot, lambda: screen.problems, "a problem")
        assert epochs.has_class("-invalid")
        assert "must be >= 1" in str(epochs.query_one(".problems").render())
        assert screen.query_one("#launch").disabled
        await pilot.press("ctrl+r")  # refused while invalid
        await pilot.press("backspace", *"3")
        name = field(screen, "name")
        assert isinstance(name, FieldRow)
        name.editor.value = "kd-from-store"
        # The teacher's data: another dataset, whose settings start folded at their defaults.
        data = field(screen, "data")
        data.query_one(Select).value = "basicmotions"
        unfold = await until(
            pilot,
            lambda: (
                "channels" in str(data.query_one(".unfold").label) and data.query_one(".unfold")
            ),
            "basicmotions",
        )
        unfold.focus()
        await pilot.press("enter")
        channels = await until(pilot, lambda: field(screen, "data.channels"), "the channels field")
        assert isinstance(channels, FieldRow)
        channels.editor.value = "0, 1, 2"
        # A teacher from the store's finished groups, and the KD term it needs.
        screen.query_one("ListBox #add").focus()  # focus scrolls the form to it
        await pilot.press("enter")
        await until(pilot, lambda: screen.query("FieldRow"), "the teacher form")
        teacher = field(screen, "teachers[0].experiment")
        assert isinstance(teacher, FieldRow)
        assert teacher.editor._legal_values >= {"gaf-teacher", "signal-student"}
        teacher.editor.value = "gaf-teacher"
        teachers = field(screen, "teachers")
        await until(pilot, lambda: teachers.has_class("-invalid"), "the teachers' problem")
        assert "no loss term uses them" in str(teachers.query_one(".problems").render())
        kd = field(screen, "loss.kd")
        assert isinstance(kd, OptionalBox)
        kd.query_one("Checkbox").focus()
        await pilot.press("space")
        await until(pilot, lambda: screen.problems == [], "a valid spec")
        assert "3 runs, one per seed" in str(screen.query_one("#status").render())
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen), "back on the runs list")
        await until(
            pilot, lambda: app.screen.query_one("#filter").value == "kd-from-store", "filter"
        )
    new = [r for r in store.runs() if r["name"] == "kd-from-store"]
    assert sorted(r["seed"] for r in new) == [0, 1, 2]
    assert {r["status"] for r in new} == {"queued"}
    assert new[0]["needs"][0]["name"] == "gaf-teacher"
    assert store.read_spec(new[0]["run_id"])["experiment"]["epochs"] == 3
    assert runner_calls == [store.root]


async def test_compose_launches_on_slurm_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kdtui.executors.slurm import SlurmExecutor

    started: list[str] = []
    monkeypatch.setattr(SlurmExecutor, "start", lambda self, store, ids: started.extend(ids))

    def no_sbatch(self: SlurmExecutor, store: Store, log: Any) -> None:
        raise launcher.ExecutorError("sbatch is not on PATH: run kdtui on a Slurm login node")

    monkeypatch.setattr(SlurmExecutor, "check", no_sbatch)
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert await wait_checked(pilot, screen) == []
        screen.query_one("#executor").value = "slurm"
        await pilot.press("ctrl+r")
        await until(
            pilot,
            lambda: any("not launched: sbatch is not on PATH" in n.message for n in app._notifications),
            "the reason",
        )  # fmt: skip
        assert not Store(tmp_path / "ws").index_path.exists()  # nothing queued
        monkeypatch.setattr(SlurmExecutor, "check", lambda self, store, log: None)
        await until(pilot, lambda: not screen.query_one("#launch").disabled, "launch again")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: len(started) == 3, "three Slurm runs")
    runs = Store(tmp_path / "ws").runs()
    assert {r["executor"] for r in runs} == {"slurm"} and sorted(started) == sorted(
        r["run_id"] for r in runs
    )


async def test_new_asks_before_it_drops_edits_and_the_preview_follows_a_resize(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        await wait_checked(pilot, screen)
        await pilot.press("ctrl+n")  # nothing edited: no question
        await settle(pilot)
        assert app.screen is screen
        field(screen, "name").editor.value = "mine"
        await until(pilot, lambda: (screen.form_value() or {}).get("name") == "mine", "edited")
        await wait_checked(pilot, screen)
        await pilot.resize_terminal(140, 40)  # the preview appears, showing the edit
        await until(pilot, lambda: '"mine"' in str(screen.query_one("#json").render()), "preview")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: isinstance(app.screen, Prompt), "the question")
        await pilot.press("escape")  # no: the edit stays
        await settle(pilot)
        assert screen.form_value()["name"] == "mine"
        await pilot.press("escape", "q")  # quitting asks too; enter (on Cancel) stays
        ask = await until(pilot, lambda: isinstance(app.screen, Prompt) and app.screen, "quit?")
        assert ask.prompt_title == "Quit, dropping the composer's edits?"
        await pilot.press("enter")
        await settle(pilot)
        assert app.is_running and screen.form_value()["name"] == "mine"
        await pilot.press("ctrl+n")
        ask = await until(pilot, lambda: isinstance(app.screen, Prompt) and app.screen, "again")
        await pilot.click("#ok")  # yes, start again
        await until(
            pilot, lambda: (screen.form_value() or {}).get("name") == "my-experiment", "template"
        )
        await wait_checked(pilot, screen)
        await pilot.press("escape", "q")  # nothing to lose now: gone at once
        await until(pilot, lambda: not app.is_running, "quit")


# ---------------------------------------------------------------------- results


async def test_results_toggle_best_last_select_and_export(tmp_path: Path) -> None:
    store = build_workspace(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        assert isinstance(app.screen, ResultsScreen)
        await until(pilot, lambda: len(grid(app).order) == 4, "4 groups")
        rows = dict(
            zip(
                [app.screen._shown[k].name for k in grid(app).order],
                grid_lines(grid(app)),
                strict=True,
            )
        )
        assert "86.90 ± 1.74" in rows["gaf-teacher"]
        assert "85.56 ± 0.52*" in rows["kd-gaf-to-signal"]  # the 2 seeds finished so far
        assert "…" in rows["kd-gaf-to-signal"] and "✗" in rows["signal-student"]
        assert "best mean ± std" in grid(app).labels
        await pilot.press("b")
        rows = grid_lines(grid(app))
        assert "85.55 ± 2.68" in rows[0] and "last mean ± std" in grid(app).labels
        await pilot.press("b", "space")  # best again; select the first group
        await pilot.press("x")
        export = await until(
            pilot, lambda: list(store.root.glob("results-*.md")), "the export file"
        )
        await pilot.press("enter")  # from the group to its runs
        await until(pilot, lambda: isinstance(app.screen, RunsScreen), "the runs")
        await until(pilot, lambda: len(grid(app).order) == 3, "the group's runs")
        assert {k.rsplit("-", 1)[0] for k in grid(app).order} == {"gaf-teacher"}
    text = export[0].read_text()
    assert "| gaf-teacher |" in text and "86.90 ± 1.74" in text and "signal-student" not in text
    assert app.clipboard == text


# ---------------------------------------------------------------------- todo


async def test_linked_todo_ticks_itself_when_its_runs_finish(tmp_path: Path) -> None:
    store = build_workspace(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        assert isinstance(app.screen, TodoScreen)
        await until(pilot, lambda: len(grid(app).order) == 3, "3 items")
        lines = grid_lines(grid(app))
        assert lines[0].startswith("✓ GAF teacher") and lines[0].endswith("3/3")
        assert lines[1].startswith("☐ KD GAF → signal") and lines[1].endswith("2/3")
        store.record_event("kd-gaf-to-signal-s2", {"type": "end", "status": "done"})
        await until(pilot, lambda: grid_lines(grid(app))[1].startswith("✓"), "the tick")
        assert grid_lines(grid(app))[1].endswith("3/3")


async def test_todo_add_edit_reorder_tick_delete(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", "a")
        prompt = await until(
            pilot, lambda: isinstance(app.screen, Prompt) and app.screen, "add prompt"
        )
        prompt.query_one("#field-text").value = "first"
        await pilot.press("enter", "a")
        prompt = await until(
            pilot, lambda: isinstance(app.screen, Prompt) and app.screen, "add prompt"
        )
        prompt.query_one("#field-text").value = "second"
        prompt.query_one("#field-group").value = "gaf-teacher"
        prompt.query_one("#field-target").value = "abc"
        await pilot.press("enter")  # refused in the dialog, which keeps what was typed
        await until(pilot, lambda: prompt.query_one("#error").display, "the dialog's error")
        assert "whole number" in str(prompt.query_one("#error").render())
        assert app.screen is prompt and prompt.values()["text"] == "second"
        prompt.query_one("#field-target").value = "3"
        await pilot.press("enter")
        await until(pilot, lambda: len(grid(app).order) == 2, "two items")
        assert grid_lines(grid(app))[1] == "☐ second gaf-teacher 0/3"
        # an empty workspace has no such runs: linked all the same, with a word (a typo?)
        assert any("no runs named gaf-teacher" in n.message for n in app._notifications)
        await pilot.press("down", "K")
        await until(pilot, lambda: grid_lines(grid(app))[0].startswith("☐ second"), "moved up")
        assert grid(app).cursor == 0  # the cursor moved with it
        await pilot.press("down", "space")
        await until(pilot, lambda: grid_lines(grid(app))[1] == "✓ first  ", "ticked")
        await pilot.press("e")
        prompt = await until(
            pilot, lambda: isinstance(app.screen, Prompt) and app.screen, "edit prompt"
        )
        assert prompt.values()["text"] == "first"
        prompt.query_one("#field-text").value = "first, edited"
        await pilot.press("enter")
        await until(pilot, lambda: "first, edited" in grid_lines(grid(app))[1], "edited")
        await pilot.press("d", "enter")
        await until(pilot, lambda: len(grid(app).order) == 1, "deleted")
    assert [t["text"] for t in store.todos()] == ["second"]


# ---------------------------------------------------------------------- the app


async def test_a_locked_store_delays_the_refresh_but_never_crashes(tmp_path: Path) -> None:
    store = build_workspace(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(grid(app).order) == 11, "runs")
        app.store.lock_timeout_s = 0.1
        with open(store.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a writer holds the lock...
            store.index_path.write_text("{ torn")  # ...and readers meet a broken index
            await until(pilot, lambda: "store busy" in app.sub_title, "the busy note")
            await pilot.press("down", "3", "1")  # still answering keys
            assert isinstance(app.screen, RunsScreen)
            fcntl.flock(lock, fcntl.LOCK_UN)
        app.store.lock_timeout_s = 3.0
        await until(pilot, lambda: "store busy" not in app.sub_title, "recovery")
        assert len(grid(app).order) == 11  # rebuilt from the run folders
        notices = lambda: [n.message for n in app._notifications]  # noqa: E731
        await until(pilot, lambda: any("index was unreadable" in m for m in notices()), "notice")


async def test_help_screen_and_command_palette(tmp_path: Path) -> None:
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        out = Console(file=io.StringIO(), width=76)
        out.print(app.screen.query_one(Static).content)
        text = " ".join(out.file.getvalue().split())  # wrapped lines joined again
        assert "again with new seeds" in text and "at the last one" in text and "per seed" in text
        assert "escape, backspace Back" in text  # a long key name keeps its space
        assert "click a column title" in text
        await pilot.press("escape")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Go to results" in titles and "Runs: More seeds" in titles
        assert "No runs yet".lower() in str(app.screen.query_one("#summary").render()).lower()
        await pilot.press("q")
    assert app.return_code == 0


def test_the_tui_never_imports_torch() -> None:
    code = (
        "import sys, kdtui.tui.app, kdtui.screens.runs, kdtui.screens.run_detail, "
        "kdtui.screens.compose, kdtui.screens.results, kdtui.screens.todo, kdtui.todo; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


async def test_a_check_landing_mid_rebuild_is_dropped(tmp_path: Path) -> None:
    """A check result can arrive while a loaded spec is still mounting (its unions compose
    their variant a frame later): it must be dropped, and a fresh check must follow."""
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        await wait_checked(pilot, screen)
        experiment = tiny_experiment("reloaded")
        await screen.query_one("#root").remove()  # load_experiment's first step: half-built
        assert screen.form_value() is None
        screen._show_check({}, [])  # a stale result arriving now is ignored, not a crash
        screen._check_form()  # and a check timer firing now waits instead of checking
        await screen.load_experiment(experiment)
        await until(pilot, lambda: (screen.form_value() or {}).get("name") == "reloaded", "load")
        assert await wait_checked(pilot, screen) == []


async def test_a_problem_of_the_whole_spec_is_shown_once(tmp_path: Path) -> None:
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        await wait_checked(pilot, screen)
        await screen.load_experiment({**tiny_experiment("t"), "foo": 1})
        await until(pilot, lambda: screen.problems, "the problem")
        shown = [
            str(w.render()) for w in screen.query(Static) if "unknown field" in str(w.render())
        ]
        assert shown == ["✗ foo: unknown field", "✗ 1 problem: foo: unknown field"]


# ---------------------------------------------------------------------- first-week papercuts


async def test_the_stop_question_says_what_each_button_does(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws")
    (run_id,) = one_run(store, "grp")
    store.record_event(run_id, {"type": "start", "pid": 1, "host": "elsewhere", "epochs": 3})
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_of(app, run_id).startswith("running"), "the run")
        await pilot.press("s")
        ask = await until(pilot, lambda: isinstance(app.screen, Prompt) and app.screen, "ask")
        labels = [str(b.label) for b in ask.query("Button")]
        assert labels == ["Keep running", "Stop run"]
        await pilot.click("#cancel")  # "Keep running": nothing asked of the run
        await settle(pilot)
        assert not isinstance(app.screen, Prompt)
        assert not store.get(run_id).get("cancel_requested")


@pytest.mark.parametrize("key", ["down", "up"])
async def test_down_or_up_leave_the_runs_filter_for_the_table(tmp_path: Path, key: str) -> None:
    store = Store(tmp_path / "ws")
    (kept,) = one_run(store, "kept")
    (run_id,) = one_run(store, "grp")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(grid(app).order) == 2, "the runs")
        await pilot.press("slash", *"grp", key, "s")  # s: stop, not a letter of the filter
        assert app.screen.query_one("#filter").value == "grp"
        assert app.focused is grid(app)
        await until(pilot, lambda: row_of(app, run_id).startswith("cancelled"), "stopped")
        assert store.get(kept)["status"] == "queued"


async def test_the_runs_filter_finds_a_group_by_its_name(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    base = {"status": "done", "group_key": "k", "epochs": 1, "epoch": 1, "created": NOW}
    # run ids need not hold the name (cut at 80 characters, or written by other tools)
    write_index(
        root, [base | {"run_id": "r1", "name": "kd-at"}, base | {"run_id": "r2", "name": "x"}]
    )
    app = make_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(grid(app).order) == 2, "the runs")
        app.post_message(ShowRuns("kd-at"))  # as from a results row
        await until(pilot, lambda: grid(app).order == ["r1"], "the group's run")


async def test_ctrl_c_asks_before_quitting(tmp_path: Path) -> None:
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", "ctrl+c")  # from a text field too
        ask = await until(pilot, lambda: isinstance(app.screen, Prompt) and app.screen, "ask")
        assert ask.prompt_title == "Quit kdtui?"
        assert [str(b.label) for b in ask.query("Button")] == ["Stay", "Quit"]
        await pilot.press("escape")  # stay
        await settle(pilot)
        assert app.is_running and not isinstance(app.screen, Prompt)
        await pilot.press("ctrl+c")
        await until(pilot, lambda: isinstance(app.screen, Prompt), "asked again")
        await pilot.press("enter")  # yes: Quit has the focus (nothing is lost)
        await until(pilot, lambda: not app.is_running, "quit")
    assert app.return_code == 0


async def test_ctrl_c_twice_quits_unless_composer_edits_are_at_stake(tmp_path: Path) -> None:
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        await wait_checked(pilot, screen)
        field(screen, "name").editor.value = "mine"
        await until(pilot, lambda: screen.has_edits(), "the edit")
        await pilot.press("ctrl+c")
        ask = await until(pilot, lambda: isinstance(app.screen, Prompt) and app.screen, "ask")
        assert ask.prompt_title == "Quit, dropping the composer's edits?"
        await pilot.press("ctrl+c")  # must be answered: a reflex does not drop the edits
        await settle(pilot)
        assert app.is_running and app.screen is ask
        await pilot.press("escape")
        field(screen, "name").editor.value = "my-experiment"  # the edit undone
        await until(pilot, lambda: not screen.has_edits(), "no edits")
        await pilot.press("ctrl+c", "ctrl+c")
        await until(pilot, lambda: not app.is_running, "quit")


async def test_the_header_follows_the_runner_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kdtui import runner
    from kdtui.executors.local import write_runner_config

    monkeypatch.setattr(runner, "discover_gpus", lambda: [])  # the same on every machine
    store = Store(tmp_path / "ws")
    app = KdApp(store.root, clock=lambda: NOW, poll_s=0.05)  # devices found, not given
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "cpu ×1" in app.sub_title, "the default slot")
        write_runner_config(store, jobs=2)  # `kdtui run --jobs 2`, with the app open
        await until(pilot, lambda: "cpu ×2" in app.sub_title, "two slots")
        write_runner_config(store, gpus=["0", "1"], per_gpu=2)
        await until(pilot, lambda: "GPU 0,1 ×2" in app.sub_title, "the GPUs")


async def test_the_palettes_screenshot_lands_in_the_folder_kdtui_started_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Textual saves it to ~/Downloads, which a box reached over SSH seldom has: the
    palette then said only "Failed to save screenshot"."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no Downloads folder there
    monkeypatch.setenv("XDG_DOWNLOAD_DIR", str(tmp_path / "home" / "Downloads"))
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    app = make_app(build_workspace(tmp_path / "ws").root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(grid(app).order) == 11, "runs")
        app.deliver_screenshot()
        await until(pilot, lambda: list(here.glob("*.svg")), "the screenshot")
    (shot,) = here.glob("*.svg")
    assert "signal-student" in shot.read_text()
