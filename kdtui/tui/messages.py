"""What screens ask of the app. A screen posts one of these (from a worker thread too:
``post_message`` is thread-safe); it bubbles up to the app, which owns the navigation and
the polling, so no screen needs to know the app or another screen."""

from __future__ import annotations

from textual.message import Message


class OpenRun(Message):
    """Show one run's detail on top of the current screen."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class ShowRuns(Message):
    """Go to the runs screen with its filter set to ``text`` (a group's runs, or the runs
    just launched), closing any detail left open on it."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class EditRunAsNew(Message):
    """Open the composer on a run's frozen experiment, to edit it into a new one."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class StoreWritten(Message):
    """A screen wrote to the store: poll now, so every screen shows it at once."""


class CompareRuns(Message):
    """Compare two runs' insides: B's confusion and per-class accuracy against A's."""

    def __init__(self, run_a: str, run_b: str) -> None:
        super().__init__()
        self.run_a = run_a
        self.run_b = run_b


class ShowCurves(Message):
    """Plot these curves together on one chart: each (name, run ids), a group of seeds
    drawn as its mean with a ± std band, or a single run."""

    def __init__(self, curves: list[tuple[str, list[str]]]) -> None:
        super().__init__()
        self.curves = curves
