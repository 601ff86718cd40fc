"""The shared widgets on their own, in a bare Textual app: what the screens rely on."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Input
from tuikit import settle, until

from kdtui.widgets import KeyFooter

SIZE = (80, 24)


async def test_the_footer_is_rebuilt_only_when_its_keys_change() -> None:
    """Moving the focus between fields keeps the footer's keys (Textual's Footer rebuilt
    them all, and re-laid out the screen, at every focus change); a key that turns
    disabled, or a new one, still shows at once."""

    class Form(App[None]):
        BINDINGS = [Binding("ctrl+r", "launch", "Launch"), Binding("ctrl+s", "save", "Save")]
        ready = True

        def compose(self) -> ComposeResult:
            yield Input(id="a")
            yield Input(id="b")
            yield KeyFooter()

        def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
            return None if action == "launch" and not self.ready else True

    app = Form()
    async with app.run_test(size=SIZE) as pilot:
        footer = app.query_one(KeyFooter)

        def keys() -> dict[str, bool]:
            keys = footer.query("FooterKey").exclude(".-command-palette")
            return {k.description: k.has_class("-disabled") for k in keys}

        await until(pilot, lambda: keys() == {"Launch": False, "Save": False}, "the keys")
        shown = list(footer.query("FooterKey"))
        for _ in range(3):
            await pilot.press("tab")
        await settle(pilot)
        assert list(footer.query("FooterKey")) == shown  # the same widgets: not rebuilt
        app.ready = False
        app.refresh_bindings()
        await until(pilot, lambda: keys() == {"Launch": True, "Save": False}, "Launch disabled")
