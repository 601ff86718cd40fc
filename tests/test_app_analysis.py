"""The app's looks inside a run: the run view's Analysis tab (confusion grid, reliability and
t-SNE plots, V-score, attention maps and GAF inputs as pictures, best ⇄ last), its Curves
tab's loss parts, and two runs' insides compared (runs screen: space, space, i).

The demo workspace (tuikit) gets analysis archives written here in the engine's format
(``kdtui.engine.inspect``: an uncompressed npz, read without pickle), from seeded arrays
shaped like basicmotions' test split — no torch, no training, so the tests stay fast.
Pictures are drawn in half-blocks (``KDTUI_PICTURES=halfcell``), as in tmux over SSH.
"""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Checkbox, Static
from textual_plotext import PlotextPlot
from tuikit import NOW, STALE_ENV, build_workspace, settle, until

from kdtui import launcher
from kdtui.analysis import data as analysis_data
from kdtui.analysis import numbers as analysis_numbers
from kdtui.screens import analysis
from kdtui.screens.analysis import AnalysisPane
from kdtui.screens.compare import CompareScreen
from kdtui.screens.run_detail import RunDetailScreen
from kdtui.store import Store
from kdtui.tui.app import KdApp
from kdtui.tui.messages import CompareRuns
from kdtui.widgets import Grid

SIZE = (80, 24)
CLASSES = ["Badminton", "Running", "Standing", "Walking"]
SIGNAL_VIEW = {"kind": "signal"}
GAF_VIEW = {"kind": "gaf", "method": "summation", "image_size": 32}
KD_RUN, BASELINE_RUN = "kd-gaf-to-signal-s1", "signal-student-s1"  # best at 27, last 30


def _gaf(series: np.ndarray) -> np.ndarray:
    """Gramian angular summation field of one series (what the teacher's view holds)."""
    x = np.interp(series, (series.min(), series.max()), (-1, 1))
    phi = np.arccos(np.clip(x, -1, 1))
    return np.cos(phi[:, None] + phi[None, :])


def _blob(shape: tuple[int, ...], centre: float, width: float) -> np.ndarray:
    """A smooth bump: an attention map that looks like one."""
    axes = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    d2 = sum((a - centre) ** 2 for a in axes)
    m = np.exp(-d2 / (2 * width**2)).astype(np.float32)
    return m / np.linalg.norm(m)


def write_archive(run_dir: Path, which: str, epoch: int, *, skill: float, teacher: bool) -> None:
    """A run's ``analysis/<which>.npz`` as the engine writes it: 40 test samples of 4
    classes, logits that are right about ``skill`` of the time, 16-d embeddings that cluster
    by class, the kept samples' attention maps (1-D for the signal student, 2-D for the GAF
    teacher) and their signal and GAF inputs."""
    rng = np.random.default_rng(epoch + (7 if teacher else 0))
    labels = np.repeat(np.arange(4), 10)
    n, k = len(labels), len(CLASSES)
    guess = np.where(rng.random(n) < skill, labels, rng.integers(0, k, n))
    logits = rng.normal(0, 1, (n, k)).astype(np.float32)
    logits[np.arange(n), guess] += 3.0
    centres = rng.normal(0, 2, (k, 16))
    emb = (centres[labels] + rng.normal(0, 2.5, (n, 16))).astype(np.float16)
    samples = np.array([0, 1, 10, 11, 20, 21, 30, 31], dtype=np.int64)
    t = np.linspace(0, 1, 100)
    signal = np.stack(
        [[np.sin(2 * np.pi * (1 + labels[i]) * t + c) for c in range(3)] for i in samples]
    )
    arrays: dict[str, Any] = {
        "logits": logits,
        "labels": labels,
        "emb": emb,
        "samples": samples,
        "pred_m0": guess[samples],
        "view_v0": signal.astype(np.float16),
    }
    for g, length in enumerate((100, 50, 25)):
        arrays[f"att_m0_g{g}"] = np.stack(
            [_blob((length,), 0.2 + 0.08 * j, 0.15) for j in range(len(samples))]
        ).astype(np.float16)
    models = [{"role": "student", "label": "WRN16-1(signal)", "view": 0, "source": None}]
    views = [SIGNAL_VIEW]
    if teacher:
        models.append(
            {"role": "teacher 1", "label": "WRN16-3(gaf)", "view": 1, "source": "gaf-teacher-s1"}
        )
        views.append(GAF_VIEW)
        arrays["view_v1"] = np.stack([[_gaf(ch) for ch in s] for s in signal]).astype(np.float16)
        arrays["pred_m1"] = labels[samples]
        for g, side in enumerate((32, 16, 8)):
            arrays[f"att_m1_g{g}"] = np.stack(
                [_blob((side, side), 0.25 + 0.07 * j, 0.2) for j in range(len(samples))]
            ).astype(np.float16)
    pred = logits.argmax(1)
    meta = {
        "format": 1, "classes": CLASSES, "channels": [0, 1, 2], "p": 2.0,
        "views": views, "models": models, "which": which, "epoch": epoch,
        "metrics": {"acc": float((pred == labels).mean() * 100)},
    }  # fmt: skip
    arrays["meta"] = np.array(json.dumps(meta))
    folder = run_dir / analysis_data.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{which}.npz.tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, folder / f"{which}.npz")  # as the engine: a reader sees old or new


