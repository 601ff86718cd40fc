"""The Analysis tab of a run's view: what the run kept at its best or last epoch
(``kdtui.analysis.data``), shown in the terminal — accuracy, ECE, NLL and the V-score on
one line; the confusion matrix as a coloured grid with each class's accuracy; the
reliability diagram and the t-SNE of the embeddings as terminal plots; the attention maps
of the kept samples and the image views they came from as pictures.

The numbers are ``kdtui analyze``'s own functions (scikit-learn, the engine's ECE), so the
tab and the figures agree. Everything is read and computed in a worker: the confusion,
calibration and pictures first (a fraction of a second), then the t-SNE (seconds on a
large test split) while a line says so. The result is cached per archive and kept while
the archive is unchanged, so reopening a run or switching best ⇄ last again is instant.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static
from textual.worker import Worker, get_current_worker
from textual_plotext import PlotextPlot

from kdtui.analysis.data import FOLDER, NoAnalysisData, RunData
from kdtui.widgets.heatmap import MAX_GRID, abbreviate, confusion_digest, confusion_grid
from kdtui.widgets.picture import heat_image, picture, rgb_image, stack

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

#: Archives whose analysis stays computed (a few runs' worth of going back and forth).
CACHE_SIZE = 8
#: The colormaps of ``kdtui analyze``'s figures: jet for attention, rainbow for views.
MAP_CMAP = "jet"
VIEW_CMAP = "rainbow"
#: Cells of one picture: 2-D maps square in half-blocks (8 × 8 pixels); a 1-D map is a
#: wider strip along time.
TILE_2D = 8
TILE_1D = 10
TILE_ROWS = 4
LABEL_WIDTH = 16
#: The t-SNE's class colours (Okabe-Ito, as the curves), cycled beyond eight classes.
COLOURS = [
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167),
    (213, 94, 0), (0, 114, 178), (240, 228, 66), (150, 150, 150),
]  # fmt: skip


@dataclass(frozen=True)
class Column:
    """One picture column: a header and the kept samples' tiles stacked top to bottom."""

    header: str
    image: PILImage
    width: int  # cells


@dataclass(frozen=True)
class Inside:
    """What the tab shows of one archive (``embedding`` None until the t-SNE is done)."""

    which: str
    epoch: int
    numbers: dict[str, Any]  # accuracy, n, ece, nll, confusion, per_class, reliability
    grid: Text
    legend: str  # which model is which, in the map headers
    labels: list[str]  # per sample, TILE_ROWS lines
    maps: list[Column]
    views: list[tuple[str, list[Column]]]  # per image view: its name and a column per channel
    p: float  # the maps' exponent: mean over channels of |f|^p
    embedding: dict[str, Any] | None = None


# ---------------------------------------------------------------------- computing

_cache: OrderedDict[tuple[str, str], tuple[tuple[int, int], Inside]] = OrderedDict()
_cache_lock = threading.Lock()


def archive(run_dir: Path, which: str) -> Path:
    return run_dir / FOLDER / f"{which}.npz"


def stamp(path: Path) -> tuple[int, int] | None:
    """What tells a rewritten archive (the engine replaces it atomically) from the last."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def cached(run_dir: Path, which: str) -> Inside | None:
    """The complete analysis of this archive as it is now on disk, if computed before."""
    now = stamp(archive(run_dir, which))
    with _cache_lock:
        hit = _cache.get((str(run_dir), which))
    return hit[1] if hit and hit[0] == now else None


def remember(run_dir: Path, which: str, when: tuple[int, int] | None, inside: Inside) -> None:
    if when is None:
        return
    with _cache_lock:
        _cache[(str(run_dir), which)] = (when, inside)
        _cache.move_to_end((str(run_dir), which))
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def short_role(role: str) -> str:
    """``student`` → S, ``teacher 2`` → T2: the map columns' headers."""
    return (
        "S" if role == "student" else "T" + role.split()[-1] if role.startswith("teacher") else role
    )


