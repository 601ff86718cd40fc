"""A fixed workspace for the TUI's tests, snapshots and README screenshots.

Everything in it is deterministic: run ids, creation times, event times, accuracies, logs.
The app is opened with ``clock=lambda: NOW`` so ages never move, and the tests set
``KDTUI_HEARTBEAT_STALE_S`` high so crash detection leaves the "running" runs alone.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widgets import Static

from kdtui import launcher
from kdtui.spec import validate_spec
from kdtui.store import Store, fold_event, initial_summary
from kdtui.tui.app import KdApp
from kdtui.widgets import Grid

NOW = 1_750_000_000.0  # 2025-06-15, the frozen "now" of every screenshot
HOST = "lab-gpu-01"  # not this machine: crash detection goes by heartbeat only
STALE_ENV = {"KDTUI_HEARTBEAT_STALE_S": "1e12"}


def hold_crash_detection(monkeypatch: Any) -> None:
    """The fixed workspace's "running" runs stay running and its queued runs queued: no
    heartbeat goes stale and no queue runner is started (call from an autouse fixture)."""
    for key, value in STALE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(launcher, "revive_runner", lambda store: 0)


DATA = {"dataset": "basicmotions", "channels": [0, 1, 2]}
SIGNAL = {"depth": 16, "width": 1, "view": "signal"}
GAF = {"depth": 16, "width": 3, "view": {"kind": "gaf", "image_size": 32}}
EXPERIMENTS: list[dict[str, Any]] = [
    {"name": "gaf-teacher", "data": DATA, "student": GAF, "epochs": 20},
    {"name": "signal-student", "data": DATA, "student": SIGNAL, "epochs": 30},
    {
        "name": "kd-gaf-to-signal",
        "data": DATA,
        "student": SIGNAL,
        "teachers": [{"experiment": "gaf-teacher"}],
        "loss": {"ce": 0.3, "kd": {"T": 4, "weight": 0.7}},
        "epochs": 30,
    },
    {
        "name": "two-teachers",
        "data": DATA,
        "student": SIGNAL,
        "teachers": [
            {"experiment": "signal-student", "weight": 0.5},
            {"experiment": "gaf-teacher", "weight": 0.5},
        ],
        "loss": {"ce": 0.3, "kd": {"T": 4, "weight": 0.7}},
        "epochs": 30,
        "seeds": [0, 1],
    },
]
# What became of each run (experiment, seed): final status and epochs reached.
FATES: dict[tuple[str, int], tuple[str, int]] = {
    ("gaf-teacher", 0): ("done", 20),
    ("gaf-teacher", 1): ("done", 20),
    ("gaf-teacher", 2): ("done", 20),
    ("signal-student", 0): ("done", 30),
    ("signal-student", 1): ("done", 30),
    ("signal-student", 2): ("failed", 3),
    ("kd-gaf-to-signal", 0): ("done", 30),
    ("kd-gaf-to-signal", 1): ("done", 30),
    ("kd-gaf-to-signal", 2): ("running", 12),
    ("two-teachers", 0): ("queued", 0),
    ("two-teachers", 1): ("queued", 0),
}


def accuracy(name: str, seed: int, epoch: int) -> float:
    """A plausible learning curve, different per experiment and seed."""
    ceiling = {"gaf-teacher": 86, "signal-student": 78, "kd-gaf-to-signal": 83}.get(name, 80)
    value = ceiling * (1 - math.exp(-epoch / 5)) + 2.5 * math.sin(0.9 * epoch + 2 * seed) + seed
    return round(min(100.0, max(0.0, value)), 2)


def build_workspace(root: Path) -> Store:
    """The demo workspace: 11 runs of 4 experiments, three todos. Events are folded into
    the summaries in memory and written once (recording them one by one, each with its
    fsyncs, would take seconds)."""
    store = Store(root)
    loaded = validate_spec({"experiments": EXPERIMENTS}, base_dir=root)
    plans = launcher.plan(loaded)
    histories = {}
    for i, rs in enumerate(plans):
        rs["run_id"] = f"{rs['experiment']['name']}-s{rs['seed']}"
        rs["created"] = NOW - 3 * 3600 + i * 600
        histories[rs["run_id"]] = _history(rs)
    docs = []
    for rs in plans:
        doc = initial_summary(rs)
        for event in histories[rs["run_id"]][0]:
            fold_event(doc, event)
        docs.append(doc)
    store.add_runs(docs, {rs["run_id"]: rs for rs in plans})
    for run_id, (events, log) in histories.items():
        run_dir = store.run_dir(run_id)
        (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
        if log:
            (run_dir / "stdout.log").write_text("\n".join(log) + "\n")
    store.add_todo("GAF teacher WRN16-3, 3 seeds", group="gaf-teacher", target=3, created=NOW)
    store.add_todo("KD GAF → signal, 3 seeds", group="kd-gaf-to-signal", target=3, created=NOW)
    store.add_todo("compare AT and SP on the two-teacher setup", created=NOW)
    return store


def _history(rs: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The events and log lines of one run, as its engine would have written them."""
    name, seed = rs["experiment"]["name"], rs["seed"]
    status, reached = FATES[(name, seed)]
    if status == "queued":
        return [], []
    t = rs["created"] + 60
    teachers = [
        {
            "run_id": f"{need['name']}-s{seed}",
            "checkpoint": f"/runs/{need['name']}-s{seed}/ckpt/best.pt",
            "model": "WRN16-3(gaf)" if need["name"] == "gaf-teacher" else "WRN16-1(signal)",
            "weight": 1.0,
        }
        for need in rs["needs"]
    ]
    start = {"type": "start", "time": t, "host": HOST, "device": "cuda:0"}
    events = [start | {"epochs": rs["experiment"]["epochs"], "teacher_runs": teachers}]
    log = ["[12:00:00] data basicmotions: train (40, 3, 100), test (40, 3, 100), 4 classes"]
    for epoch in range(1, reached + 1):
        acc = accuracy(name, seed, epoch)
        loss = round(1.4 * math.exp(-epoch / 6) + 0.05 * (epoch % 3), 4)
        event = {"type": "epoch", "time": t + epoch * 10, "epoch": epoch, "acc": acc}
        event |= {"train_loss": loss, "nll": loss, "ece": 0.05, "lr": 0.05, "seconds": 9.5}
        events.append(event)
        log.append(
            f"[12:{epoch // 6:02d}:{epoch * 10 % 60:02d}] epoch {epoch}: test acc {acc:.2f}%"
        )
    if status == "failed":
        reason = "diverged at epoch 4 (train loss nan)"
        events.append({"type": "error", "time": t + 40, "message": reason})
        log.append(f"RuntimeError: {reason}")
    elif status == "done":
        events.append({"type": "end", "time": t + reached * 10, "status": "done"})
        log.append("[12:05:00] done")
    return events, log


