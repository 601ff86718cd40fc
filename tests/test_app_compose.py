"""The composer edits whole spec files: the list of a file's entries (its defaults, its
experiments) beside the form of the selected one, grid axes, the expansion counted as you
type, problems at their written paths, save and load round trips, launching a study whose
students need teachers of the same file, and "edit as new". Driven with Pilot; every wait
is for a state, never for a time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_experiment
from textual.widgets import Input
from tuikit import NOW, STALE_ENV, build_workspace, checked, settle, until

from kdtui import launcher
from kdtui.executors import local
from kdtui.screens import compose
from kdtui.screens.compose import ComposeScreen
from kdtui.screens.compose_file import DEFAULTS, SpecDoc, counts, dumps, fresh_name
from kdtui.screens.runs import RunsScreen
from kdtui.spec import Problem
from kdtui.store import Store
from kdtui.tui.app import KdApp
from kdtui.widgets import Grid, Prompt
from kdtui.widgets.axes import AxisRow, format_values, parse_values
from kdtui.widgets.entry_list import EntryList
from kdtui.widgets.form import FieldRow, FormNode, parents_of

SIZE = (80, 24)
STUDY = Path(__file__).resolve().parent.parent / "examples" / "study.json"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in STALE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(launcher, "revive_runner", lambda store: 0)  # queued runs stay so
    monkeypatch.setattr(compose, "CHECK_DELAY_S", 0.02)  # the tests wait for the check
    monkeypatch.setattr(compose, "slurm_here", lambda: False)


@pytest.fixture
def runner_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """ensure_runner is recorded, never started: the tests own no training processes."""
    calls: list[Path] = []
    monkeypatch.setattr(local, "ensure_runner", lambda store: calls.append(store.root))
    return calls


def make_app(root: Path) -> KdApp:
    return KdApp(root, clock=lambda: NOW, devices="cpu ×2", poll_s=0.05)


def field(screen: ComposeScreen, path: str) -> Any:
    return next((n for n in screen.query(FormNode) if n.path == path), None)


def status(screen: ComposeScreen) -> str:
    return str(screen.query_one("#status").render())


def axis(screen: ComposeScreen, key: str) -> AxisRow:
    return next(r for r in screen.query(AxisRow) if r.key() == key)


def tiny_study() -> dict[str, Any]:
    """Two teachers from a grid, a KD student of each (named by the grid's template), and a
    student of both: CPU-sized, one seed each."""
    defaults = {k: v for k, v in tiny_experiment("x").items() if k != "name"}
    kd = {"ce": 0.5, "kd": {"T": 4, "weight": 0.5}}
    return {
        "defaults": defaults,
        "experiments": [
            {"name": "t-w{student.width}", "grid": {"student.width": [1, 2]}},
            {
                "name": "kd-{teachers[0].experiment}",
                "teachers": [{"experiment": "t-w{student.width}"}],
                "loss": kd,
            },
            {
                "name": "two",
                "teachers": [{"experiment": "t-w1"}, {"experiment": "t-w2"}],
                "loss": kd,
            },
        ],
    }


async def prompt_field(pilot: Any, key: str, other_than: Any = None) -> Input:
    """The field ``key`` of the dialog on top, once it is shown."""
    app = pilot.app

    def shown() -> Any:
        screen = app.screen
        return (
            isinstance(screen, Prompt)
            and screen is not other_than
            and screen.query(f"#field-{key}")
        )

    await until(pilot, shown, f"a dialog with {key}")
    return app.screen.query_one(f"#field-{key}", Input)


async def question(pilot: Any, other_than: Any = None) -> Prompt:
    """The question on top, once its buttons are shown."""
    app = pilot.app

    def shown() -> Any:
        screen = app.screen
        return (
            isinstance(screen, Prompt)
            and screen is not other_than
            and screen.query("#ok")
            and screen
        )

    return await until(pilot, shown, "the question")


async def open_file(pilot: Any, screen: ComposeScreen, path: Path) -> None:
    """Ctrl+O, the path, enter: as a user opens a file."""
    await pilot.press("ctrl+o")
    (await prompt_field(pilot, "path")).value = str(path)
    await pilot.press("enter")
    await until(pilot, lambda: screen.doc.path == path, "the file in the composer")
    await checked(pilot, screen)


async def select(pilot: Any, screen: ComposeScreen, entry: int) -> None:
    """Highlight an entry of the list (as the arrow keys do) and wait for its form."""
    entries = screen.query_one("#entries", EntryList)
    entries.focus()
    entries.highlighted = entry + 1
    await until(pilot, lambda: screen.selected == entry, "the entry")
    await checked(pilot, screen)


async def save_as(pilot: Any, path: Path) -> None:
    await pilot.press("ctrl+s")
    (await prompt_field(pilot, "path")).value = str(path)
    await pilot.press("enter")
    await until(pilot, lambda: path.exists(), "the saved file")


# ---------------------------------------------------------------------- the file as a list


async def test_a_study_file_opens_as_its_list_and_counts_follow_the_grid(
    tmp_path: Path,
) -> None:
    study = tmp_path / "study.json"
    shutil.copy(STUDY, study)
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        await checked(pilot, screen)
        await open_file(pilot, screen, study)
        assert screen.problems == []
        entries = screen.query_one("#entries", EntryList)
        assert [e.name for e in entries.entries] == [
            "defaults",
            "gaf-WRN{student.depth}-{student.width}",
            "signal-WRN16-3",
            "signal-WRN16-1",
            "kd-{teachers[0].experiment}",
            "kd-two-teachers",
        ]
        assert [e.expands for e in entries.entries] == [1, 4, 1, 1, 4, 1]
        assert "5 experiments → 11 configurations, 33 runs" in status(screen)
        # the GAF teachers' grid: one more width is two more teachers
        await select(pilot, screen, 0)
        assert field(screen, "name").editor.value == "gaf-WRN{student.depth}-{student.width}"
        expands = str(screen.query_one("#expands").render())
        assert "4 configurations, 12 runs: gaf-WRN16-1, gaf-WRN16-3, gaf-WRN28-1" in expands
        axis(screen, "student.width").query_one("Input.values", Input).value = "1, 3, 5"
        await until(pilot, lambda: "13 configurations, 39 runs" in status(screen), "new counts")
        assert entries.entries[1].expands == 6
        # a bad value: its problem under the axis, at its written place, the entry marked
        axis(screen, "student.depth").query_one("Input.values", Input).value = "16, 17"
        await until(pilot, lambda: screen.problems, "the problem")
        assert str(screen.problems[0]).startswith('experiments[0].grid["student.depth"][1]: ')
        row = axis(screen, "student.depth")
        assert row.has_class("-invalid") and "6n+4" in str(row.query_one(".problems").render())
        assert entries.entries[1].problems and not entries.entries[2].problems
        axis(screen, "student.depth").query_one("Input.values", Input).value = "16, 28"
        assert await checked(pilot, screen) == []
        # another experiment: its own form; the grid's edit is kept in the file
        await select(pilot, screen, 2)
        assert field(screen, "name").editor.value == "signal-WRN16-1"
        epochs_default = str(json.loads(STUDY.read_text())["defaults"]["epochs"])  # inherited
        assert field(screen, "epochs").editor.placeholder == f"defaults: {epochs_default}"
        assert field(screen, "grid") is not None and not screen.query(AxisRow)
        assert screen.file_value()["experiments"][0]["grid"]["student.width"] == [1, 3, 5]
        # the defaults: the same form, its problems at defaults.<path>
        await select(pilot, screen, DEFAULTS)
        assert field(screen, "name") is None and field(screen, "grid") is None
        epochs = field(screen, "epochs")
        assert epochs.editor.value == epochs_default
        epochs.editor.value = "0"
        await until(pilot, lambda: screen.problems, "the defaults' problem")
        assert [str(p) for p in screen.problems] == ["defaults.epochs: must be >= 1 (got 0)"]
        assert epochs.has_class("-invalid") and entries.entries[0].problems
        epochs.editor.value = "5"
        assert await checked(pilot, screen) == []
        assert screen.file_value()["defaults"]["epochs"] == 5
        assert "13 configurations, 39 runs" in status(screen)


async def test_save_writes_the_file_compact_and_reloads_equal(tmp_path: Path) -> None:
    study = tmp_path / "study.json"
    shutil.copy(STUDY, study)
    written = json.loads(study.read_text())
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        await checked(pilot, screen)
        await open_file(pilot, screen, study)
        for entry in (DEFAULTS, 0, 3, 4):  # every kind of entry shown once in the form
            await select(pilot, screen, entry)
        assert screen.file_value() == written  # nothing added, nothing expanded
        assert not screen.has_edits()
        out = tmp_path / "out" / "study.json"
        await save_as(pilot, out)
        await until(pilot, lambda: not screen.has_edits() and screen.doc.path == out, "saved")
        assert json.loads(out.read_text()) == written
        assert len(out.read_text().splitlines()) < 50  # compact: short objects on one line
        field(screen, "name").editor.value = "kd-two"  # an edit, then the saved file again
        await until(pilot, lambda: screen.has_edits(), "the edit")
        await pilot.press("ctrl+o")
        path = await prompt_field(pilot, "path")
        path.value, dialog = str(out), path.screen
        await pilot.press("enter")
        ask = await question(pilot, other_than=dialog)  # before the edit is dropped
        await pilot.click("#ok")
        await until(pilot, lambda: app.screen is screen and not screen.has_edits(), "reloaded")
        await checked(pilot, screen)
        assert ask.prompt_title.startswith("Load") and screen.file_value() == written


async def test_save_asks_before_overwriting_and_names_what_it_holds(tmp_path: Path) -> None:
    spec = tmp_path / "several.json"
    two = {
        "experiments": [
            {"name": "a", "data": {"dataset": "basicmotions"}, "student": {}},
            {
                "name": "b",
                "data": {"dataset": "basicmotions"},
                "student": {"width": 2},
                "epochs": 7,
            },
        ]
    }
    spec.write_text(json.dumps(two))
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        await checked(pilot, screen)
        await open_file(pilot, screen, spec)
        await select(pilot, screen, 1)
        assert screen.form_value() == two["experiments"][1]
        field(screen, "epochs").editor.value = "9"
        await checked(pilot, screen)
        await pilot.press("ctrl+s")
        path = await prompt_field(pilot, "path")
        assert path.value == str(spec)  # the file it came from
        dialog = path.screen
        await pilot.press("enter")
        ask = await question(pilot, other_than=dialog)
        assert ask.prompt_title == f"Overwrite {spec}?"
        assert "It holds 2 experiments: a, b." in str(ask.query_one("#note").render())
        await pilot.press("escape")
        await settle(pilot)
        assert json.loads(spec.read_text()) == two  # nothing lost
        await pilot.press("ctrl+s")
        dialog = (await prompt_field(pilot, "path")).screen
        await pilot.press("enter")
        await question(pilot, other_than=dialog)
        await pilot.click("#ok")
        await until(pilot, lambda: json.loads(spec.read_text()) != two, "overwritten")
    assert json.loads(spec.read_text())["experiments"][1]["epochs"] == 9


async def test_add_copy_rename_and_remove_experiments(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(tiny_study()))
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        await checked(pilot, screen)
        await open_file(pilot, screen, spec)
        assert screen.problems == [] and "3 experiments → 5 configurations, 5 runs" in status(
            screen
        )
        await select(pilot, screen, 0)
        # rename the teachers' template: the students that name it, or its names, follow
        await pilot.press("r")
        (await prompt_field(pilot, "name")).value = "teach-w{student.width}"
        await pilot.press("enter")
        await until(pilot, lambda: screen.doc.names()[0] == "teach-w{student.width}", "renamed")
        assert await checked(pilot, screen) == []
        experiments = screen.file_value()["experiments"]
        assert experiments[1]["teachers"] == [{"experiment": "teach-w{student.width}"}]
        assert experiments[2]["teachers"][0]["experiment"] == "teach-w1"
        assert experiments[2]["teachers"][1]["experiment"] == "teach-w2"
        # add: a bare new name when the file has defaults (it inherits the rest)
        screen.query_one("#entries").focus()
        await pilot.press("a")
        await until(pilot, lambda: len(screen.doc.experiments) == 4, "added")
        assert await checked(pilot, screen) == []
        assert screen.selected == 1 and screen.form_value() == {"name": "experiment"}
        assert "4 experiments → 6 configurations, 6 runs" in status(screen)
        # copy: the same experiment under a name not yet used
        screen.query_one("#entries").focus()
        await pilot.press("c")
        await until(pilot, lambda: len(screen.doc.experiments) == 5, "copied")
        assert await checked(pilot, screen) == []
        assert screen.form_value() == {"name": "experiment-v2"}
        # remove asks first
        screen.query_one("#entries").focus()
        await pilot.press("x")
        ask = await question(pilot)
        assert ask.prompt_title == "Remove experiment-v2 from the file?"
        await pilot.click("#ok")
        await until(pilot, lambda: len(screen.doc.experiments) == 4, "removed")
        assert await checked(pilot, screen) == []
        assert screen.doc.names() == [
            "teach-w{student.width}",
            "experiment",
            "kd-{teachers[0].experiment}",
            "two",
        ]


# ---------------------------------------------------------------------- launching


async def test_launch_a_study_whose_students_need_its_own_teachers(
    tmp_path: Path, runner_calls: list[Path]
) -> None:
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(tiny_study()))
    store = Store(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        await checked(pilot, screen)
        await open_file(pilot, screen, spec)
        assert screen.problems == []
        jobs = screen.query_one("#jobs", Input)
        jobs.value = "0"
        await pilot.press("ctrl+r")  # refused, said, nothing queued
        await until(
            pilot,
            lambda: any("a whole number, 1 or more" in n.message for n in app._notifications),
            "the reason",
        )
        assert not store.index_path.exists() and not screen.query_one("#launch").disabled
        jobs.value = "2"  # two runs at a time
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen), "the runs list")
        await until(pilot, lambda: len(app.screen.query_one(Grid).order) == 5, "the runs")
        assert not screen.has_edits()  # launched: nothing to lose
    runs = {r["name"]: r for r in store.runs()}
    assert sorted(runs) == ["kd-t-w1", "kd-t-w2", "t-w1", "t-w2", "two"]
    assert {r["status"] for r in runs.values()} == {"queued"}
    # each student waits for teachers of this very launch
    key = {name: r["group_key"] for name, r in runs.items()}
    assert [n["group_key"] for n in runs["kd-t-w1"]["needs"]] == [key["t-w1"]]
    assert [n["group_key"] for n in runs["kd-t-w2"]["needs"]] == [key["t-w2"]]
    assert [n["group_key"] for n in runs["two"]["needs"]] == [key["t-w1"], key["t-w2"]]
    assert store.read_spec(runs["kd-t-w2"]["run_id"])["experiment"]["student"]["width"] == 1
    assert store.read_spec(runs["t-w2"]["run_id"])["spec_file"] == str(spec)
    assert launcher.read_runner_config(store)["jobs"] == 2
    assert runner_calls == [store.root]


async def test_edit_a_run_as_new_gives_the_copy_a_new_name(tmp_path: Path) -> None:
    store = build_workspace(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.screen.query_one(Grid).order) == 11, "runs")
        await pilot.press("2")  # an edit in the composer first...
        screen = app.screen
        await checked(pilot, screen)
        field(screen, "name").editor.value = "dirty"
        await until(pilot, lambda: screen.has_edits(), "the edit")
        await pilot.press("escape", "1")
        app.screen.query_one("#filter").value = "kd-gaf-to-signal-s1"
        grid = app.screen.query_one(Grid)
        await until(pilot, lambda: grid.order == ["kd-gaf-to-signal-s1"], "the filter")
        await pilot.press("e")  # ... which "edit as new" asks before dropping
        await question(pilot)
        await pilot.click("#ok")
        await until(pilot, lambda: app.screen is screen, "compose")
        await until(
            pilot,
            lambda: (screen.form_value() or {}).get("name") == "kd-gaf-to-signal-v2",
            "the run's spec under a new name",
        )
        value = screen.form_value()
        assert value["teachers"][0]["experiment"] == "gaf-teacher"
        assert value["loss"]["kd"] == {"weight": 0.7, "T": 4.0}
        assert value["seeds"] == [0, 1, 2]
        await until(
            pilot,
            lambda: any("named kd-gaf-to-signal-v2" in n.message for n in app._notifications),
            "the new name said",
        )
        assert await checked(pilot, screen) == []  # a finished teacher group: valid
        # launched unchanged, it would train the same configuration's seeds again: said
        status_bar = screen.query_one("#status")
        await until(pilot, lambda: status_bar.has_class("-warn"), "the warning")
        assert "the store has kd-gaf-to-signal-v2 seeds 0, 1, 2" in status(screen)


# ---------------------------------------------------------------------- the file's logic


def test_fresh_name_never_takes_a_used_one() -> None:
    assert fresh_name("kd", set()) == "kd"
    assert fresh_name("kd", {"kd"}) == "kd-v2"
    assert fresh_name("kd", {"kd", "kd-v2", "kd-v3"}) == "kd-v4"
    assert fresh_name("kd-v2", {"kd-v2"}) == "kd-v3"  # goes on counting, no kd-v2-v2
    assert fresh_name("gaf-WRN16-1", {"gaf-WRN16-1"}) == "gaf-WRN16-1-v2"  # not WRN16-2


def test_the_file_keeps_its_shape_and_problems_find_their_entry() -> None:
    lone = SpecDoc.from_raw({"name": "a", "epochs": 3})
    assert lone.value() == {"name": "a", "epochs": 3} and lone.prefix(0) == ""
    assert lone.route([Problem("epochs", "bad")]) == {0: [Problem("epochs", "bad")]}
    lone.experiments.append({"name": "b"})  # a second experiment: a list
    assert lone.value() == [{"name": "a", "epochs": 3}, {"name": "b"}]
    assert lone.locate("[1].name") == (1, "name")
    lone.defaults = {"epochs": 5}  # defaults: the object form
    assert lone.value() == {
        "defaults": {"epochs": 5},
        "experiments": [{"name": "a", "epochs": 3}, {"name": "b"}],
    }
    study = SpecDoc.from_raw(json.loads(STUDY.read_text()))
    assert study.value() == json.loads(STUDY.read_text())
    routed = study.route(
        [
            Problem('experiments[0].grid["student.depth"][1]', "x"),
            Problem("defaults.student.depth", "y"),
            Problem("experiments", "z"),
        ]
    )
    assert routed == {
        0: [Problem('grid["student.depth"][1]', "x")],
        DEFAULTS: [Problem("student.depth", "y")],
        None: [Problem("experiments", "z")],
    }
    with pytest.raises(ValueError, match=r"experiments\[1\]: not an experiment object"):
        SpecDoc.from_raw({"experiments": [{"name": "a"}, 3]})


def test_counts_and_the_compact_dump() -> None:
    raw = json.loads(STUDY.read_text())
    c = counts(raw, 5)
    assert (c.written, c.configurations, c.runs) == (5, 11, 33)
    assert c.text() == "5 experiments → 11 configurations, 33 runs"
    assert c.names[3] == ["kd-gaf-WRN16-1", "kd-gaf-WRN16-3", "kd-gaf-WRN28-1", "kd-gaf-WRN28-3"]
    text = dumps(raw)
    assert json.loads(text) == raw
    # small objects stay on one line, as a person writes them; a long one opens up
    assert '    "student": {"depth": 16, "width": 1, "view": "signal"},' in text
    assert '      "val": {"fraction": 0.2, "seed": 0}\n' in text
    assert '    "data": {\n      "dataset": "synthetic-har",\n' in text


def test_axis_values_read_back_as_written() -> None:
    for values in (
        [16, 28],
        [0.5, 4.0],
        ["gaf-WRN16-1", "gaf-WRN16-3"],
        ["16", "true", "a, b"],  # strings that would read as something else stay strings
        [{"depth": 28, "width": 3}, {"depth": 16, "width": 1}],
        [True, None],
    ):
        assert parse_values(format_values(values)) == values
    assert format_values(["gaf-WRN16-1", 2]) == "gaf-WRN16-1, 2"
    assert parse_values("gaf-a, gaf-b") == ["gaf-a", "gaf-b"]
    assert parse_values("") == []


def test_a_quoted_grid_key_is_one_step_of_a_path() -> None:
    assert list(parents_of('grid["loss.kd.T"][1]')) == [
        'grid["loss.kd.T"][1]',
        'grid["loss.kd.T"]',
        "grid",
        "",
    ]
    assert list(parents_of("teachers[0].model.depth")) == [
        "teachers[0].model.depth",
        "teachers[0].model",
        "teachers[0]",
        "teachers",
        "",
    ]


async def test_an_untouched_form_adds_nothing_to_what_was_written(tmp_path: Path) -> None:
    """A loaded experiment's form holds what was written, no more: no schedule kind, no
    empty sections, a view written as its kind stays so, 4 stays 4, a null (a default
    switched off) stays null."""
    written = {
        "name": "k",
        "augment": None,
        "threads": None,
        "data": {"dataset": "basicmotions"},
        "student": {"view": "signal", "depth": 16},
        "loss": {"kd": {"T": 4}},
        "teachers": [{"experiment": "gaf", "weight": 1.0}],
    }
    app = make_app(tmp_path / "ws")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        await checked(pilot, screen)
        await screen.load_experiment(written)
        await checked(pilot, screen)
        assert screen.form_value() == written
        assert isinstance(field(screen, "epochs"), FieldRow)
