"""Every number ``kdtui analyze`` shows, computed from a run's kept data with the field's
libraries: scikit-learn for the confusion matrix, per-class scores, t-SNE, k-means and the
V-measure; the engine's own ECE for calibration. The result is a plain JSON-ready dict,
shared by the figures, the JSON file and the app."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from kdtui.analysis.calibration import negative_log_likelihood, reliability
from kdtui.analysis.data import RunData

#: Fixed seeds, so that a figure drawn twice is the same figure.
TSNE_SEED = 0
KMEANS_SEED = 0
#: Most points in a t-SNE (a fixed random subset beyond): t-SNE is O(n log n) per step and
#: 5,000 points already draw a dense scatter; the V-scores use every embedding.
TSNE_MAX = 5000
#: Up to this many points t-SNE and k-means run on one thread: faster than a team of
#: OpenMP threads that spin on a shared, loaded machine (16 s instead of 0.1 s for 24
#: points, measured with a load of 11 on 2 cores).
ONE_THREAD_UP_TO = 2000


def tsne_perplexity(n: int) -> float:
    """scikit-learn's default perplexity (30) where the points allow; fewer points get
    about a third of their number (perplexity must stay below n)."""
    return float(min(30.0, max(2.0, (n - 1) / 3)))


def confusion(labels: np.ndarray, pred: np.ndarray, k: int) -> dict[str, Any]:
    """Counts (rows: true class, columns: predicted) and the row-normalised matrix (each
    row sums to 1; a class absent from the split is a row of zeros)."""
    from sklearn.metrics import confusion_matrix

    counts = confusion_matrix(labels, pred, labels=np.arange(k))
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    return {"counts": counts.tolist(), "normalised": normalised.tolist()}


def per_class(labels: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Precision, recall (the class's accuracy), F1 and support per class, and their macro
    means; a class never predicted has precision 0 (scikit-learn's zero_division=0)."""
    from sklearn.metrics import precision_recall_fscore_support

    k = len(classes)
    p, r, f, s = precision_recall_fscore_support(labels, pred, labels=np.arange(k), zero_division=0)
    rows = [
        {"class": classes[i], "precision": float(p[i]), "recall": float(r[i]),
         "f1": float(f[i]), "support": int(s[i])}
        for i in range(k)
    ]  # fmt: skip
    macro = {"precision": float(p.mean()), "recall": float(r.mean()), "f1": float(f.mean())}
    return {"classes": rows, "macro": macro}


def embedding_scores(
    emb: np.ndarray, labels: np.ndarray, k: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """A 2-D t-SNE of the embeddings and the V-measure of a k-means clustering (k = the
    number of classes) against the labels, both on the embeddings themselves and on the
    t-SNE points that the figure shows."""
    from threadpoolctl import threadpool_limits

    n = len(emb)
    with threadpool_limits(limits=1 if n <= ONE_THREAD_UP_TO else None):
        return _embedding_scores(emb, labels, k, progress)


def _embedding_scores(
    emb: np.ndarray, labels: np.ndarray, k: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    from sklearn.cluster import KMeans
    from sklearn.manifold import TSNE
    from sklearn.metrics import v_measure_score

    n = len(emb)
    out: dict[str, Any] = {"k": k, "kmeans_random_state": KMEANS_SEED}

    def v_score(points: np.ndarray, truth: np.ndarray) -> float | None:
        if len(points) < k:
            return None
        km = KMeans(n_clusters=k, n_init=10, random_state=KMEANS_SEED).fit(points)
        return float(v_measure_score(truth, km.labels_))

    out["v_score"] = v_score(emb, labels)
    if n < 3:
        out["tsne"] = None
        out["v_score_tsne"] = None
        return out
    index = np.arange(n)
    if n > TSNE_MAX:
        index = np.sort(np.random.default_rng(TSNE_SEED).choice(n, TSNE_MAX, replace=False))
    perplexity = tsne_perplexity(len(index))
    progress(f"t-SNE of {len(index):,} embeddings ({emb.shape[1]}-d, perplexity {perplexity:g})…")
    t0 = time.perf_counter()
    xy = TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=TSNE_SEED
    ).fit_transform(emb[index])
    progress(f"t-SNE done in {time.perf_counter() - t0:.1f} s")
    out["tsne"] = {
        "perplexity": perplexity,
        "random_state": TSNE_SEED,
        "index": index.tolist() if len(index) < n else None,  # None: every point
        "x": np.round(xy[:, 0], 4).tolist(),
        "y": np.round(xy[:, 1], 4).tolist(),
        "label": labels[index].tolist(),
    }
    out["v_score_tsne"] = v_score(xy, labels[index])
    return out


def summarize(data: RunData, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every number of one run's analysis at one epoch."""
    labels, logits, k = data.labels, data.logits, data.n_classes
    pred = logits.argmax(axis=1)
    calib = reliability(logits, labels)
    samples = [
        {
            "index": int(i),
            "label": data.classes[int(labels[i])],
            "predicted": {m.role: data.classes[int(m.pred[j])] for m in data.models},
        }
        for j, i in enumerate(data.samples)
    ]
    return {
        "which": data.which,
        "epoch": data.epoch,
        "n": int(len(labels)),
        "classes": data.classes,
        "accuracy": float((pred == labels).mean() * 100) if len(labels) else None,
        "nll": negative_log_likelihood(logits, labels),
        "ece": calib["ece"],
        "reported": data.metrics,
        "confusion": confusion(labels, pred, k),
        "per_class": per_class(labels, pred, data.classes),
        "reliability": calib,
        **embedding_scores(data.emb, labels, k, progress),
        "models": [{"role": m.role, "label": m.label, "source": m.source} for m in data.models],
        "views": data.views,
        "channels": data.channels,
        "attention_p": data.p,
        "samples": samples,
    }
