"""The app answers at once: what a key waits for is kept off its way (Pilot, in process).
The same under real load, in a terminal: tests/test_tmux.py; the figures: bench/tui_startup.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.screen import Screen
from textual.widgets import Input, Select
from tuikit import NOW, build_workspace, hold_crash_detection, until

from kdtui.screens import results as results_screen
from kdtui.screens import runs as runs_screen
from kdtui.tui.app import KdApp
from kdtui.tui.snapshot import Snapshot
from kdtui.widgets import Field, Prompt

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _no_crash_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    hold_crash_detection(monkeypatch)


def make_app(tmp_path: Path) -> KdApp:
    build_workspace(tmp_path / "ws")
    return KdApp(tmp_path / "ws", clock=lambda: NOW, devices="cpu ×2", poll_s=0.05)


def test_the_app_starts_without_the_spec_models() -> None:
    """The composer's pydantic models (a third of the start) load after the first frame."""
    code = "import sys, kdtui.tui.app; print(sorted({'pydantic', 'kdtui.spec'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_first_visits_do_not_restyle_the_whole_app(tmp_path: Path) -> None:
    """Textual restyled every widget of the app twice when a screen was first shown."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, "the first snapshot")
        restyled: list[str] = []
        app.refresh_css = lambda *a, **k: restyled.append(type(app.screen).__name__)  # type: ignore[method-assign]
        for key, mode in [("2", "compose"), ("3", "results"), ("4", "todo"), ("1", "runs")]:
            await pilot.press(key)
            await until(pilot, lambda mode=mode: app.current_mode == mode, mode)
            await pilot.pause()
            bar = app.screen.query(".bar").first()  # styled all the same, by the app's CSS
            assert bar.styles.height is not None and bar.styles.height.value == 1
        assert restyled == []


async def test_a_screen_shown_again_is_not_restyled(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: app.current_mode == "compose", "compose")
        await pilot.pause()
        composer = app.screen
        restyled: list[bool] = []
        original = composer.update_node_styles
        composer.update_node_styles = lambda animate=True: (  # type: ignore[method-assign]
            restyled.append(True),
            original(animate),
        )[1]
        await pilot.press("1")
        await pilot.press("2")
        await until(pilot, lambda: app.screen is composer, "compose again")
        await pilot.pause()
        assert restyled == []


async def test_a_screen_switched_to_during_a_batch_is_drawn(tmp_path: Path) -> None:
    """A footer rebuilding (a batch of updates) while a key switched screens: the new
    screen used to stay undrawn until the next key, as the batch's end woke only the app."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, "the first snapshot")
        await pilot.pause()
        drawn: list[Screen] = []
        display = app._display

        def spy(screen: Screen, renderable: Any) -> None:
            if not app._batch_count and renderable is not None:
                drawn.append(screen)
            display(screen, renderable)

        app._display = spy  # type: ignore[method-assign]
        with app.batch_update():
            app.switch_mode("todo")
            await asyncio.sleep(0.3)
        # Drawn at once: not at the next key, nor at a wake-up of the app's own seconds later.
        await until(pilot, lambda: any(s is app.screen for s in drawn), "drawn", timeout=1.5)


