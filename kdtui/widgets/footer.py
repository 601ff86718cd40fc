"""KeyFooter: Textual's Footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer


class KeyFooter(Footer):
    """The stock Footer rebuilds every one of its keys whenever the focus moves or a
    binding is refreshed, and each rebuild re-lays out the whole screen: on the composer's
    form, Tab from field to field paid for a layout of the form each time. This one
    rebuilds only when what it would show differs from what it shows."""

    _composed: tuple[Any, ...] | None = None

    def _keys_shown(self) -> tuple[Any, ...]:
        """What ``compose`` would draw: the shown bindings (key, text, enabled, tooltip,
        group), in order, and the footer's own settings."""
        keys = tuple(
            (binding.key, binding.description, binding.action, binding.group, enabled, tooltip)
            for (_, binding, enabled, tooltip) in self.screen.active_bindings.values()
            if binding.show
        )
        palette = self.app.COMMAND_PALETTE_BINDING in self.screen.active_bindings
        return (keys, palette, self.show_command_palette, self.compact)

    async def recompose(self) -> None:
        if not self.is_attached:
            return
        if not getattr(self, "_bindings_ready", True):  # it composes nothing yet
            await super().recompose()
            return
        shown = self._keys_shown()
        if shown == self._composed:
            return
        self._composed = shown
        await super().recompose()