def add_parts(run_dir: Path) -> None:
    """The epoch events with the loss's parts, as the engine logs them."""
    path = run_dir / "events.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    for e in events:
        if e["type"] == "epoch":
            loss = e["train_loss"]
            e["parts"] = {"ce": round(0.3 * loss, 4), "kd": round(0.7 * loss, 4)}
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


def build(root: Path) -> Store:
    """The demo workspace; its KD student and its baseline of seed 1 kept analysis data."""
    store = build_workspace(root)
    kd, base = store.run_dir(KD_RUN), store.run_dir(BASELINE_RUN)
    write_archive(kd, "best", 27, skill=0.85, teacher=True)
    write_archive(kd, "last", 30, skill=0.8, teacher=True)
    write_archive(base, "best", 27, skill=0.78, teacher=False)
    write_archive(base, "last", 30, skill=0.72, teacher=False)
    add_parts(kd)
    return store


@pytest.fixture(autouse=True)
def _setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in STALE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KDTUI_PICTURES", "halfcell")
    monkeypatch.setattr(launcher, "revive_runner", lambda store: 0)
    analysis._cache.clear()


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The workspace as ./ws, so the header shows the same path on every machine."""
    monkeypatch.chdir(tmp_path)
    build(Path("ws"))
    return Path("ws")


def make_app(root: Path) -> KdApp:
    return KdApp(root, clock=lambda: NOW, devices="GPU 0,1 ×2")


def monitor(plot: PlotextPlot) -> Any:
    """What a plot was last asked to draw: its title and the labels of its series."""
    return plot.plt._active.monitor  # type: ignore[attr-defined]


def head(screen: Any) -> str:
    return str(screen.query_one("#an-head", Static).content)


async def open_analysis(pilot: Pilot, run_id: str = KD_RUN, tsne: bool = True) -> Any:
    """The run's view on its Analysis tab, with everything computed (the t-SNE too)."""
    app = pilot.app
    await until(pilot, lambda: len(app.screen.query_one(Grid).order) == 11, "the runs")
    app.open_run(run_id)
    detail = await until(
        pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen, "the detail"
    )
    await until(pilot, lambda: detail.query("#teachers Button") or run_id != KD_RUN, "teachers")
    await pilot.press("a")
    if tsne:
        await until(pilot, lambda: "V-score" in head(detail), "the t-SNE", timeout=60)
        await settle(pilot)
    return detail


# ---------------------------------------------------------------------- the tab


