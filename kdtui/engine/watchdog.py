"""The engine's watchdog: a run that is alive but makes no progress is stopped.

A process that hangs while alive (a deadlocked data read, a stuck device call, a
filesystem that stopped answering) keeps its heartbeat going, so nothing outside can tell
it from a slow run. The watchdog is a thread in the engine itself: when no training batch
and no epoch has finished for longer than its limit, it calls ``on_stall`` (the engine
records the run as failed, "no progress for N min", and exits).

The limit is generous by default: 10× the median epoch time so far, and at least 30 min
(before the first epoch ends, 30 min between batches). ``watchdog`` in the spec or the
workspace's ``runner.json`` sets it in minutes, or turns it off with 0 or false.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

DEFAULT_FLOOR_S = 30 * 60.0
EPOCHS_FACTOR = 10.0


def limit_setting(value: Any) -> float | None:
    """The spec's or runner.json's ``watchdog``: minutes (> 0) → that many seconds,
    0 / false → None (off), unset / true → 0.0 (the default: from the epochs' times)."""
    if value is None or value is True:
        return 0.0
    if value is False:
        return None
    try:
        minutes = float(value)
    except (TypeError, ValueError):
        return 0.0  # a setting that is no number: the default, never no watchdog
    return minutes * 60.0 if minutes > 0 else None


class Watchdog:
    """Calls ``on_stall(idle_seconds, limit_seconds)`` once, from its thread, when the
    main loop has not called ``progress`` for longer than the limit."""

    def __init__(
        self,
        fixed_s: float,
        on_stall: Callable[[float, float], None],
        floor_s: float = DEFAULT_FLOOR_S,
    ) -> None:
        self.fixed_s = fixed_s  # 0: the default limit, from the epoch times
        self.floor_s = floor_s
        self.on_stall = on_stall
        self.epoch_times: list[float] = []
        self.last = time.monotonic()
        self._stop = threading.Event()

    def progress(self) -> None:
        """A batch or an epoch finished. Called per batch: it only reads the clock."""
        self.last = time.monotonic()

    def epoch_done(self, seconds: float) -> None:
        self.epoch_times.append(seconds)
        self.progress()

    def limit_s(self) -> float:
        if self.fixed_s > 0:
            return self.fixed_s
        if not self.epoch_times:
            return self.floor_s
        return max(self.floor_s, EPOCHS_FACTOR * statistics.median(self.epoch_times))

    def start(self) -> None:
        self.last = time.monotonic()
        threading.Thread(target=self._watch, daemon=True, name="watchdog").start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(min(30.0, max(0.05, self.limit_s() / 10))):
            idle, limit = time.monotonic() - self.last, self.limit_s()
            if idle > limit:
                self.on_stall(idle, limit)
                return
