"""The Results screen as the paper's table (Pilot): the pivot of two spec paths with its
keys and baseline, partial groups as the mean of their finished seeds, groups labelled by
what differs between them; and curves of several groups or runs on one chart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Select, Static, Tabs
from tuikit import NOW, build_workspace, grid_lines, hold_crash_detection, until

from kdtui import launcher
from kdtui.results import build_pivot, group_rows, group_specs
from kdtui.results.pivot import to_json
from kdtui.screens.curves import (
    Curve,
    CurvesScreen,
    band_points,
    epoch_values,
    metrics_of,
)
from kdtui.screens.results import PivotDialog, ResultsScreen, curve_runs, row_cells
from kdtui.screens.runs import RunsScreen
from kdtui.spec import validate_spec
from kdtui.store import Store, fold_event, initial_summary
from kdtui.tui.app import KdApp
from kdtui.widgets import Grid

SIZE = (80, 24)
DATA = {"dataset": "basicmotions", "channels": [0, 1, 2]}
SIGNAL = {"depth": 16, "width": 1, "view": "signal"}
GAF = {"depth": 16, "width": 3, "view": {"kind": "gaf", "image_size": 32}}


def kd(name: str, T: float) -> dict[str, Any]:
    return {
        "name": name,
        "data": DATA,
        "student": SIGNAL,
        "teachers": [{"experiment": "gaf-teacher"}],
        "loss": {"ce": 0.3, "kd": {"T": T, "weight": 0.7}},
        "epochs": 6,
    }


# Two KD students that differ only in T: the "same cut label at 80 columns".
STUDY = [
    {"name": "gaf-teacher", "data": DATA, "student": GAF, "epochs": 6},
    {"name": "signal-baseline", "data": DATA, "student": SIGNAL, "epochs": 6},
    kd("kd-gaf-wrn16-3-to-signal-a", 4),
    kd("kd-gaf-wrn16-3-to-signal-b", 8),
]
# Final best accuracy per (experiment, seed); None: still running (3 of 6 epochs).
BEST = {
    "gaf-teacher": [86.0, 88.0, 87.0],
    "signal-baseline": [80.0, 81.0, 79.0],
    "kd-gaf-wrn16-3-to-signal-a": [83.0, 84.0, None],
    "kd-gaf-wrn16-3-to-signal-b": [82.0, 82.5, 83.5],
}


def _epochs(name: str, seed: int, best: float, reached: int) -> list[dict[str, Any]]:
    """Epoch events climbing to ``best`` at epoch 6, with the loss and its parts."""
    events = []
    for epoch in range(1, reached + 1):
        acc = round(best - 30 * (6 - epoch) / 6, 3)
        loss = round(1.5 / epoch + 0.01 * seed, 4)
        parts = {"ce": round(0.3 * loss, 4)}
        if name.startswith("kd"):
            parts["kd"] = round(0.7 * loss, 4)
        events.append(
            {"type": "epoch", "time": NOW, "epoch": epoch, "acc": acc, "train_loss": loss}
            | {"parts": parts, "nll": loss, "ece": 0.05, "lr": 0.05, "seconds": 1.0}
        )
    return events


def build_study(root: Path, experiments: list[dict[str, Any]] = STUDY) -> Store:
    store = Store(root)
    plans = launcher.plan(validate_spec({"experiments": experiments}, base_dir=root))
    docs, files = [], {}
    for i, rs in enumerate(plans):
        name, seed = rs["experiment"]["name"], rs["seed"]
        rs["run_id"], rs["created"] = f"{name}-s{seed}", NOW - 3600 + i * 60
        best = BEST[name][seed]
        events: list[dict[str, Any]] = [{"type": "start", "time": NOW, "host": "lab"}]
        events += _epochs(name, seed, best if best is not None else 80.0, 6 if best else 3)
        if best is not None:
            events.append({"type": "end", "time": NOW, "status": "done"})
        doc = initial_summary(rs)
        for event in events:
            fold_event(doc, event)
        docs.append(doc)
        files[rs["run_id"]] = events
    store.add_runs(docs, {rs["run_id"]: rs for rs in plans})
    for run_id, events in files.items():
        text = "".join(json.dumps(e) + "\n" for e in events)
        (store.run_dir(run_id) / "events.jsonl").write_text(text)
    return store


@pytest.fixture(autouse=True)
def _no_crash_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    hold_crash_detection(monkeypatch)


def make_app(root: Path) -> KdApp:
    return KdApp(root, clock=lambda: NOW, devices="cpu ×2", poll_s=0.05)


def grid(app: KdApp) -> Grid:
    return app.screen.query_one(Grid)


def on_screen(app: KdApp) -> list[str]:
    """The Grid's lines as the terminal shows them (cut to its width)."""
    g = grid(app)
    return [
        "".join(segment.text for segment in g.render_line(y))
        for y in range(min(g.size.height, len(g.order) + 1))
    ]


