"""LiveScreen: the base of every screen that follows the app's snapshot of the store."""

from __future__ import annotations

from typing import cast

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

    def on_screen_resume(self) -> None:
        if self._stale and self.host.snapshot is not None:
            self._stale = False
            self.show_snapshot(self.host.snapshot)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """Bring the screen up to date with the store."""
        raise NotImplementedError
