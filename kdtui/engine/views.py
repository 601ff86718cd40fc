"""Per-model views of the same samples: the raw signal, or an image made from each channel.

Image views are costly (pyts, per series) and identical for every run on the same data, so
they are computed once and cached on disk under a hash of everything that produced them.

View options are plain dicts, e.g. ``{"kind": "gaf", "method": "summation", "image_size": 64}``:

- ``signal``: the (N, C, L) array itself;
- ``gaf``: Gramian Angular Field (``method`` summation or difference) of each channel;
- ``mtf``: Markov Transition Field (``n_bins`` quantile bins, default 8) of each channel;
- ``rp``: Recurrence Plot of each channel after Piecewise Aggregate Approximation down to
  ``image_size`` points; pyts' RecurrencePlot has no size option and would otherwise make
  L x L images.

Image views are (N, C, S, S) float32, the channels' images stacked as image channels.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kdtui.engine.data import stable_hash

#: Bump when a view's computation changes, so that stale cache files are not reused.
_VIEW_VERSION = 2

#: kind -> (required options, optional options with their defaults)
_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "signal": ((), {}),
    "gaf": (("method", "image_size"), {}),
    "mtf": (("image_size",), {"n_bins": 8}),
    "rp": (("image_size",), {}),
}
_GAF_METHODS = ("summation", "difference")

#: Series per pyts call: bounds peak memory (MTF builds a full L x L matrix per series first).
_CHUNK_CELLS = 1 << 25


def _normalise(view: dict[str, Any]) -> dict[str, Any]:
    """Validate a view and fill in defaults, so that equal views get equal keys."""
    kind = view.get("kind")
    if kind not in _OPTIONS:
        raise ValueError(f"unknown view kind {kind!r}; expected one of {', '.join(_OPTIONS)}")
    required, defaults = _OPTIONS[kind]
    unknown = sorted(set(view) - {"kind", *required, *defaults})
    if unknown:
        allowed = ", ".join((*required, *defaults)) or "none"
        raise ValueError(
            f"view {kind!r}: unknown option(s) {', '.join(unknown)} (allowed: {allowed})"
        )
    missing = [k for k in required if k not in view]
    if missing:
        raise ValueError(f"view {kind!r}: missing option(s) {', '.join(missing)}")
    out = {**defaults, **view}
    for k in ("image_size", "n_bins"):
        if k in out and (isinstance(out[k], bool) or not isinstance(out[k], int) or out[k] < 2):
            raise ValueError(f"view {kind!r}: {k} must be an integer >= 2, got {out[k]!r}")
    if kind == "gaf" and out["method"] not in _GAF_METHODS:
        raise ValueError(
            f"view 'gaf': method must be one of {', '.join(_GAF_METHODS)}, got {out['method']!r}"
        )
    return out


def _describe(view: dict[str, Any]) -> str:
    """A short human label for log lines, e.g. ``gaf(summation, 64)``."""
    if view["kind"] == "gaf":
        return f"gaf({view['method']}, {view['image_size']})"
    if view["kind"] == "mtf":
        return f"mtf({view['image_size']}, {view['n_bins']} bins)"
    if view["kind"] == "rp":
        return f"rp({view['image_size']})"
    return view["kind"]


def view_key(data_key: str, split: str, view: dict[str, Any]) -> str:
    """Stable hex hash of what produces a view's array: the data, the split and the options."""
    return stable_hash(
        {"version": _VIEW_VERSION, "data": data_key, "split": split, "view": _normalise(view)}
    )


def _paa(series: np.ndarray, size: int) -> np.ndarray:
    """Piecewise Aggregate Approximation of (n, L) series to ``size`` points, with pyts'
    segments: bounds ``linspace(0, L, size + 1)`` cut to integers, no overlap."""
    length = series.shape[1]
    if size == length:
        return series
    bounds = np.linspace(0, length, size + 1).astype(np.int64)
    return np.add.reduceat(series, bounds[:-1], axis=1) / np.diff(bounds)