async def until(pilot: Pilot, check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Let the app run until ``check()`` is true (polls, workers and repaints included).

    Between looks the event loop simply runs the app: ``pilot.pause`` would also wait for
    every widget of the screen to be idle, each time, which on the composer's form costs
    more CPU than the app's own work — and the app shares the test's one thread."""
    app, deadline = pilot.app, time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except NoMatches:  # a screen still composing
            value = None
        if value:
            return value
        if not app.is_running:
            raise AssertionError(f"the app ended while waiting for {what}")
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def settle(pilot: Pilot) -> None:
    """Let what the last keys started run to its end — messages, workers (the store's reads
    and writes), animations — with no fixed sleep: before asserting that nothing happened."""
    await pilot.app.workers.wait_for_complete()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def checked(pilot: Pilot, screen: Any) -> list[Any]:
    """Wait until the composer shows the check of what its form holds now (an edit made
    a moment ago may not have started its check yet); its problems."""

    def done() -> bool:
        value = screen.form_value()
        return not screen.checking and value is not None and screen.checked == value

    await until(pilot, done, "the check of the form")
    return screen.problems or []


SCREENS = ("runs", "run-detail", "compose", "results", "todo")


async def show(pilot: Pilot, name: str) -> None:
    """Go to one of SCREENS on the demo workspace and wait until it has all its data."""
    from kdtui.screens.compose import ComposeScreen
    from kdtui.screens.run_detail import RunDetailScreen

    app = pilot.app
    assert isinstance(app, KdApp)
    await until(pilot, lambda: len(app.screen.query_one(Grid).order) == 11, "the runs")
    if name == "run-detail":
        app.open_run("kd-gaf-to-signal-s2")
        detail = await until(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen, "detail"
        )
        await until(pilot, lambda: detail.query_one("Log").line_count > 5, "the log")
        await until(pilot, lambda: detail.query_one("#spec-json", Static).content, "the spec")
        await until(pilot, lambda: detail.query("#teachers Button"), "the teacher link")
    elif name != "runs":
        await pilot.press({"compose": "2", "results": "3", "todo": "4"}[name])
        grid = lambda: app.screen.query_one(Grid).order  # noqa: E731
        if name == "compose":
            screen = app.screen
            assert isinstance(screen, ComposeScreen)
            await checked(pilot, screen)
        else:
            await until(pilot, grid, name)
    await settle(pilot)


def grid_lines(grid: Grid) -> list[str]:
    """The text of every row the Grid holds, as its cells join on screen."""
    return [" ".join(grid.cells[key]) for key in grid.order]


def write_index(root: Path, runs: list[dict[str, Any]]) -> None:
    """An index with exactly these run summaries (for tests that need many runs)."""
    root.mkdir(parents=True, exist_ok=True)
    body = {"runs": {r["run_id"]: r for r in runs}, "todos": {}}
    (root / "kdtui.json").write_text(json.dumps(body))
