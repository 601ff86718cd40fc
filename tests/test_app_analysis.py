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
from kdtui.screens.compare import CompareScreen, comparison
from kdtui.screens.run_detail import RunDetailScreen
from kdtui.store import Store
from kdtui.tui.app import KdApp
from kdtui.tui.messages import CompareRuns
from kdtui.widgets import Grid
from kdtui.widgets import picture as picture_module
from kdtui.widgets.heatmap import confusion_grid

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
    await until(pilot, lambda: run_id in app.screen.query_one(Grid).order, "the runs")
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


async def test_the_gaf_inputs_are_reached_by_scrolling(demo: Path) -> None:
    """The last part of the tab, the GAF inputs, is laid out whole: scrolled to the end,
    the pane shows their pictures' last rows (their box once took one row, 1fr of a
    Vertical, and the inputs lay beyond the end of the scroll)."""
    app = make_app(demo)
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_analysis(pilot)
        pane = detail.query_one(AnalysisPane)
        views = detail.query_one("#an-views")
        title = views.query_one(".an-title", Static)
        assert str(title.content) == "Inputs · gaf(summation, 32), per channel"
        pictures = views.query(".an-column")
        assert len(pictures) == 3
        pane.scroll_end(animate=False)
        await settle(pilot)
        visible = pane.content_region
        for picture in pictures:
            last_row = picture.region.bottom - 1
            assert visible.y <= last_row < visible.bottom, (picture.region, visible)


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


async def test_a_running_run_shows_each_new_best_as_the_engine_writes_it(demo: Path) -> None:
    running = "kd-gaf-to-signal-s2"
    run_dir = Store(demo).run_dir(running)
    app = KdApp(demo, clock=lambda: NOW, devices="cpu", poll_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_analysis(pilot, running, tsne=False)
        wait = "nothing to analyse yet: kept at the run's best epoch, once it has one"
        await until(pilot, lambda: head(detail) == wait, "why there is nothing yet")
        write_archive(run_dir, "best", 11, skill=0.8, teacher=True)
        await until(pilot, lambda: head(detail).startswith("best epoch 11"), "its best", 60)
        write_archive(run_dir, "best", 12, skill=0.9, teacher=True)
        await until(pilot, lambda: head(detail).startswith("best epoch 12"), "a new best", 60)
        await pilot.press("b")
        last = "the last epoch's data comes when the run ends (b: its best epoch so far)"
        await until(pilot, lambda: head(detail) == last, "why there is no last yet")


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


@pytest.mark.slow
async def test_the_tab_reads_what_a_real_run_kept(tmp_path: Path) -> None:
    """The engine's own archives (a tiny GAF teacher and a KD + AT signal student, trained
    here): the fixture's format above is the engine's, and the tab shows every part."""
    from conftest import tiny_experiment
    from test_analysis import TEACHER_VIEW, train_all

    teacher = tiny_experiment("teacher", epochs=2)
    teacher["student"] = {"depth": 10, "width": 1, "view": TEACHER_VIEW}
    student = tiny_experiment(
        "student", epochs=2, teachers=[{"experiment": "teacher", "pick": "same-seed"}],
        loss={"ce": 0.3, "kd": {"T": 4, "weight": 0.7}, "at": {"weight": 100}},
    )  # fmt: skip
    runs = train_all(tmp_path / "ws", [teacher, student])
    app = KdApp(tmp_path / "ws", clock=lambda: NOW, devices="cpu")
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_analysis(pilot, runs["student"])
        data = analysis_data.load(Store(tmp_path / "ws").run_dir(runs["student"]), "best")
        numbers = analysis_numbers.summarize(data)
        assert f"acc {numbers['accuracy']:.2f}% on 24" in head(detail)
        assert f"V-score {numbers['v_score']:.3f}" in head(detail)
        pane = detail.query_one(AnalysisPane)
        assert pane.shown is not None
        assert [c.header for c in pane.shown.maps] == [
            "S g1", "S g2", "S g3", "T1 g1", "T1 g2", "T1 g3",
        ]  # fmt: skip
        assert [name for name, _ in pane.shown.views] == ["gaf(summation, 16)"]
        assert len(detail.query(".an-column")) == 6 + 3  # maps, and the GAF's three channels


def test_many_classes_are_listed_not_gridded() -> None:
    """200 classes (Tiny-ImageNet-like) would be a grid of 40,000 cells: the tab lists the
    most confused pairs and the weakest classes; the comparison the classes that moved."""
    k = 200
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(k), 5)
    classes = [f"class_{i}" for i in range(k)]

    def run(skill: float) -> analysis_data.RunData:
        guess = np.where(rng.random(len(labels)) < skill, labels, (labels + 1) % k)
        logits = np.eye(k, dtype=np.float32)[guess] * 5
        return analysis_data.RunData(
            which="best", epoch=9, logits=logits, labels=labels,
            emb=rng.normal(size=(len(labels), 4)).astype(np.float32),
            samples=np.zeros(0, np.int64), classes=classes, channels=[0], models=[],
            views=[], view_inputs=[],
        )  # fmt: skip

    a, b = run(0.5), run(0.9)
    inside = analysis.basics(a)
    text = inside.grid.plain
    assert text.startswith("200 classes: too many for a grid here")
    pred = a.logits.argmax(1)
    wrong = [(int(t), int(p)) for t, p in zip(labels, pred, strict=True) if t != p]
    first = text.splitlines()[2].split()  # the most confused pair: class_t → class_p n (…)
    t, p, n = int(first[0][6:]), int(first[2][6:]), int(first[3])
    assert n == wrong.count((t, p)) == max(wrong.count(pair) for pair in set(wrong))
    assert len(text.splitlines()) <= 12  # a digest, not a grid
    head_, grid, table, legend = comparison({"name": "a"}, a, {"name": "b"}, b)
    assert grid.plain == "200 classes: too many for a grid here"
    assert table.row_count == 1 + 15 + 1  # header, the 15 that moved most, macro F1
    assert "the 15 classes whose accuracy changed most" in legend.plain