def gramian_angular_field(series: np.ndarray, size: int, method: str) -> np.ndarray:
    """Gramian Angular Field (Wang & Oates 2015) of (n, L) series, as pyts computes it:
    PAA to ``size`` points, each series min-max scaled to [-1, 1] so that x = cos φ, then
    GASF = cos(φᵢ + φⱼ) = xᵢxⱼ − sinᵢ sinⱼ or GADF = sin(φᵢ − φⱼ) = sinᵢ xⱼ − xᵢ sinⱼ.

    Vectorised NumPy rather than pyts itself: pyts compiles its numba kernels at import,
    which costs ~30 s of CPU in every fresh process; the test suite checks the two agree."""
    x = _paa(np.asarray(series, dtype=np.float64), size)
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)  # a flat series maps to -1, as in scikit-learn
    cos = (x - lo) * (2.0 / span) - 1.0
    sin = np.sqrt(np.clip(1.0 - cos**2, 0.0, 1.0))
    if method == "summation":
        return cos[:, :, None] * cos[:, None, :] - sin[:, :, None] * sin[:, None, :]
    return sin[:, :, None] * cos[:, None, :] - cos[:, :, None] * sin[:, None, :]


def _transformer(view: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """A function (n, L) series -> (n, S, S) images for one image view."""
    size = view["image_size"]
    if view["kind"] == "gaf":
        return lambda series: gramian_angular_field(series, size, view["method"])
    from pyts.approximation import PiecewiseAggregateApproximation
    from pyts.image import MarkovTransitionField, RecurrencePlot

    if view["kind"] == "mtf":
        return MarkovTransitionField(image_size=size, n_bins=view["n_bins"]).fit_transform
    paa = PiecewiseAggregateApproximation(window_size=None, output_size=size)
    return lambda series: RecurrencePlot().fit_transform(paa.fit_transform(series))


def compute_view(X: np.ndarray, view: dict[str, Any]) -> np.ndarray:
    """The view of (N, C, L) samples; pure, no caching."""
    view = _normalise(view)
    if X.ndim != 3:
        raise ValueError(f"expected samples of shape (N, C, L), got {X.shape}")
    if view["kind"] == "signal":
        return X
    n, c, length = X.shape
    size = view["image_size"]
    if size > length:
        raise ValueError(
            f"view {_describe(view)}: image_size {size} exceeds series length {length}"
        )
    transform = _transformer(view)
    series = np.asarray(X, dtype=np.float64).reshape(n * c, length)
    out = np.empty((n * c, size, size), dtype=np.float32)
    step = max(1, _CHUNK_CELLS // (length * length))
    for i in range(0, n * c, step):
        out[i : i + step] = transform(series[i : i + step])
    return out.reshape(n, c, size, size)


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``path`` so that readers see either no file or a complete one, never a torn one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_view(
    X: np.ndarray,
    view: dict[str, Any],
    *,
    data_key: str,
    split: str,
    cache_dir: Path,
    log: Callable[[str], None] = print,
) -> np.ndarray:
    """The view of ``X``, from ``cache_dir`` when an earlier run computed it already.

    ``data_key`` must identify ``X`` (use ``Arrays.key``). Image views come back read-only,
    memory-mapped from the cache file; a cache file that cannot be read or has the wrong shape
    is recomputed. One log line tells whether the view was computed or loaded.
    """
    view = _normalise(view)
    if view["kind"] == "signal":
        return X
    label = f"view {_describe(view)} {split}"
    cache_dir = Path(cache_dir)
    path = cache_dir / f"{view_key(data_key, split, view)}.npy"
    size = view["image_size"]
    expected = (X.shape[0], X.shape[1], size, size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Runs that start together and need the same view take turns: the first computes it,
    # the others wait on the lock and then load its file instead of computing it again.
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        note = ""
        if path.exists():
            try:
                cached = np.load(path, mmap_mode="r")
                if cached.shape == expected and cached.dtype == np.float32:
                    log(f"{label}: loaded from cache {path}")
                    return cached
                note = f" (replaced a cache file with shape {cached.shape}, dtype {cached.dtype})"
            except (OSError, ValueError, EOFError) as e:
                note = f" (replaced an unreadable cache file: {e})"
        _transformer(view)  # may import pyts (numba compiles for seconds): not part of the timing
        start = time.perf_counter()
        array = compute_view(X, view)
        elapsed = time.perf_counter() - start
        _save_atomic(path, array)
    log(f"{label}: computed in {elapsed:.2f} s, cached as {path}{note}")
    return np.load(path, mmap_mode="r")