async def test_keys_typed_after_tab_go_to_the_next_field(tmp_path: Path) -> None:
    """Keys queued behind a Tab (as a loaded box delivers them, all at once) land in the
    field Tab moved to: the focus moves when the app reads the Tab, not after the field
    it leaves has handed the Tab back up."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        prompt = Prompt("Two fields", [Field("a", "first", ""), Field("b", "second", "")])
        app.push_screen(prompt)
        await until(pilot, lambda: app.focused is not None, "the first field focused")
        for key, char in [("x", "x"), ("y", "y"), ("tab", None), ("z", "z"), ("w", "w"),
                          ("shift+tab", None), ("v", "v")]:  # fmt: skip
            app.post_message(events.Key(key, char))
        await pilot.pause()
        await until(pilot, lambda: prompt.values()["b"] == "zw", "the second field filled")
        # Back in the first field its text is selected (as Tab leaves it), so v replaces it.
        assert prompt.values() == {"a": "v", "b": "zw"}


async def test_a_new_snapshot_rewrites_only_the_runs_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path)
    written: list[str] = []
    cells = runs_screen.run_cells

    def counted(run: dict[str, Any], now: float, mark: bool = False) -> tuple[str, ...]:
        written.append(run["run_id"])
        return cells(run, now, mark)

    monkeypatch.setattr(runs_screen, "run_cells", counted)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, "the first snapshot")
        await pilot.pause()
        snapshot = app.snapshot
        assert snapshot is not None and len(written) == len(snapshot.runs)
        runs = [dict(r) for r in snapshot.runs]
        runs[0]["epoch"] = (runs[0].get("epoch") or 0) + 1
        written.clear()
        app.snapshot = Snapshot(runs, snapshot.todos)
        await pilot.pause()
        assert written == [runs[0]["run_id"]]


async def test_ages_move_on_without_writing_every_row_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_workspace(tmp_path / "ws")
    now = [NOW]
    app = KdApp(tmp_path / "ws", clock=lambda: now[0], devices="cpu ×2", poll_s=0.05)
    written: list[str] = []
    cells = runs_screen.run_cells
    monkeypatch.setattr(
        runs_screen, "run_cells", lambda r, t, m=False: written.append("") or cells(r, t, m)
    )
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, "the first snapshot")
        await pilot.pause()
        screen, snapshot = app.screen, app.snapshot
        assert isinstance(screen, runs_screen.RunsScreen) and snapshot is not None
        written.clear()
        now[0] += 2 * 86400
        screen._ages_move_on()
        await pilot.pause()
        assert written == []
        for run in snapshot.runs:
            assert screen.grid.cells[run["run_id"]] == cells(run, now[0])


async def test_keys_after_down_in_the_filter_are_commands_of_the_table(tmp_path: Path) -> None:
    """Down leaves the runs filter for the table before the next key is handed out (it
    used to act only once it had bubbled up from the filter, the next key typed in it)."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, "the first snapshot")
        await pilot.press("slash")
        screen = app.screen
        assert isinstance(screen, runs_screen.RunsScreen)
        for key, char in [("g", "g"), ("down", None), ("f", "f")]:  # f: a status, cycled
            app.post_message(events.Key(key, char))
        await until(pilot, lambda: screen.grid.has_focus, "the table focused")
        await pilot.pause()
        assert screen.query_one("#filter", Input).value == "g"
        assert screen.query_one("#status", Select).value == "queued"
        await pilot.press("down")  # in the table, a cursor move as ever
        assert screen.grid.has_focus


async def test_keys_after_escape_in_the_composer_are_commands(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: app.current_mode == "compose", "the composer")
        composer = app.screen
        name = await until(pilot, lambda: composer.query_one("#root Input", Input), "a field")
        name.focus()
        await pilot.pause()
        for key, char in [("x", "x"), ("escape", None), ("4", "4")]:
            app.post_message(events.Key(key, char))
        await until(pilot, lambda: app.current_mode == "todo", "the TODO screen")
        assert name.value.endswith("x")


async def test_escape_in_an_open_list_of_the_composer_closes_the_list(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: app.current_mode == "compose", "the composer")
        choice = await until(pilot, lambda: app.screen.query_one("#root Select", Select), "a list")
        choice.focus()
        await pilot.press("enter")
        await until(pilot, lambda: choice.expanded, "the list open")
        await pilot.press("escape")
        await until(pilot, lambda: not choice.expanded, "the list closed")
        assert app.focused is not None and choice in app.focused.ancestors_with_self


async def test_a_new_snapshot_rewrites_only_the_results_rows_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path)
    written: list[str] = []
    cells = results_screen.row_cells
    monkeypatch.setattr(
        results_screen, "row_cells", lambda r, *a: written.append(r.name) or cells(r, *a)
    )
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        screen = await until(
            pilot,
            lambda: isinstance(app.screen, results_screen.ResultsScreen) and app.screen,
            "the results",
        )
        await until(pilot, lambda: screen._labelled_for is not None, "the groups labelled")
        await pilot.pause()
        snapshot = app.snapshot
        assert snapshot is not None and written
        runs = [dict(r) for r in snapshot.runs]
        done = next(r for r in runs if r.get("status") == "done")
        done["best_acc"] = 99.0
        written.clear()
        app.snapshot = Snapshot(runs, snapshot.todos)
        await pilot.pause()
        assert written == [done["name"]]