def test_class_names_that_a_cell_cannot_tell_apart_become_numbers() -> None:
    counts = [[5, 1, 0], [0, 6, 0], [2, 0, 4]]
    normalised = [[c / sum(row) for c in row] for row in counts]
    grid = confusion_grid(counts, normalised, ["class_a", "class_b", "class_c"]).plain
    lines = grid.splitlines()
    assert lines[0].split()[:3] == ["0", "1", "2"]
    assert lines[1].startswith("0 class_a") and lines[3].startswith("2 class_c")
    plain = confusion_grid(counts, normalised, ["cat", "dog", "emu"]).plain.splitlines()
    assert plain[0].split()[:3] == ["cat", "dog", "emu"] and plain[2].startswith("dog")


def test_the_grid_colours_each_cell_by_its_share_of_the_row() -> None:
    counts = [[8, 2, 0], [1, 1, 8], [0, 0, 10]]
    normalised = [[c / sum(row) for c in row] for row in counts]
    grid = confusion_grid(counts, normalised, ["a", "b", "c"])

    def background(row: int, col: int) -> tuple[int, ...]:
        start = len("\n".join(grid.plain.splitlines()[:row])) + 1 + 11 + 5 * col
        style = grid.get_style_at_offset(Console(), start + 3)
        assert style.bgcolor is not None, (row, col)
        return style.bgcolor.get_truecolor()

    def darkness(rgb: tuple[int, ...]) -> float:
        return -sum(rgb)

    # Blues: the larger the share, the darker the blue
    assert darkness(background(1, 0)) > darkness(background(1, 1))  # 0.8 > 0.2
    assert darkness(background(3, 2)) > darkness(background(2, 2)) > darkness(background(2, 0))
    zero = grid.get_style_at_offset(Console(), grid.plain.index("·"))
    assert zero.bgcolor is None  # an empty cell is left dark


def test_arrays_become_pictures_coloured_from_their_own_range() -> None:
    from matplotlib import colormaps

    square = np.array([[0.0, 1.0], [2.0, 4.0]])
    image = picture_module.heat_image(square, "jet")
    assert image.size == (2, 2)
    jet = colormaps["jet"]
    assert image.getpixel((0, 0)) == tuple(jet(0.0, bytes=True)[:3])  # the minimum
    assert image.getpixel((1, 1)) == tuple(jet(1.0, bytes=True)[:3])  # the maximum
    flipped = picture_module.heat_image(square, "jet", flip=True)
    assert flipped.getpixel((1, 0)) == image.getpixel((1, 1))  # row 0 at the bottom
    strip = picture_module.heat_image(np.arange(5.0), "jet")
    assert strip.size == (5, picture_module.STRIP_ROWS)
    flat = picture_module.heat_image(np.ones((3, 3)), "jet")  # no range: no NaN either
    assert len(set(flat.getdata())) == 1
    column = picture_module.stack([image, picture_module.heat_image(np.eye(4), "jet")])
    assert column.size == (2, 4)  # tiles resized to the first one's size, one under another


