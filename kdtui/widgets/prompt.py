"""Prompt: a small form in a dialog, or a question with buttons that say what they do; and
Dialog, the frame every dialog of the app shares (Prompt, the results pivot's)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

from kdtui.widgets.text_input import TextInput

ResultT = TypeVar("ResultT")  # what a dialog answers (None: cancelled)


@dataclass(frozen=True)
class Field:
    """One line of a Prompt."""

    key: str
    label: str
    value: str = ""
    placeholder: str = ""
    suggestions: Sequence[str] = ()


class Dialog(ModalScreen[ResultT]):
    """The frame the app's dialogs share, so they look and answer alike: a box in the
    middle, titled on its border; a muted #note; an #error line shown when an answer is
    refused (``refuse``); the #buttons at the right. Escape or #cancel answers None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    Dialog { align: center middle; }
    Dialog > Vertical {
        width: 70; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    Dialog #note { color: $text-muted; }
    Dialog #error { color: $error; display: none; }
    Dialog #buttons { height: auto; align-horizontal: right; }
    Dialog Button { margin-left: 1; }
    """

    def refuse(self, problem: str) -> None:
        """Say what is wrong with the answer; the dialog stays open as it is."""
        error = self.query_one("#error", Static)
        error.update(f"✗ {problem}")
        error.display = True

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class Prompt(Dialog[dict[str, str] | None]):
    """A small form in a dialog: enter (or the OK button) returns {key: text}, escape (or
    the cancel button) returns None."""

    DEFAULT_CSS = """
    Prompt .row { height: auto; }
    Prompt .row Label { width: 12; padding-top: 1; }
    Prompt .row Input { width: 1fr; }
    """

    def __init__(
        self,
        title: str,
        fields: Sequence[Field],
        note: str = "",
        check: Callable[[dict[str, str]], str | None] | None = None,
        *,
        risky: bool = False,
        ok: str = "OK",
        cancel: str = "Cancel",
    ) -> None:
        """``check`` returns what is wrong with the values, shown in the dialog, which then
        stays open with everything typed so far; None lets them through. A ``risky``
        confirmation (something is lost) starts on the cancel button: a second enter must
        not do it. ``ok`` and ``cancel`` label the buttons: a question says what each
        answer does ("Stop run" / "Keep running"), so neither reads as the other."""
        super().__init__()
        self.prompt_title, self.fields, self.note, self.check = title, list(fields), note, check
        self.risky = risky
        self.ok_label, self.cancel_label = ok, cancel

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
                    yield TextInput(
                        f.value, placeholder=f.placeholder, id=f"field-{f.key}", suggester=suggester
                    )
            if self.note:
                yield Static(self.note, id="note")
            yield Static(id="error")
            with Horizontal(id="buttons"):
                yield Button(self.cancel_label, id="cancel")
                yield Button(self.ok_label, id="ok", variant="primary")

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
            self.refuse(problem)
            return
        self.dismiss(values)