async def test_the_analysis_tab_shows_what_analyze_computes(demo: Path) -> None:
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_analysis(pilot)
        data = analysis_data.load(Store(demo).run_dir(KD_RUN), "best")
        numbers = analysis_numbers.summarize(data)
        text = head(detail)
        assert "best epoch 27 (picked on test)" in text
        assert f"acc {numbers['accuracy']:.2f}% on 40" in text
        assert f"ECE {numbers['ece'] * 100:.2f}%" in text and f"NLL {numbers['nll']:.3f}" in text
        assert f"V-score {numbers['v_score']:.3f}" in text  # the same as kdtui analyze's
        assert f"{numbers['v_score_tsne']:.3f} on the t-SNE" in text
        grid = detail.query_one("#an-confusion", Static).content.plain.splitlines()
        counts = numbers["confusion"]["counts"]
        assert grid[0].split()[:4] == ["Badm", "Runn", "Stan", "Walk"]
        for row, name, cells in zip(grid[1:], CLASSES, counts, strict=True):
            shown = row.split()
            assert shown[0] == name
            assert [0 if c == "·" else int(c) for c in shown[1:5]] == cells
            recall = cells[CLASSES.index(name)] / sum(cells) * 100
            assert shown[5] == f"{recall:.1f}%" and shown[6] == str(sum(cells))
        # each class's colour is its share of the row: the most-hit cell the darkest
        pane = detail.query_one(AnalysisPane)
        assert pane.shown is not None and pane.shown.embedding is not None
        assert pane.shown.embedding["tsne"]["x"] == numbers["tsne"]["x"]
        # the attention maps: a column per model and group, the kept samples stacked
        headers = [c.header for c in pane.shown.maps]
        assert headers == ["S g1", "S g2", "S g3", "T1 g1", "T1 g2", "T1 g3"]
        pictures = detail.query(".an-column")
        assert len(pictures) == 6 + 3  # and the GAF inputs' three channels
        first = pane.shown.labels[0].splitlines()
        assert first[0] == "#0 Badminton" and first[2] == "T1 ✓"


