"""SVG snapshots of every screen at 80×24 and at a wide size (pytest-textual-snapshot).

The demo workspace is fixed (tests/tuikit.py) and the app's clock is frozen, so the
pictures only change when the app does. After a deliberate change, look at the report and
accept with ``pytest tests/test_app_snapshots.py --snapshot-update``.

The README's screenshots come from the same workspace:
``KDTUI_SCREENSHOTS=1 pytest tests/test_app_snapshots.py -k readme`` rewrites
docs/screenshots/<screen>.svg.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from textual.pilot import Pilot
from tuikit import NOW, SCREENS, STALE_ENV, build_workspace, checked, settle, show, until

from kdtui import launcher
from kdtui.screens import compose
from kdtui.tui.app import KdApp

SIZES = {"80x24": (80, 24), "wide": (140, 40)}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo workspace as ./ws, so the header shows the same path on every machine."""
    for key, value in STALE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(launcher, "revive_runner", lambda store: 0)  # queued runs stay so
    monkeypatch.setattr(compose, "slurm_here", lambda: False)  # the same on every machine
    monkeypatch.chdir(tmp_path)
    build_workspace(Path("ws"))
    return Path("ws")


def demo_app(workspace: Path) -> KdApp:
    return KdApp(workspace, clock=lambda: NOW, devices="GPU 0,1 ×2")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, demo: Path, screen: str, size: str) -> None:
    async def go(pilot: Pilot) -> None:
        await show(pilot, screen)

    assert snap_compare(demo_app(demo), terminal_size=SIZES[size], run_before=go)


def test_results_in_the_light_theme(snap_compare, demo: Path) -> None:
    async def go(pilot: Pilot) -> None:
        pilot.app.theme = "textual-light"
        await show(pilot, "results")

    assert snap_compare(demo_app(demo), run_before=go)


async def show_pivot(pilot: Pilot) -> None:
    """The results as teachers × loss, Δ to signal-student (its row the third)."""
    await show(pilot, "results")
    app, screen = pilot.app, pilot.app.screen
    await until(pilot, lambda: screen.differs[0], "the groups' specs")
    await pilot.press("down", "B", "p")
    await until(pilot, lambda: app.screen is not screen, "the pivot dialog")
    await pilot.press("enter")
    await until(pilot, lambda: "+6.33" in " ".join(screen.grid.cells.get("pivot:0", ())), "Δ")
    app.clear_notifications()
    await pilot.pause(0.1)


async def show_curves(pilot: Pilot) -> None:
    """The curves of the three groups with finished seeds, together."""
    from kdtui.screens.curves import CurvesScreen

    await show(pilot, "results")
    await pilot.press("space", "down", "space", "down", "space", "c")
    app = pilot.app
    curves = await until(pilot, lambda: isinstance(app.screen, CurvesScreen) and app.screen, "c")
    await until(pilot, lambda: len(curves.epochs) == 8 and curves.query("Tab"), "the events")
    await pilot.wait_for_scheduled_animations()  # the active tab's underline slides in
    await pilot.wait_for_animation()
    await pilot.pause(0.1)


async def show_study(pilot: Pilot) -> None:
    """The composer on examples/study.json, its KD-from-each-teacher experiment selected."""
    from kdtui.screens.compose_file import SpecDoc

    await show(pilot, "compose")
    screen = pilot.app.screen
    study = Path(__file__).resolve().parent.parent / "examples" / "study.json"
    await screen.load_doc(SpecDoc.from_raw(json.loads(study.read_text()), study), study.parent)
    await checked(pilot, screen)
    screen.query_one("#entries").highlighted = 4  # kd-{teachers[0].experiment}
    await until(pilot, lambda: screen.selected == 3, "the experiment")
    await checked(pilot, screen)
    await settle(pilot)


def test_compose_a_study(snap_compare, demo: Path) -> None:
    """The composer on a study at 80×24: the file's entries, the grid, the counts."""

    async def go(pilot: Pilot) -> None:
        await show_study(pilot)

    assert snap_compare(demo_app(demo), terminal_size=SIZES["80x24"], run_before=go)


def test_results_pivot(snap_compare, demo: Path) -> None:
    """The pivot at 80×24: teachers × loss, signal-student as the baseline."""

    async def go(pilot: Pilot) -> None:
        await show_pivot(pilot)

    assert snap_compare(demo_app(demo), terminal_size=SIZES["80x24"], run_before=go)


def test_curves_together(snap_compare, demo: Path) -> None:
    """Three groups' test accuracy on one chart at 80×24: means, ± std bands, legend."""

    async def go(pilot: Pilot) -> None:
        await show_curves(pilot)

    assert snap_compare(demo_app(demo), terminal_size=SIZES["80x24"], run_before=go)


def test_help(snap_compare, demo: Path) -> None:
    async def go(pilot: Pilot) -> None:
        await show(pilot, "runs")
        await pilot.press("question_mark")

    assert snap_compare(demo_app(demo), run_before=go)


@pytest.mark.skipif(
    not os.environ.get("KDTUI_SCREENSHOTS"),
    reason="regenerates docs/screenshots: KDTUI_SCREENSHOTS=1 pytest tests/test_app_snapshots.py -k readme",
)
def test_readme_screenshots(demo: Path, only: tuple[str, ...] = ()) -> None:
    """Every screen, then the results' pivot and the curves of three groups; ``only``:
    these names alone."""
    DOCS.mkdir(parents=True, exist_ok=True)
    extra = {"compose": show_study, "results-pivot": show_pivot, "curves": show_curves}
    for screen in [s for s in dict.fromkeys((*SCREENS, *extra)) if not only or s in only]:

        async def shoot(pilot: Pilot, screen: str = screen) -> None:
            await (extra[screen](pilot) if screen in extra else show(pilot, screen))
            pilot.app.exit(pilot.app.export_screenshot(title=f"kdtui · {screen}"))

        svg = demo_app(demo).run(headless=True, size=(110, 32), auto_pilot=shoot)
        assert svg
        (DOCS / f"{screen}.svg").write_text(svg)