def text_of(app: KdApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def open_results(pilot: Any, groups: int) -> ResultsScreen:
    app = pilot.app
    await until(pilot, lambda: len(grid(app).order) > 0, "the runs")
    await pilot.press("3")
    screen = app.screen
    assert isinstance(screen, ResultsScreen)
    await until(pilot, lambda: len(grid(app).order) == groups, f"{groups} groups")
    await until(pilot, lambda: screen.differs[0], "the groups' specs")
    return screen


# ---------------------------------------------------------------------- partial groups


def test_a_partial_group_shows_its_finished_seeds_mean_marked():
    runs = [
        {"run_id": f"r{s}", "name": "g", "group_key": "k", "seed": s, "status": st, "best_acc": a}
        for s, st, a in ((0, "done", 55.0), (1, "running", None), (2, "cancelled", None))
    ]
    (row,) = group_rows(runs)
    cells = row_cells(row, [0, 1, 2], best=True, marked=False)
    assert cells[3:7] == ("55.00", "…", "⊘", "55.00 ± –* · 1 cancelled")
    assert cells[-2:] == ("55.00", "55.00")  # min and max of what finished
    (waiting,) = group_rows([runs[1]])
    assert row_cells(waiting, [1], best=True, marked=False)[3:5] == ("…", "–")


async def test_partial_groups_show_the_mean_so_far_then_the_final_one(tmp_path: Path) -> None:
    store = build_workspace(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, 4)
        rows = dict(
            zip(
                [screen._shown[k].name for k in grid(app).order], grid_lines(grid(app)), strict=True
            )
        )
        assert "85.56 ± 0.52*" in rows["kd-gaf-to-signal"]  # 2 of its 3 seeds
        assert " – " in rows["two-teachers"] + " "  # nothing finished: no mean at all
        legend = text_of(app, "#legend")
        # where best was chosen first (the demo has no data.val), then the partial groups
        assert legend.startswith(
            "best epoch chosen on the test set (no validation split: data.val) · "
            "* mean of the seeds finished so far"
        )
        assert "kd-gaf-to-signal: 2 of 3 seeds finished" in legend
        assert "two-teachers: 0 of 2 seeds finished" in legend
        assert "seeds finished" in " ".join(on_screen(app) + [legend])  # said at 80 columns
        store.record_event("kd-gaf-to-signal-s2", {"type": "epoch", "epoch": 30, "acc": 90.0})
        store.record_event("kd-gaf-to-signal-s2", {"type": "end", "status": "done"})
        await until(
            pilot,
            lambda: any("87.04 ± 2.59 " in line for line in grid_lines(grid(app))),
            "the final mean",
        )
        assert "kd-gaf-to-signal" not in text_of(app, "#legend")


# ---------------------------------------------------------------------- labels


async def test_groups_that_differ_only_in_T_keep_apart_at_80_columns(tmp_path: Path) -> None:
    store = build_study(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await open_results(pilot, 4)
        await until(pilot, lambda: "T=8" in " ".join(grid_lines(grid(app))), "the labels")
        lines = on_screen(app)
        assert grid(app).labels[-3] == "loss · student"  # the paths that tell them apart
        a = next(line for line in lines if "-a " in line)
        b = next(line for line in lines if "-b " in line)
        assert "CE+KD(T=4" in a and "CE+KD(T=8" in b, (a, b)  # cut, but not before T
        cells = {grid(app).cells[k][1]: grid(app).cells[k][-3] for k in grid(app).order}
        assert cells["gaf-teacher"] == "CE · WRN16-3(gaf)"
        assert cells["kd-gaf-wrn16-3-to-signal-b"] == "CE+KD(T=8,w=0.7) · WRN16-1(signal)"


# ---------------------------------------------------------------------- the pivot


async def test_pivot_keys_lay_the_groups_out_as_the_cli_does(tmp_path: Path) -> None:
    store = build_study(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_results(pilot, 4)
        await pilot.press("p")
        dialog = await until(
            pilot, lambda: isinstance(app.screen, PivotDialog) and app.screen, "the dialog"
        )
        rows_select, cols_select = (
            dialog.query_one("#rows", Select),
            dialog.query_one("#cols", Select),
        )
        assert (rows_select.value, cols_select.value) == ("teachers", "loss")  # the KD table
        assert dialog.choices[:3] == ["student", "loss", "teachers"]
        assert "loss.kd.T" in dialog.choices
        rows_select.value, cols_select.value = "student", "loss.kd.T"
        await pilot.press("enter")  # on "Show pivot"
        await until(pilot, lambda: grid(app).order[0].startswith("pivot:"), "the pivot")
        assert grid(app).labels[1:] == ["student \\ loss.kd.T", "–", "4", "8"]
        lines = grid_lines(grid(app))
        assert lines[0] == " WRN16-3(gaf) 87.00 ± 1.00 (3) ▲  "
        assert lines[1] == (
            " WRN16-1(signal) 80.00 ± 1.00 (3) 83.50 ± 0.71 (2)* ▲ 82.67 ± 0.76 (3) ▲"
        )
        # the same numbers as kdtui table --rows student --cols loss.kd.T --format json
        runs = store.runs()
        cli = to_json(
            build_pivot(group_rows(runs), group_specs(store, runs), "student", "loss.kd.T")
        )
        assert [(c["row"], c["col"], c["mean"]) for c in cli["cells"]] == [
            ("WRN16-3(gaf)", "–", 87.0),
            ("WRN16-1(signal)", "–", 80.0),
            ("WRN16-1(signal)", "4", 83.5),
            ("WRN16-1(signal)", "8", pytest.approx(82.6667, abs=1e-4)),
        ]
        assert "a: 2 of 3 seeds finished" in text_of(app, "#legend")
        assert "student × loss.kd.T" in text_of(app, "#summary")
        await pilot.press("b")  # last epoch: built again
        await until(pilot, lambda: "LAST" in text_of(app, "#summary"), "the last epoch")
        await pilot.press("o")  # a pivot keeps its order: no sorting
        assert grid(app).order[0] == "pivot:0"

        await pilot.press("p")  # back to one row per group
        await until(pilot, lambda: not grid(app).order[0].startswith("pivot:"), "flat")
        await pilot.press("b")
        await until(pilot, lambda: "BEST" in text_of(app, "#summary"), "the best epoch")
        base = next(k for k in grid(app).order if screen._shown[k].name == "signal-baseline")
        grid(app).cursor = grid(app).order.index(base)
        await pilot.press("B")  # the group under the cursor is the baseline
        await until(pilot, lambda: "Δ" in grid(app).labels, "the Δ column")
        deltas = {grid(app).cells[k][1]: grid(app).cells[k][7] for k in grid(app).order}
        assert deltas == {
            "gaf-teacher": "+7.00",
            "signal-baseline": "base",
            "kd-gaf-wrn16-3-to-signal-a": "+3.50",
            "kd-gaf-wrn16-3-to-signal-b": "+2.67",
        }
        await pilot.press("p")
        dialog = await until(
            pilot, lambda: isinstance(app.screen, PivotDialog) and app.screen, "the dialog"
        )
        assert dialog.query_one("#baseline", Select).value == base  # kept
        assert (
            dialog.query_one("#rows", Select).value,
            dialog.query_one("#cols", Select).value,
        ) == (
            "student",
            "loss.kd.T",
        )  # the last choice
        await pilot.press("enter")
        await until(pilot, lambda: "base" in " ".join(grid_lines(grid(app))), "the Δ")
        lines = grid_lines(grid(app))
        assert lines[0].endswith("87.00 ± 1.00 (3) ▲ +7.00  ")
        assert "80.00 ± 1.00 (3) base" in lines[1] and "(2)* ▲ +3.50" in lines[1]
        assert "Δ: mean − the mean of baseline signal-baseline (80.00)" in text_of(app, "#legend")
        await pilot.press("x")  # the pivot as markdown, as kdtui table --format markdown
        export = await until(pilot, lambda: list(store.root.glob("results-*.md")), "the export")
    assert export[0].read_text().startswith("| student \\ loss.kd.T | – | 4 | 8 |")


async def test_the_pivot_dialog_refuses_one_path_twice_and_escape_leaves_it(
    tmp_path: Path,
) -> None:
    """The dialog frame shared with Prompt: a refused answer is said in the dialog, which
    stays open as it was; escape answers None and the flat table stays."""
    app = make_app(build_study(tmp_path / "ws").root)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_results(pilot, 4)
        await pilot.press("p")
        dialog = await until(
            pilot, lambda: isinstance(app.screen, PivotDialog) and app.screen, "the dialog"
        )
        error = dialog.query_one("#error", Static)
        assert not error.display
        dialog.query_one("#cols", Select).value = dialog.query_one("#rows", Select).value
        await pilot.press("enter")  # on "Show pivot"
        await until(pilot, lambda: error.display, "the dialog's error")
        assert "same path" in str(error.render()) and app.screen is dialog
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "the results again")
        assert not screen.pivoting


async def test_a_pivot_that_no_longer_fits_the_filter_says_why(tmp_path: Path) -> None:
    store = build_study(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await open_results(pilot, 4)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PivotDialog), "the dialog")
        await pilot.press("enter")  # teachers × loss
        await until(pilot, lambda: grid(app).order[0].startswith("pivot:"), "the pivot")
        await pilot.press("slash", "k", "d", "enter")  # both KD students: one teacher
        await until(pilot, lambda: "pivot: rows teachers" in text_of(app, "#summary"), "why")
        assert "the same in every group" in text_of(app, "#summary")
        assert len(grid(app).order) == 2 and not grid(app).order[0].startswith("pivot:")
        await pilot.press("escape")  # the filter cleared: the pivot is back
        await until(pilot, lambda: grid(app).order[0].startswith("pivot:"), "the pivot again")


# ---------------------------------------------------------------------- curves


def test_curves_average_the_seeds_per_epoch_with_their_std():
    runs = [{1: 50.0, 2: 60.0, 3: 70.0}, {1: 54.0, 2: 64.0}, {}]
    curve = Curve.of("g", runs)
    assert (curve.runs, curve.epochs, curve.mean) == (2, [1, 2, 3], [52.0, 62.0, 70.0])
    assert curve.std[:2] == [pytest.approx(math.sqrt(8))] * 2 and curve.std[2] is None
    assert curve.band() == [
        (1, 52 - math.sqrt(8), 52 + math.sqrt(8)),
        (2, 62 - math.sqrt(8), 62 + math.sqrt(8)),
    ]
    xs, ys = band_points([(1, 50.0, 54.0), (3, 60.0, 64.0)], x_step=0.5, y_step=1.0)
    assert min(xs) == 1 and max(xs) == 3 and len(set(xs)) == 5  # every half epoch
    assert all(
        lo <= y <= hi
        for x, y in zip(xs, ys, strict=True)
        for lo, hi in [(50 + 5 * (x - 1), 54 + 5 * (x - 1))]
    )


def test_metrics_are_read_from_the_epoch_events_with_their_loss_parts():
    events = [
        {
            "type": "epoch",
            "epoch": 1,
            "acc": 50.0,
            "train_loss": 1.0,
            "parts": {"ce": 0.3, "at": 0.7},
        },
        {"type": "epoch", "epoch": 2, "acc": float("nan"), "train_loss": 0.5, "nll": 0.9},
        {"type": "epoch", "epoch": 2, "acc": 61.0, "parts": {"ce": 0.2, "kd": None}},  # resumed
    ]
    assert metrics_of([events]) == ["acc", "train_loss", "parts.ce", "parts.at", "nll"]
    assert epoch_values(events, "acc") == {1: 50.0, 2: 61.0}
    assert epoch_values(events, "parts.ce") == {1: 0.3, 2: 0.2}
    assert epoch_values(events, "parts.kd") == {}


def test_a_groups_curve_comes_from_the_runs_its_numbers_come_from():
    runs = [
        {"run_id": "a", "group_key": "k", "seed": 0, "status": "done", "created": 1},
        {"run_id": "b", "group_key": "k", "seed": 0, "status": "failed", "created": 2},
        {"run_id": "c", "group_key": "k", "seed": 1, "status": "running", "created": 3},
        {"run_id": "d", "group_key": "k", "seed": 2, "status": "crashed", "created": 4},
        {"run_id": "e", "group_key": "other", "seed": 0, "status": "done", "created": 5},
    ]
    assert curve_runs(runs, "k") == ["a", "c"]


async def test_curves_of_selected_groups_and_of_selected_runs(tmp_path: Path) -> None:
    store = build_study(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, 4)
        names = [screen._shown[k].name for k in grid(app).order]
        for name in ("signal-baseline", "kd-gaf-wrn16-3-to-signal-a"):
            grid(app).cursor = names.index(name)
            await pilot.press("space")
        await pilot.press("c")
        curves = await until(
            pilot, lambda: isinstance(app.screen, CurvesScreen) and app.screen, "the curves"
        )
        tabs = curves.query_one(Tabs)
        await until(pilot, lambda: tabs.tab_count == 6, "a tab per metric")
        labels = [str(t.label) for t in tabs.query("Tab")]
        assert labels == ["test acc %", "train loss", "CE", "KD", "test NLL", "test ECE"]
        base, kd_a = curves.series()
        assert (base.name, base.runs, base.epochs) == ("signal-baseline", 3, [1, 2, 3, 4, 5, 6])
        assert base.mean[-1] == pytest.approx(80.0) and base.std[-1] == pytest.approx(1.0)
        assert (kd_a.runs, kd_a.mean[-1], kd_a.std[-1]) == (
            3,
            pytest.approx(83.5),
            pytest.approx(0.7071, abs=1e-4),
        )
        assert kd_a.std[2] is not None  # the running seed counts up to where it is
        legend = str(curves.query_one("#legend", Static).render())
        assert "signal-baseline (n=3)" in legend and "kd-gaf-wrn16-3-to-signal-a (n=3)" in legend
        await pilot.press("m", "m", "m")  # to KD: the baseline logs none
        await until(pilot, lambda: curves.metric == "parts.kd", "the KD tab")
        legend = str(curves.query_one("#legend", Static).render())
        assert "signal-baseline (no KD)" in legend
        await pilot.press("s")  # each run on its own
        assert len(curves.series()) == 6
        await pilot.press("escape", "1")
        assert isinstance(app.screen, RunsScreen)
        await until(pilot, lambda: len(grid(app).order) == 12, "the runs")
        order = grid(app).order
        for run_id in ("gaf-teacher-s0", "signal-baseline-s1"):
            grid(app).cursor = order.index(run_id)
            await pilot.press("space")
        await pilot.press("c")
        curves = await until(
            pilot, lambda: isinstance(app.screen, CurvesScreen) and app.screen, "run curves"
        )
        await until(pilot, lambda: curves.epochs, "the events")
        names = [c.name for c in curves.series()]
        assert names == ["signal-baseline s1", "gaf-teacher s0"]  # in the table's order
        assert curves.sub_title == "2 runs"
        await pilot.press("s")  # runs picked one by one: no mean, no band, nothing to split
        assert len(curves.series()) == 2 and not curves.seeds
        assert "band" not in str(curves.query_one("#legend", Static).render())


async def test_one_group_is_read_once_not_over_and_over(tmp_path: Path) -> None:
    """Nothing tells a lone group apart from others: its spec is read once all the same."""
    store = build_study(tmp_path / "ws", STUDY[:1])
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(grid(app).order) > 0, "the runs")
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, ResultsScreen)
        await until(pilot, lambda: screen.specs and screen._spec_reader.is_finished, "specs")
        reader = screen._spec_reader
        for i in range(3):  # the store changes, the groups do not: nothing to read again
            snapshot = app.snapshot
            store.add_todo(f"todo {i}")
            await until(pilot, lambda s=snapshot: app.snapshot is not s, "a new snapshot")
            await pilot.pause(0.05)
        assert screen._spec_reader is reader


async def test_a_click_on_a_column_title_sorts_the_table_not_the_pivot(tmp_path: Path) -> None:
    store = build_study(tmp_path / "ws")
    app = make_app(store.root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, 4)
        g = grid(app)
        g.post_message(Grid.HeaderClicked(g, "mean"))
        await until(pilot, lambda: screen.sort_column == "mean", "the sort")
        await pilot.pause(0.1)
        assert not screen.sort_reverse  # one click: ascending (not sorted twice)
        assert [g.cells[k][1] for k in g.order] == [
            "signal-baseline",
            "kd-gaf-wrn16-3-to-signal-b",
            "kd-gaf-wrn16-3-to-signal-a",
            "gaf-teacher",
        ]
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PivotDialog), "the dialog")
        await pilot.press("enter")
        await until(pilot, lambda: grid(app).order[0].startswith("pivot:"), "the pivot")
        rows = list(grid(app).order)
        g.post_message(Grid.HeaderClicked(g, "c0"))
        await pilot.pause(0.2)
        assert (screen.sort_column, screen.sort_reverse, grid(app).order) == ("mean", False, rows)