async def test_best_and_last_switch_and_each_is_computed_once(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = analysis_numbers.embedding_scores

    def counted(emb, labels, k, progress):  # type: ignore[no-untyped-def]
        calls.append(len(emb))
        return real(emb, labels, k, progress)

    monkeypatch.setattr(analysis_numbers, "embedding_scores", counted)
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_analysis(pilot)
        await pilot.press("b")
        await until(pilot, lambda: head(detail).startswith("last epoch 30 · acc"), "last")
        await until(pilot, lambda: "V-score" in head(detail), "the last t-SNE", timeout=60)
        assert "picked on" not in head(detail)
        await pilot.press("b")
        await until(pilot, lambda: head(detail).startswith("best epoch 27"), "best again")
        await settle(pilot)
        assert calls == [40, 40]  # best and last once each: the second look is cached
        await pilot.press("escape")
        await open_analysis(pilot)  # the run opened again: still cached
        assert calls == [40, 40]


async def test_a_new_best_is_shown_when_the_engine_rewrites_it(demo: Path) -> None:
    app = KdApp(demo, clock=lambda: NOW, devices="cpu", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_analysis(pilot)
        write_archive(Store(demo).run_dir(KD_RUN), "best", 29, skill=0.9, teacher=True)
        await until(
            pilot, lambda: head(detail).startswith("best epoch 29"), "the new best", timeout=60
        )


async def test_the_tsne_says_it_is_computing_meanwhile(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = analysis_numbers.embedding_scores

    def slow(emb, labels, k, progress):  # type: ignore[no-untyped-def]
        progress(f"t-SNE of {len(emb)} embeddings (16-d, perplexity 13)…")
        release.wait(30)
        return real(emb, labels, k, progress)

    monkeypatch.setattr(analysis_numbers, "embedding_scores", slow)
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_analysis(pilot, tsne=False)
        await until(pilot, lambda: "computing t-SNE of 40 embeddings" in head(detail), "the line")
        # the rest is there already: the confusion grid and the reliability diagram
        assert "Badminton" in detail.query_one("#an-confusion", Static).content.plain
        assert "computing t-SNE" in monitor(detail.query_one("#an-tsne", PlotextPlot)).title
        release.set()
        await until(pilot, lambda: "V-score" in head(detail), "the V-score", timeout=60)


async def test_a_run_without_analysis_data_says_why_in_one_line(demo: Path) -> None:
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_analysis(pilot, "gaf-teacher-s1", tsne=False)
        await until(pilot, lambda: "no analysis data" in head(detail), "the reason")
        assert head(detail) == "no analysis data (trained before kdtui kept it)"
        assert not detail.query_one(AnalysisPane).has_class("-ready")
        # an archive that is not one: its name and what is wrong, still one line
        folder = Store(demo).run_dir("gaf-teacher-s1") / "analysis"
        folder.mkdir()
        (folder / "last.npz").write_bytes(b"not a zip")
        await pilot.press("b")
        await until(pilot, lambda: "unreadable" in head(detail), "the unreadable archive")
        assert "last.npz" in head(detail) and "\n" not in head(detail)


# ---------------------------------------------------------------------- the curves' parts


async def test_the_curves_show_the_loss_parts_each_toggleable(demo: Path) -> None:
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.screen.query_one(Grid).order) == 11, "the runs")
        app.open_run(KD_RUN)
        detail = await until(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen, "detail"
        )
        await until(pilot, lambda: len(detail.query(Checkbox)) == 4, "the checkboxes")
        boxes = {str(b.label): b for b in detail.query(Checkbox)}
        assert list(boxes) == ["test acc", "loss", "CE", "KD"] and all(
            b.value for b in boxes.values()
        )
        plot = detail.query_one("#curves-plot", PlotextPlot)

        def labels() -> list[str]:
            return [str(label) for label in monitor(plot).label if label]

        assert labels() == ["test acc %", "train loss", "CE", "KD"]
        await pilot.click(boxes["KD"])
        await until(pilot, lambda: labels() == ["test acc %", "train loss", "CE"], "KD hidden")
        boxes["test acc"].focus()
        await pilot.press("space")
        await until(pilot, lambda: labels() == ["train loss", "CE"], "accuracy hidden")
        await pilot.click(boxes["KD"])
        await until(pilot, lambda: labels() == ["train loss", "CE", "KD"], "KD back")


# ---------------------------------------------------------------------- comparing two runs


def cmp_head(screen: CompareScreen) -> str:
    """The comparison's head as text (a table of both runs, or why there is none)."""
    shown = screen.shown
    if shown is None or isinstance(shown, str):
        return shown or ""
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(shown[0])
    return console.export_text()


async def select_and_compare(pilot: Pilot) -> CompareScreen:
    app = pilot.app
    grid = app.screen.query_one(Grid)
    await until(pilot, lambda: len(grid.order) == 11, "the runs")
    grid.focus()
    for run_id in (BASELINE_RUN, KD_RUN):  # the baseline first: it is A
        steps = grid.order.index(run_id) - grid.order.index(grid.cursor_key)
        await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "space")
    await pilot.press("i")
    screen = await until(
        pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen, "compare"
    )
    await until(pilot, lambda: not isinstance(screen.shown, str | None), "the comparison")
    await settle(pilot)
    return screen