def test_the_picture_protocol_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    from textual_image import widget

    image = picture_module.heat_image(np.eye(3), "jet")
    for name in ("TMUX", "STY", "KITTY_WINDOW_ID", "KONSOLE_VERSION", "TERM_PROGRAM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")  # a terminal the environment does not name
    # auto, off a terminal (as here): textual-image's own choice there, plain text
    for mode, kind in (("halfcell", widget.HalfcellImage), ("sixel", widget.SixelImage),
                       ("kitty", widget.TGPImage), ("auto", widget.UnicodeImage)):  # fmt: skip
        monkeypatch.setenv(picture_module.ENV, mode)
        shown = picture_module.picture(image, 8, 4)
        assert type(shown) is kind
        assert (shown.styles.width.value, shown.styles.height.value) == (8, 4)
    monkeypatch.setenv(picture_module.ENV, "nonsense")
    assert picture_module.mode() == "auto"


def test_the_terminal_is_asked_before_the_app_reads_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """textual-image learns the graphics protocol from the terminal's answer on stdin,
    which Textual's key reader would swallow: run_app waits for it before the app runs."""
    from kdtui.tui import app as app_module

    calls: list[str] = []
    monkeypatch.setattr(picture_module, "prepare", lambda: calls.append("asked"))
    monkeypatch.setattr(KdApp, "run", lambda self: calls.append("run"))
    app_module.run_app(tmp_path / "ws")
    assert calls == ["asked", "run"]
    # not a terminal (as here): nothing to ask, no thread
    picture_module.start_detection()
    assert picture_module._detection is None


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
        await until(pilot, lambda: all(b.region for b in boxes.values()), "laid out to click")
        await settle(pilot)
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
        assert head.count("best 27, picked on test") == 2  # no data.val: a flattering best
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


class _TwoAxes:
    """Stands in for scikit-learn's TSNE in the snapshots: the embeddings' first two
    principal axes, signs fixed. t-SNE's points move between scikit-learn and numpy releases
    (the V-score on them with it), and a snapshot must pin the tab's layout, not a library's
    optimiser; the real t-SNE is checked against scikit-learn in test_analysis.py."""

    def __init__(self, **_: Any) -> None:
        pass

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        centred = np.asarray(x, dtype=np.float64) - np.mean(x, axis=0)
        _, _, axes = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ axes[:2].T
        return xy * np.where(xy[np.abs(xy).argmax(axis=0), [0, 1]] < 0, -1.0, 1.0)


@pytest.fixture(autouse=True)
def _stable_tsne(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "snap_compare" in request.fixturenames:
        import sklearn.manifold

        monkeypatch.setattr(sklearn.manifold, "TSNE", _TwoAxes)


def test_snapshot_analysis_tab(snap_compare, demo: Path) -> None:
    """The top of the tab: the numbers, the confusion grid, the plots' top."""

    async def go(pilot: Pilot) -> None:
        await open_analysis(pilot)

    assert snap_compare(make_app(demo), terminal_size=SIZE, run_before=go)


def scrolled_to(selector: str) -> Any:
    """A pilot's steps: the Analysis tab, computed, scrolled to ``selector`` at its top."""

    async def go(pilot: Pilot) -> None:
        detail = await open_analysis(pilot)
        pane = detail.query_one(AnalysisPane)
        pane.scroll_to_widget(detail.query_one(selector), animate=False, top=True)
        await settle(pilot)

    return go


def test_snapshot_analysis_plots(snap_compare, demo: Path) -> None:
    """The reliability diagram and the t-SNE, whole."""

    assert snap_compare(make_app(demo), terminal_size=SIZE, run_before=scrolled_to("#an-plots"))


def test_snapshot_analysis_pictures(snap_compare, demo: Path) -> None:
    """The attention maps of the student beside the teacher's, in half-blocks."""

    assert snap_compare(
        make_app(demo), terminal_size=SIZE, run_before=scrolled_to("#an-maps-title")
    )


def test_snapshot_analysis_inputs(snap_compare, demo: Path) -> None:
    """The GAF inputs of the kept samples, per channel, at the end of the tab."""

    assert snap_compare(make_app(demo), terminal_size=SIZE, run_before=scrolled_to("#an-views"))


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


@pytest.mark.skipif(
    not os.environ.get("KDTUI_SCREENSHOTS"),
    reason="regenerates docs/screenshots/run-analysis.svg: KDTUI_SCREENSHOTS=1 pytest tests/test_app_analysis.py -k readme",
)
def test_readme_screenshot(demo: Path) -> None:
    """The README's picture of the Analysis tab: the maps, at the README's size."""

    async def shoot(pilot: Pilot) -> None:
        await scrolled_to("#an-maps-title")(pilot)
        pilot.app.exit(pilot.app.export_screenshot(title="kdtui · run analysis"))

    svg = make_app(demo).run(headless=True, size=(110, 32), auto_pilot=shoot)
    assert svg
    docs = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
    (docs / "run-analysis.svg").write_text(svg)
