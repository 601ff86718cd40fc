"""LiveScreen: the base of every screen that follows the app's snapshot of the store."""

from __future__ import annotations

from typing import cast

from textual import events
from textual.screen import Screen

from kdtui.tui.snapshot import Host, Snapshot


class LiveScreen(Screen):
    """A screen that follows the app's snapshot of the store. Hidden screens skip the
    work and catch up when they are shown again."""

    _stale = False

    @property
    def host(self) -> Host:
        """The app, as far as a screen may know it (``Host``): store, snapshot, clock."""
        return cast(Host, self.app)

    def on_mount(self) -> None:
        self.watch(self.app, "snapshot", self._snapshot_changed, init=True)

    def _snapshot_changed(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            return
        if self.is_current:
            self._stale = False
            self.show_snapshot(snapshot)
        else:
            self._stale = True

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        """Shown again (keys 1-4): drawn first as it was left, then brought up to date, so
        that the key is answered at once even when the store changed meanwhile (a new
        snapshot costs a table of thousands of runs tenths of a second on a loaded box).
        Textual would also restyle every widget of the screen first (a whole form: up to
        0.3 s): nothing styles our screens differently while hidden, and a theme changed
        meanwhile restyles them anyway (Textual's CSS stamp), so that is skipped."""
        event.refresh_styles = False  # read by Screen's own handler, which runs next
        if self._stale:
            self.call_after_refresh(self._catch_up)

    def _catch_up(self) -> None:
        if self._stale and self.is_current and self.host.snapshot is not None:
            self._stale = False
            self.show_snapshot(self.host.snapshot)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """Bring the screen up to date with the store."""
        raise NotImplementedError
