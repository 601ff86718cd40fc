"""The figures of ``kdtui analyze``, drawn with matplotlib's object API on the Agg canvas
(headless: no display, no pyplot state), from the numbers of ``numbers.summarize`` and the
maps and inputs of ``data.RunData``. Each function writes one file and returns its path."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kdtui.analysis.data import RunData

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Dots per inch of raster figures: sharp in a paper at column width.
DPI = 150
#: Above this many classes the confusion matrix drops its per-cell numbers.
MAX_ANNOTATED = 20


def _figure(width: float, height: float) -> Figure:
    """A new figure on the Agg canvas (pyplot's global state is never used)."""
    import matplotlib

    matplotlib.use("Agg")  # sklearn's display helpers import pyplot: keep it headless
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def _colours(k: int) -> Any:
    from matplotlib import colormaps

    return colormaps["tab10" if k <= 10 else "tab20" if k <= 20 else "turbo"].resampled(k)


def view_name(view: dict[str, Any]) -> str:
    """``gaf(summation, 64)``, ``mtf(32, 8 bins)``, ``rp(32)``, ``signal``, ``image``."""
    kind = view.get("kind", "?")
    if kind == "gaf":
        return f"gaf({view.get('method')}, {view.get('image_size')})"
    if kind == "mtf":
        return f"mtf({view.get('image_size')}, {view.get('n_bins')} bins)"
    if kind == "rp":
        return f"rp({view.get('image_size')})"
    return str(kind)


def confusion(numbers: dict[str, Any], title: str, path: Path) -> Path:
    """Counts and row-normalised confusion matrices side by side."""
    from sklearn.metrics import ConfusionMatrixDisplay

    classes = numbers["classes"]
    k = len(classes)
    side = max(3.5, 0.55 * k + 2.0)
    fig = _figure(2 * side + 0.8, side + 0.6)
    axes = fig.subplots(1, 2)
    annotate = k <= MAX_ANNOTATED
    for ax, key, fmt, what in (
        (axes[0], "counts", "d", "counts"),
        (axes[1], "normalised", ".2f", "row-normalised (recall on the diagonal)"),
    ):
        matrix = np.asarray(numbers["confusion"][key])
        ConfusionMatrixDisplay(matrix, display_labels=classes).plot(
            ax=ax, values_format=fmt, include_values=annotate, colorbar=True,
            cmap="Blues", xticks_rotation=45,
        )  # fmt: skip
        ax.set_title(what, fontsize=10)
    fig.suptitle(f"{title} · accuracy {numbers['accuracy']:.2f}% on {numbers['n']:,} test samples")
    return _save(fig, path)


def per_class(numbers: dict[str, Any], title: str, path: Path) -> Path:
    """Precision, recall and F1 of each class as grouped bars."""
    rows = numbers["per_class"]["classes"]
    k = len(rows)
    fig = _figure(max(5.0, 0.6 * k + 2.0), 3.6)
    ax = fig.subplots()
    x = np.arange(k)
    for j, key in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (j - 1) * 0.27, [r[key] for r in rows], width=0.27, label=key)
    ax.set_xticks(x, [r["class"] for r in rows], rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.legend(loc="lower right", fontsize=8)
    macro = numbers["per_class"]["macro"]
    ax.set_title(f"{title} · macro F1 {macro['f1']:.3f}", fontsize=10)
    return _save(fig, path)


def reliability(numbers: dict[str, Any], title: str, path: Path) -> Path:
    """Reliability diagram: accuracy against confidence per bin, the gap to the diagonal,
    and how many samples each bin holds."""
    rel = numbers["reliability"]
    edges = np.asarray(rel["edges"])
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    acc = np.array([np.nan if a is None else a for a in rel["accuracy"]])
    conf = np.array([np.nan if c is None else c for c in rel["confidence"]])
    fig = _figure(4.6, 5.4)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.bar(centres, np.nan_to_num(acc), width=width, edgecolor="black", label="accuracy")
    top.bar(centres, np.nan_to_num(conf - acc), bottom=np.nan_to_num(acc), width=width,
            color="tab:red", alpha=0.3, edgecolor="tab:red", hatch="//", label="gap")  # fmt: skip
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize=8)
    top.set_title(
        f"{title}\nECE {numbers['ece'] * 100:.2f}% ({len(centres)} bins) · NLL {numbers['nll']:.3f}",
        fontsize=10,
    )
    bottom.bar(centres, rel["count"], width=width, color="grey", edgecolor="black")
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("confidence (top softmax probability)")
    bottom.set_ylabel("samples")
    return _save(fig, path)


