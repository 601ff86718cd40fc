"""TextInput: the app's text field, a Textual ``Input`` that acts on its keys in the order
they were typed."""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class TextInput(Input):
    """An ``Input`` whose own key bindings act as the field reads the key.

    Textual's ``Input`` types a printable key in its own key handler, at once, but runs its
    non-priority bindings (Backspace, Delete, Left/Right, Home/End, ctrl+w, Enter …) only
    once the key has bubbled up to the app, through every ancestor's queue. Two keys read
    together (typed fast, or over a laggy SSH link) were then applied out of order: in a
    field holding "5", Backspace then 7 left "5" (7 typed, then deleted), Left then a
    character typed it on the wrong side. Here a bound key runs its action in the field's
    own handler, in key order, and goes no further (stopped, and the default handlers
    skipped, so the app does not run it a second time). As in Textual, a binding counts
    only when its action is handled (not disabled, not skipped), else the key bubbles on as
    ever; priority bindings still act first, in the app, before the key reaches the field.
    Ancestors' key handlers do not see a key the field has acted on (none in kdtui has one).
    """

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable:
            return  # Input's own handler types it, as ever
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if binding.priority:
                continue  # the app ran it before handing the key over
            if await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                self._restart_blink()  # what Input's handler would do first
                return