def basics(data: RunData) -> Inside:
    """Everything but the t-SNE: numbers, the confusion grid and the pictures."""
    from kdtui.analysis import numbers
    from kdtui.analysis.calibration import negative_log_likelihood, reliability
    from kdtui.analysis.figures import view_name

    labels, logits = data.labels, data.logits
    pred = logits.argmax(axis=1)
    calib = reliability(logits, labels)
    conf = numbers.confusion(labels, pred, data.n_classes)
    result = {
        "n": int(len(labels)),
        "classes": data.classes,
        "accuracy": float((pred == labels).mean() * 100) if len(labels) else None,
        "ece": calib["ece"],
        "nll": negative_log_likelihood(logits, labels) if len(labels) else None,
        "confusion": conf,
        "per_class": numbers.per_class(labels, pred, data.classes),
        "reliability": calib,
    }
    grid = (
        confusion_grid(conf["counts"], conf["normalised"], data.classes)
        if data.n_classes <= MAX_GRID
        else confusion_digest(conf["counts"], data.classes)
    )
    shown = [m for m in data.models if m.maps]
    legend = " · ".join(
        f"{short_role(m.role)} {m.role} {m.label}" + (f" ← {m.source}" if m.source else "")
        for m in shown
    )
    labels_text = []
    for j, i in enumerate(data.samples):
        truth = int(labels[i])
        lines = [abbreviate(f"#{int(i)} {data.classes[truth]}", LABEL_WIDTH - 1)]
        for m in data.models[: TILE_ROWS - 1]:
            guess = int(m.pred[j])
            said = "✓" if guess == truth else f"→{data.classes[guess]} ✗"
            lines.append(abbreviate(f"{short_role(m.role)} {said}", LABEL_WIDTH - 1))
        labels_text.append("\n".join(lines + [""] * (TILE_ROWS - len(lines))))
    maps = []
    groups = min((len(m.maps) for m in shown), default=0)
    for m in shown:
        for g in range(groups):
            tiles = [heat_image(a, MAP_CMAP) for a in m.maps[g]]
            if tiles:
                width = TILE_1D if m.maps[g].ndim == 2 else TILE_2D
                maps.append(Column(f"{short_role(m.role)} g{g + 1}", stack(tiles), width))
    views = []
    for view, x in zip(data.views, data.view_inputs, strict=True):
        if view.get("kind") == "signal" or x.ndim != 4 or not len(x):
            continue
        if view.get("kind") == "image" and x.shape[1] == 3:
            columns = [Column("image", stack([rgb_image(s) for s in x]), TILE_2D)]
        else:
            columns = [
                Column(
                    f"ch {data.channels[c] if c < len(data.channels) else c}",
                    stack([heat_image(s[c], VIEW_CMAP, flip=True) for s in x]),
                    TILE_2D,
                )
                for c in range(x.shape[1])
            ]
        views.append((view_name(view), columns))
    return Inside(data.which, data.epoch, result, grid, legend, labels_text, maps, views, data.p)


def why_nothing(reason: str, run: dict[str, Any], which: str) -> str:
    """The one line shown instead of an analysis: the reader's reason, unless the run
    says better why (an outside result, a run that has not reached that epoch yet)."""
    if run.get("source", "kdtui") != "kdtui":
        return "an outside result: kdtui kept nothing of it to analyse"
    if "unreadable" in reason:
        return reason
    status = run.get("status")
    if status == "queued":
        return "nothing to analyse yet: the run has not started"
    if status == "running":
        if which == "last":
            return "the last epoch's data comes when the run ends (b: its best epoch so far)"
        return "nothing to analyse yet: kept at the run's best epoch, once it has one"
    return reason


# ---------------------------------------------------------------------- the tab