async def test_compare_two_runs_insides(demo: Path) -> None:
    store = Store(demo)
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.screen.query_one(Grid).order) == 11, "the runs")
        await pilot.press("i")
        await until(pilot, lambda: app._notifications, "the hint")
        assert "select two runs" in list(app._notifications)[-1].message
        screen = await select_and_compare(pilot)
        assert screen.runs == [BASELINE_RUN, KD_RUN]  # A the one selected first

        def cells(grid: Text) -> list[list[int]]:
            rows = grid.plain.splitlines()[1:]
            return [[0 if c == "·" else int(c) for c in row.split()[1:5]] for row in rows]

        def counts(run_id: str) -> np.ndarray:
            data = analysis_data.load(store.run_dir(run_id), "best")
            pred = data.logits.argmax(1)
            return np.array(analysis_numbers.confusion(data.labels, pred, 4)["counts"])

        difference = counts(KD_RUN) - counts(BASELINE_RUN)
        assert cells(screen.shown[1]) == difference.tolist()
        head = cmp_head(screen)
        assert "B − A" in head and "A signal-student s1" in head
        assert "B kd-gaf-to-signal s1" in head
        table = screen.shown[2]  # per class: A's accuracy, B's, the change
        assert [str(c) for c in table.columns[0]._cells[1:5]] == CLASSES
        await pilot.press("w")  # A and B swapped: the differences change sign
        await until(pilot, lambda: screen.runs == [KD_RUN, BASELINE_RUN], "swapped")
        await until(pilot, lambda: cells(screen.shown[1]) == (-difference).tolist(), "B − A")
        await pilot.press("b")
        await until(pilot, lambda: "last 30" in cmp_head(screen), "the last epochs")
        assert "best" not in cmp_head(screen)


async def test_compare_says_why_when_a_run_kept_nothing(demo: Path) -> None:
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(CompareRuns(KD_RUN, "gaf-teacher-s1"))
        screen = await until(
            pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen, "compare"
        )
        await until(pilot, lambda: "B (gaf-teacher-s1)" in cmp_head(screen), "why")
        assert (
            cmp_head(screen)
            == "B (gaf-teacher-s1): no analysis data (trained before kdtui kept it)"
        )


# ---------------------------------------------------------------------- snapshots at 80×24


def test_snapshot_analysis_tab(snap_compare, demo: Path) -> None:
    """The top of the tab: the numbers, the confusion grid, the plots' top."""

    async def go(pilot: Pilot) -> None:
        await open_analysis(pilot)

    assert snap_compare(make_app(demo), terminal_size=SIZE, run_before=go)


def test_snapshot_analysis_plots(snap_compare, demo: Path) -> None:
    """The reliability diagram and the t-SNE, whole."""

    async def go(pilot: Pilot) -> None:
        detail = await open_analysis(pilot)
        pane = detail.query_one(AnalysisPane)
        pane.scroll_to_widget(detail.query_one("#an-plots"), animate=False, top=True)
        await settle(pilot)

    assert snap_compare(make_app(demo), terminal_size=SIZE, run_before=go)


def test_snapshot_analysis_pictures(snap_compare, demo: Path) -> None:
    """The attention maps of the student beside the teacher's, in half-blocks."""

    async def go(pilot: Pilot) -> None:
        detail = await open_analysis(pilot)
        pane = detail.query_one(AnalysisPane)
        pane.scroll_to_widget(detail.query_one("#an-maps-title"), animate=False, top=True)
        await settle(pilot)

    assert snap_compare(make_app(demo), terminal_size=SIZE, run_before=go)


def test_snapshot_curves_with_loss_parts(snap_compare, demo: Path) -> None:
    async def go(pilot: Pilot) -> None:
        app = pilot.app
        await until(pilot, lambda: len(app.screen.query_one(Grid).order) == 11, "the runs")
        app.open_run(KD_RUN)
        detail = await until(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen, "detail"
        )
        await until(pilot, lambda: len(detail.query(Checkbox)) == 4, "the checkboxes")
        await until(pilot, lambda: detail.query("#teachers Button"), "the teacher link")
        await settle(pilot)

    assert snap_compare(make_app(demo), terminal_size=SIZE, run_before=go)


def test_snapshot_compare(snap_compare, demo: Path) -> None:
    async def go(pilot: Pilot) -> None:
        await select_and_compare(pilot)

    assert snap_compare(make_app(demo), terminal_size=SIZE, run_before=go)