def tsne(numbers: dict[str, Any], title: str, path: Path) -> Path | None:
    """The t-SNE of the embeddings coloured by true class, with the V-scores."""
    points = numbers.get("tsne")
    if not points:
        return None
    classes = numbers["classes"]
    colours = _colours(len(classes))
    x, y, label = (np.asarray(points[k]) for k in ("x", "y", "label"))
    fig = _figure(6.4, 5.0)
    ax = fig.subplots()
    size = 30 if len(x) <= 500 else 8 if len(x) <= 3000 else 3
    for c, name in enumerate(classes):
        mine = label == c
        if mine.any():
            ax.scatter(x[mine], y[mine], s=size, color=colours(c), label=name, linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    v, v2 = numbers.get("v_score"), numbers.get("v_score_tsne")
    scores = " · ".join(
        f"V-score {value:.3f} ({where})"
        for value, where in ((v, "k-means on embeddings"), (v2, "on the t-SNE"))
        if value is not None
    )
    ax.set_title(f"{title}\n{scores}", fontsize=9)
    return _save(fig, path)


def _row_label(numbers: dict[str, Any], j: int) -> str:
    s = numbers["samples"][j]
    return f"#{s['index']} {s['label']}"


def _show_map(ax: Axes, a: np.ndarray) -> None:
    """A 2-D map as an image, a 1-D map (a signal model's) as a curve over time."""
    if a.ndim == 2:
        ax.imshow(a, cmap="jet", interpolation="bilinear")
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.fill_between(np.arange(len(a)), a, color="tab:orange", alpha=0.6)
        ax.plot(a, color="tab:red", linewidth=0.8)
        ax.set_xlim(0, max(len(a) - 1, 1))
        ax.set_ylim(bottom=0)
        ax.set_xticks([])
        ax.tick_params(labelsize=5)


def attention(data: RunData, numbers: dict[str, Any], title: str, path: Path) -> Path | None:
    """Attention maps of the fixed samples (rows): per feature group, the student's beside
    each teacher's (columns). A cell's title says what that model predicted."""
    models = [m for m in data.models if m.maps]
    if not models or not len(data.samples):
        return None
    groups = min(len(m.maps) for m in models)
    cols = [(g, i) for g in range(groups) for i in range(len(models))]
    rows = len(data.samples)
    fig = _figure(max(4.5, 1.35 * len(cols) + 1.2), 1.15 * rows + 1.0)
    axes = np.atleast_2d(fig.subplots(rows, len(cols), squeeze=False))
    for c, (g, i) in enumerate(cols):
        m = models[i]
        axes[0, c].annotate(
            f"group {g + 1}\n{m.role}\n{m.label}", (0.5, 1.0), xycoords="axes fraction",
            xytext=(0, 6), textcoords="offset points", ha="center", va="bottom", fontsize=6,
        )  # fmt: skip
        for r in range(rows):
            ax = axes[r, c]
            _show_map(ax, m.maps[g][r])
            pred = data.classes[int(m.pred[r])]
            right = int(m.pred[r]) == int(data.labels[data.samples[r]])
            ax.set_title(pred, fontsize=5, color="black" if right else "tab:red", pad=1)
            if c == 0:
                ax.set_ylabel(_row_label(numbers, r), fontsize=6)
    fig.suptitle(f"{title} · attention maps (mean over channels of |f|^{data.p:g})", fontsize=9)
    return _save(fig, path)


def views(data: RunData, numbers: dict[str, Any], title: str, folder: Path, stem: str,
          fmt: str) -> list[Path]:  # fmt: skip
    """For each image view (GAF, MTF, RP, dataset images): the inputs of the fixed samples
    (rows), one image per channel (columns); RGB dataset images as one colour image."""
    out = []
    image_views = [(j, v) for j, v in enumerate(data.views) if v.get("kind") != "signal"]
    for n, (j, view) in enumerate(image_views):
        x = np.asarray(data.view_inputs[j], dtype=np.float32)
        if x.ndim != 4 or not len(x):
            continue
        rgb = view.get("kind") == "image" and x.shape[1] == 3
        cols = 1 if rgb else x.shape[1]
        fig = _figure(max(4.5, 1.3 * cols + 1.2), 1.15 * len(x) + 0.8)
        axes = np.atleast_2d(fig.subplots(len(x), cols, squeeze=False))
        for r in range(len(x)):
            for c in range(cols):
                ax = axes[r, c]
                if rgb:
                    ax.imshow(np.clip(x[r].transpose(1, 2, 0) / 255.0, 0, 1))
                else:
                    ax.imshow(x[r, c], cmap="rainbow", origin="lower")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    name = "image" if rgb else f"channel {data.channels[c]}" if c < len(
                        data.channels) else f"channel {c}"  # fmt: skip
                    ax.set_title(name, fontsize=7)
                if c == 0:
                    ax.set_ylabel(_row_label(numbers, r), fontsize=6)
        fig.suptitle(f"{title} · {view_name(view)} inputs", fontsize=9)
        suffix = f"-{n + 1}" if len(image_views) > 1 else ""
        out.append(_save(fig, folder / f"{stem}-views{suffix}.{fmt}"))
    return out