class AnalysisPane(VerticalScroll):
    """The Analysis tab's content; ``show`` loads an archive of a run folder."""

    DEFAULT_CSS = """
    AnalysisPane { overflow-x: auto; padding: 0 1; }
    AnalysisPane .an-title { text-style: bold; margin-top: 1; width: auto; }
    AnalysisPane #an-head { width: 1fr; }  /* a long reason wraps */
    AnalysisPane #an-confusion { width: auto; }
    AnalysisPane #an-plots { height: 15; width: 1fr; min-width: 60; }
    AnalysisPane PlotextPlot { width: 1fr; height: 15; }
    AnalysisPane #an-views { height: auto; }  /* a Vertical is 1fr: one row, inputs cut off */
    AnalysisPane .an-gallery { height: auto; width: auto; }
    AnalysisPane .an-column { height: auto; width: auto; margin-right: 1; }
    AnalysisPane .an-labels { width: 16; height: auto; }
    AnalysisPane .an-part { display: none; height: auto; width: auto; }
    AnalysisPane.-ready .an-part { display: block; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_dir: Path | None = None
        self.which = "best"
        self.selected_on: str | None = None
        self.run: dict[str, Any] = {}
        self.shown: Inside | None = None  # what the widgets show now
        self.status = ""  # the t-SNE's line while it is computed, or why there is nothing
        self._worker: Worker | None = None
        self._shown_stamp: tuple[int, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static("reading the analysis data…", id="an-head")
        with Vertical(classes="an-part"):
            yield Static(
                "Confusion · rows: true class, columns: predicted; colour: share of the row",
                classes="an-title",
            )
            yield Static(id="an-confusion")
            with Horizontal(id="an-plots"):
                yield PlotextPlot(id="an-reliability")
                yield PlotextPlot(id="an-tsne")
            yield Static(id="an-maps-title", classes="an-title")
            yield Static(id="an-legend")
            yield Horizontal(id="an-maps", classes="an-gallery")
            yield Vertical(id="an-views")

    # ------------------------------------------------------------------ loading

    def show(self, run_dir: Path, which: str, run: dict[str, Any] | None = None) -> None:
        """Show archive ``which`` of ``run_dir`` (computing it in a worker unless cached);
        ``run`` is its summary (how best was picked, whether it still trains)."""
        self.run_dir, self.which, self.run = run_dir, which, run or {}
        self.selected_on = self.run.get("best_selected_on")
        self._worker = self._compute(run_dir, which)

    def poll(self) -> None:
        """Show the archive again if the engine rewrote it (a running run's new best)."""
        if self.run_dir is None or (self._worker is not None and not self._worker.is_finished):
            return
        if stamp(archive(self.run_dir, self.which)) != self._shown_stamp:
            self.show(self.run_dir, self.which, self.run)

    @work(thread=True, exclusive=True, group="analysis")
    def _compute(self, run_dir: Path, which: str) -> None:
        from kdtui.analysis.data import load
        from kdtui.analysis.numbers import embedding_scores

        worker = get_current_worker()
        when = stamp(archive(run_dir, which))
        done = cached(run_dir, which)
        if done is not None:
            self.app.call_from_thread(self._show, done, when, "")
            return
        try:
            data = load(run_dir, which)
            inside = basics(data)
        except NoAnalysisData as exc:
            self.app.call_from_thread(self._nothing, why_nothing(str(exc), self.run, which), when)
            return
        if worker.is_cancelled:
            return
        n = len(data.emb)
        self.app.call_from_thread(self._show, inside, when, f"computing t-SNE of {n:,} embeddings…")

        def progress(line: str) -> None:
            if line.startswith("t-SNE of"):
                self.app.call_from_thread(self._say, "computing " + line)

        scores = embedding_scores(data.emb, data.labels, data.n_classes, progress)
        inside = replace(inside, embedding=scores)
        remember(run_dir, which, when, inside)
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show, inside, when, "")

    # ------------------------------------------------------------------ showing

    def _nothing(self, reason: str, when: tuple[int, int] | None) -> None:
        """A run without analysis data: one line says why, nothing else is shown."""
        self._shown_stamp, self.shown, self.status = when, None, reason
        self.remove_class("-ready")
        self.query_one("#an-head", Static).update(Text(reason, style="italic"))

    def _say(self, status: str) -> None:
        self.status = status
        self._head()

    def _show(self, inside: Inside, when: tuple[int, int] | None, status: str) -> None:
        self._shown_stamp, self.status = when, status
        previous, self.shown = self.shown, inside
        self.add_class("-ready")
        self._head()
        if previous is None or previous.grid is not inside.grid:  # not just the t-SNE
            self.query_one("#an-confusion", Static).update(inside.grid)
            self._reliability(inside)
            self._pictures(inside)
        self._tsne(inside)

    def _head(self) -> None:
        inside = self.shown
        if inside is None:
            return
        num = inside.numbers
        text = Text()
        text.append(f"{inside.which} epoch {inside.epoch}", style="bold")
        if inside.which == "best":
            on = {"val": "validation", "test": "test"}.get(self.selected_on or "test")
            text.append(f" (picked on {on})", style="dim")
        acc = num["accuracy"]
        text.append(f" · acc {acc:.2f}%" if acc is not None else " · acc –")
        text.append(f" on {num['n']:,} · ECE {num['ece'] * 100:.2f}%")
        if num["nll"] is not None:
            text.append(f" · NLL {num['nll']:.3f}")
        text.append("\n")
        emb = inside.embedding
        if emb is None:
            text.append(self.status or "t-SNE not computed", style="italic")
        else:
            v, v2 = emb.get("v_score"), emb.get("v_score_tsne")
            text.append("V-score ")
            text.append(f"{v:.3f}" if v is not None else "–", style="bold")
            text.append(" (k-means on the embeddings)")
            if v2 is not None:
                text.append(f" · {v2:.3f} on the t-SNE")
        text.append(f"\nmacro F1 {num['per_class']['macro']['f1']:.3f}", style="dim")
        other = "last" if inside.which == "best" else "best"
        text.append(f" · b: the {other} epoch", style="dim")
        self.query_one("#an-head", Static).update(text)

    def _reliability(self, inside: Inside) -> None:
        rel = inside.numbers["reliability"]
        edges = rel["edges"]
        centres = [(lo + hi) / 2 for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        xs = [c for c, a in zip(centres, rel["accuracy"], strict=True) if a is not None]
        ys = [a for a in rel["accuracy"] if a is not None]
        widget = self.query_one("#an-reliability", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        if xs:
            plt.bar(xs, ys, width=0.5, reset_ticks=False, label="accuracy", color=COLOURS[1])
        plt.plot([0, 1], [0, 1], marker="braille", label="calibrated", color=COLOURS[0])
        plt.xlim(0, 1)
        plt.ylim(0, 1)
        plt.xticks([0, 0.5, 1])
        plt.yticks([0, 0.5, 1])
        plt.xlabel("confidence")
        plt.title(f"reliability · ECE {inside.numbers['ece'] * 100:.2f}%")
        widget.refresh()

    def _tsne(self, inside: Inside) -> None:
        widget = self.query_one("#an-tsne", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        points = (inside.embedding or {}).get("tsne")
        if points:
            classes = inside.numbers["classes"]
            for c, name in enumerate(classes):
                mine = [i for i, label in enumerate(points["label"]) if label == c]
                if mine:
                    plt.scatter(
                        [points["x"][i] for i in mine],
                        [points["y"][i] for i in mine],
                        marker="dot",
                        color=COLOURS[c % len(COLOURS)],
                        label=abbreviate(name, 10) if len(classes) <= len(COLOURS) else None,
                    )
            plt.xticks([])
            plt.yticks([])
            plt.title("t-SNE of the embeddings")
        elif inside.embedding is None:
            plt.title(self.status or "t-SNE…")
        else:
            plt.title("t-SNE: too few samples")
        widget.refresh()

    def _pictures(self, inside: Inside) -> None:
        title = self.query_one("#an-maps-title", Static)
        legend = self.query_one("#an-legend", Static)
        gallery = self.query_one("#an-maps", Horizontal)
        gallery.remove_children()
        if inside.maps:
            title.update(
                f"Attention maps · mean over channels of |f|^{inside.p:g}, blue low → red high"
            )
            legend.update(Text(inside.legend, style="dim"))
            gallery.mount_all(self._gallery(inside.labels, inside.maps))
        else:
            title.update("Attention maps · none kept")
            legend.update("")
        views = self.query_one("#an-views", Vertical)
        views.remove_children()
        for name, columns in inside.views:
            views.mount(Static(f"Inputs · {name}, per channel", classes="an-title"))
            names = [line.split("\n")[0] for line in inside.labels]
            box = Horizontal(classes="an-gallery")
            views.mount(box)
            box.mount_all(self._gallery([n + "\n" * (TILE_ROWS - 1) for n in names], columns))

    def _gallery(self, labels: list[str], columns: list[Column]) -> list[Any]:
        rows = len(labels) * TILE_ROWS
        out: list[Any] = [Static("\n" + "\n".join(labels), classes="an-labels")]
        for column in columns:
            out.append(
                Vertical(
                    Static(abbreviate(column.header, column.width)),
                    picture(column.image, column.width, rows),
                    classes="an-column",
                )
            )
        return out
