"""Keys read together reach a text field in the order typed (issue 17): a bound key
(Backspace, Left, Enter …) acts before the key after it is typed. The keys are posted to
the app back to back, with no pause between them, as a terminal hands over two keys read
in one go (typed fast, or over a laggy SSH link). The same in a real terminal:
tests/test_tmux.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input, Select
from tuikit import NOW, build_workspace, hold_crash_detection, until

from kdtui.screens import runs as runs_screen
from kdtui.tui.app import KdApp
from kdtui.widgets import TextInput

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _no_crash_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    hold_crash_detection(monkeypatch)


def key(name: str) -> events.Key:
    """The key as Textual's driver reads it: a character, or a name ("slash" types "/")."""
    return events.Key(name, name if len(name) == 1 else {"slash": "/"}.get(name))


async def send_together(pilot: Pilot, *names: str) -> None:
    """Post every key to the app before any is handled, then let them all be handled."""
    for name in names:
        pilot.app.post_message(key(name))
    await pilot.pause()
    await pilot.pause()


class OneField(App[None]):
    def __init__(self, field: type[Input]) -> None:
        super().__init__()
        self.field = field

    def compose(self) -> ComposeResult:
        yield self.field("5", select_on_focus=False)


async def typed(field: type[Input], *names: str, cursor: int = 1) -> str:
    app = OneField(field)
    async with app.run_test() as pilot:
        box = app.query_one(Input)
        box.focus()
        box.cursor_position = cursor
        await pilot.pause()
        await send_together(pilot, *names)
        return box.value


@pytest.mark.parametrize(
    ("names", "cursor", "value"),
    [
        (("backspace", "7"), 1, "7"),
        (("left", "4"), 1, "45"),
        (("home", "4", "end", "6"), 1, "456"),
        (("backspace", "backspace", "8", "9"), 1, "89"),
        (("ctrl+w", "x"), 1, "x"),
    ],
)
async def test_bound_keys_act_before_the_keys_typed_after_them(
    names: tuple[str, ...], cursor: int, value: str
) -> None:
    assert await typed(TextInput, *names, cursor=cursor) == value


async def test_textual_s_input_reorders_them_which_is_why_the_app_has_its_own() -> None:
    """The same keys in Textual's Input: the character typed first, the bound key after
    it. Should this fail after an upgrade, Textual orders the keys itself and TextInput
    may go."""
    assert await typed(Input, "backspace", "7") == "5"  # "57", then the 7 deleted
    assert await typed(Input, "left", "4") == "54"


async def test_a_key_no_binding_of_the_field_handles_goes_on_to_the_app() -> None:
    """Keys the field has no binding for still reach the screen's and the app's: here
    ctrl+q quits, typed in the field."""
    app = OneField(TextInput)
    async with app.run_test() as pilot:
        app.query_one(Input).focus()
        await pilot.pause()
        await send_together(pilot, "ctrl+q")
        await until(pilot, lambda: not app.is_running, "the app quit")


async def test_a_disabled_binding_lets_the_key_go_on() -> None:
    """As in Textual, a binding whose action is not handled does not hold the key: a
    field that refuses its cursor moves lets Left reach the app's binding."""

    class Refusing(TextInput):
        def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
            return action != "cursor_left"

    class WithLeft(App[None]):
        BINDINGS = [("left", "note", "")]
        noted = 0

        def compose(self) -> ComposeResult:
            yield Refusing("ab")

        def action_note(self) -> None:
            self.noted += 1

    app = WithLeft()
    async with app.run_test() as pilot:
        box = app.query_one(Input)
        box.focus()
        box.cursor_position = 2
        await pilot.pause()
        await send_together(pilot, "left", "c")
        assert app.noted == 1 and box.value == "abc"


def make_app(tmp_path: Path) -> KdApp:
    build_workspace(tmp_path / "ws")
    return KdApp(tmp_path / "ws", clock=lambda: NOW, devices="cpu ×2", poll_s=0.05)


async def test_keys_after_enter_in_the_filter_are_commands_of_the_table(tmp_path: Path) -> None:
    """Enter leaves the runs filter for the table before the next key is handed out: the
    key after it is a command there (f cycles the status), not typed in the filter."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, "the first snapshot")
        await pilot.press("slash")
        screen = app.screen
        assert isinstance(screen, runs_screen.RunsScreen)
        await send_together(pilot, "g", "x", "backspace", "enter", "f")
        await until(pilot, lambda: screen.grid.has_focus, "the table focused")
        await pilot.pause()
        assert screen.query_one("#filter", Input).value == "g"
        assert screen.query_one("#status", Select).value == "queued"


async def test_keys_after_slash_go_into_the_filter(tmp_path: Path) -> None:
    """/ focuses the filter before the next key is handed out (the keys typed after it
    went to the table: g, a, x were lost or ran its commands); in the filter, / is typed."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, "the first snapshot")
        screen = app.screen
        assert isinstance(screen, runs_screen.RunsScreen) and screen.grid.has_focus
        await send_together(pilot, "slash", "g", "a", "x", "slash", "f")
        assert screen.query_one("#filter", Input).value == "gax/f"
        assert screen.query_one("#status", Select).is_blank()  # f typed, no status chosen


async def test_keys_after_escape_in_the_filter_are_commands_of_the_table(tmp_path: Path) -> None:
    """Escape clears the filter and leaves it before the next key is handed out (the key
    after it went into the filter, and was cleared with it)."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, "the first snapshot")
        screen = app.screen
        assert isinstance(screen, runs_screen.RunsScreen)
        await send_together(pilot, "slash", "g", "escape", "f")
        assert screen.grid.has_focus
        assert screen.query_one("#filter", Input).value == ""
        assert screen.query_one("#status", Select).value == "queued"


async def test_escape_in_the_open_status_list_closes_it_and_keeps_the_filter(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, "the first snapshot")
        screen = app.screen
        assert isinstance(screen, runs_screen.RunsScreen)
        await send_together(pilot, "slash", "g", "down", "f")  # filter g, status queued
        status = screen.query_one("#status", Select)
        status.focus()
        await pilot.press("enter")
        await until(pilot, lambda: status.expanded, "the list open")
        await pilot.press("escape")
        await until(pilot, lambda: not status.expanded, "the list closed")
        assert status.value == "queued" and screen.query_one("#filter", Input).value == "g"
        assert app.focused is not None and status in app.focused.ancestors_with_self


async def test_the_composer_s_runs_at_a_time_takes_backspace_then_a_digit(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: app.current_mode == "compose", "the composer")
        jobs = await until(pilot, lambda: app.screen.query_one("#jobs", Input), "the field")
        jobs.focus()
        await pilot.pause()
        jobs.value = "5"
        jobs.cursor_position = 1
        await send_together(pilot, "backspace", "7")
        assert jobs.value == "7"
        await send_together(pilot, "tab", "x")  # Tab (a priority binding) still moves on
        assert jobs.value == "7" and not jobs.has_focus
