"""The validation split (``data.val``): rows of the training split held out for model
selection, so that the test set never decides which epoch, checkpoint or teacher is "best".

The split depends only on the training labels (and subjects), the fraction and the split's
own seed, never on the run seed: every seed of a group validates on the same rows. It is
stratified by class (scikit-learn's ``StratifiedShuffleSplit``); with ``by_subject`` whole
subjects go to one side (``StratifiedGroupKFold``, its first fold), since windows of one
person on both sides of a split leak. The rows are taken out of the training split after its
views are prepared, so the view cache (keyed by the whole training split) is shared with runs
without validation; the frozen-teacher cache is keyed by ``train_key``, as its rows differ.

scikit-learn computes the split, but importing it (and scipy) costs an engine's start a second
or two of CPU, paid by every run of a study: the rows are cached as a small .npy in the
workspace's cache folder (``split_rows``), keyed by all the split depends on, so that only the
first run of a split imports scikit-learn and every later one (a resumed run too) reads the
very rows it was first given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import json
import math
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from kdtui.engine.data import DataError, stable_hash
from kdtui.safefs import open_nofollow
from kdtui.storage import atomic_write

S = TypeVar("S")  # the trainer's Split: a dataclass with views, labels and image stats

#: Bump when the split's computation changes, so that cached rows of the old one are not reused.
_SPLIT_VERSION = 1


def val_rows(
    y: np.ndarray, fraction: float, seed: int, groups: np.ndarray | None = None
) -> np.ndarray:
    """Sorted indices of the training rows held out for validation."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

    y = np.asarray(y)
    counts = np.bincount(y)
    if groups is None:
        n_val = int(np.ceil(fraction * len(y)))
        if counts[counts > 0].min() < 2 or n_val < len(np.unique(y)) or len(y) - n_val < 1:
            raise DataError(
                f"data.val: {fraction:g} of {len(y)} training samples cannot hold every class "
                f"on both sides (fewest samples of a class: {counts[counts > 0].min()})"
            )
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        _, val = next(splitter.split(np.zeros(len(y)), y))
        return np.sort(val)
    n_groups = len(np.unique(groups))
    folds = max(2, round(1 / fraction))
    if n_groups < folds:
        raise DataError(
            f"data.val: {n_groups} subjects cannot give {fraction:g} of them to validation "
            f"(at least {folds} needed)"
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    _, val = next(splitter.split(np.zeros(len(y)), y, groups))
    return np.sort(val)


def subjects(path: str | Path, n: int) -> np.ndarray:
    """The ``subjects_train`` array of an .npz: one subject id per training window."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "subjects_train" not in npz.files:
                raise DataError(
                    f"{path}: data.val.by_subject needs an array subjects_train (N,) in the "
                    f"file, one subject id per training window (it has: {', '.join(npz.files)})"
                )
            ids = npz["subjects_train"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read subjects_train ({e})") from e
    if ids.shape != (n,):
        raise DataError(f"{path}: subjects_train has shape {ids.shape}, expected ({n},)")
    return ids


def from_file(data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """An .npz's own X_val and y_val, read as ``load_npz`` reads the training windows: the
    same layout and channels, z-normalised with the training split's statistics, labels
    mapped to the training labels' indices."""
    from kdtui.spec import npz_labels

    path = data["path"]
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("X_val", "y_val") if k not in npz.files]
            if missing:
                raise DataError(
                    f"{path}: data.val.from_file needs {' and '.join(missing)} in the file "
                    f"(it has: {', '.join(npz.files)})"
                )
            a = {k: npz[k] for k in ("X_train", "y_train", "X_val", "y_val")}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read X_val / y_val ({e})") from e
    if data.get("layout") == "NLC":
        a["X_train"], a["X_val"] = (np.swapaxes(a[k], 1, 2) for k in ("X_train", "X_val"))
    X, y = a["X_val"], a["y_val"]
    if X.ndim != 3 or X.shape[1:] != a["X_train"].shape[1:] or X.dtype.kind not in "iuf":
        raise DataError(
            f"{path}: X_val has shape {X.shape} ({X.dtype}), expected numbers of shape "
            f"(M, {', '.join(map(str, a['X_train'].shape[1:]))}) like X_train"
        )
    if y.shape != (len(X),) or not len(X):
        raise DataError(f"{path}: y_val has shape {y.shape}, expected ({len(X)},) and M > 0")
    if bad := int(np.count_nonzero(~np.isfinite(X))):
        raise DataError(f"{path}: X_val has {bad} NaN or infinite values")
    y_train, y_val, problems = npz_labels(a["y_train"], y)
    if problems:
        raise DataError(f"{path}: {problems[0].replace('y_test', 'y_val')}")
    chans = data.get("channels") or list(range(X.shape[1]))
    train = np.asarray(a["X_train"], dtype=np.float64)[:, chans]
    # data._finish's normalisation: the training split's per-channel mean and std
    mean = train.mean(axis=(0, 2), keepdims=True)
    std = np.maximum(train.std(axis=(0, 2), keepdims=True), 1e-8)
    X_val = ((np.asarray(X, dtype=np.float64)[:, chans] - mean) / std).astype(np.float32)
    return X_val, np.searchsorted(np.unique(y_train), y_val).astype(np.int64)


def split_rows(
    data: dict[str, Any],
    y_train: np.ndarray,
    *,
    data_key: str | None = None,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> np.ndarray | None:
    """The training rows held out that the spec's ``data`` asks for; None without
    ``data.val`` or when the validation windows come from the file. Given the data's key
    (``Arrays.key``) and a cache folder, the rows are read from there when an earlier run
    computed them (``cached_rows``), else computed and cached."""
    val = data.get("val")
    if not val or val.get("from_file"):
        return None
    groups = subjects(data["path"], len(y_train)) if val.get("by_subject") else None
    if data_key is None or cache_dir is None:
        return val_rows(y_train, val["fraction"], val["seed"], groups)
    return cached_rows(
        y_train,
        val["fraction"],
        val["seed"],
        groups,
        data_key=data_key,
        cache_dir=cache_dir,
        log=log,
    )


def _digest(a: np.ndarray) -> str:
    """SHA-256 of an array's values and dtype (not of its memory layout)."""
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.dtype.str.encode() + b"|" + a.tobytes()).hexdigest()


def split_key(
    data_key: str, y: np.ndarray, fraction: float, seed: int, groups: np.ndarray | None
) -> str:
    """Stable key of everything the split's rows depend on: the data, its labels (and how
    many), the split's settings and, by subject, the subjects; never the run seed."""
    y = np.asarray(y)
    return stable_hash(
        {
            "version": _SPLIT_VERSION,
            "data": data_key,
            "rows": len(y),
            "labels": _digest(y.astype(np.int64, copy=False)),
            "fraction": float(fraction),
            "seed": int(seed),
            "by_subject": groups is not None,
            "subjects": None if groups is None else _digest(np.asarray(groups)),
        }
    )


def _implausible(
    rows: np.ndarray, n: int, fraction: float, groups: np.ndarray | None
) -> str | None:
    """Why cached ``rows`` cannot be a split of ``n`` rows (None: they can): a 1-d integer
    array of sorted distinct rows, as many as StratifiedShuffleSplit holds out, or whole
    subjects."""
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        return f"shape {rows.shape}, dtype {rows.dtype}"
    if not 0 < len(rows) < n or rows[0] < 0 or rows[-1] >= n or np.any(np.diff(rows) <= 0):
        return f"{len(rows)} rows, not distinct sorted rows of {n}"
    if groups is None and len(rows) != math.ceil(fraction * n):
        return f"{len(rows)} rows, not {math.ceil(fraction * n)}"
    if groups is not None:
        held = np.zeros(n, dtype=bool)
        held[rows] = True
        if np.intersect1d(groups[held], groups[~held]).size:
            return "a subject on both sides"
    return None


def _read_rows(path: Path) -> np.ndarray:
    """The array of a cache file, read without following a symbolic link or unpickling."""
    with open_nofollow(path, "rb") as fh:
        return np.load(io.BytesIO(fh.read()), allow_pickle=False)


def cached_rows(
    y: np.ndarray,
    fraction: float,
    seed: int,
    groups: np.ndarray | None = None,
    *,
    data_key: str,
    cache_dir: Path,
    log: Callable[[str], None] = print,
) -> np.ndarray:
    """``val_rows``, from ``cache_dir`` when an earlier run computed them already.

    Runs that start together take turns on a lock: the first computes and the others read
    its file. A cache file that is unreadable, a symbolic link or not a plausible split is
    computed again and replaced; the file is written atomically. One log line tells whether
    the rows were cached or computed."""
    n, cache_dir = len(y), Path(cache_dir)
    path = cache_dir / f"val-{split_key(data_key, y, fraction, seed, groups)}.npy"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(OSError):  # no lock (a link, a read-only folder): no turns
            lock = stack.enter_context(open_nofollow(path.with_suffix(".lock"), "ab+"))
            fcntl.flock(lock, fcntl.LOCK_EX)
        note = ""
        try:
            rows = _read_rows(path)
            if (why := _implausible(rows, n, fraction, groups)) is None:
                log(f"val split: cached ({len(rows)} of {n} rows, {path.name})")
                return rows.astype(np.int64, copy=False)
            note = f" (replaced a cache file with {why})"
        except FileNotFoundError:
            pass
        except (OSError, ValueError, EOFError) as e:  # a link, a torn or foreign file
            note = f" (replaced an unreadable cache file: {e})"
        start = time.perf_counter()  # scikit-learn's import included: what caching saves
        rows = val_rows(y, fraction, seed, groups).astype(np.int64, copy=False)
        elapsed = time.perf_counter() - start
        buffer = io.BytesIO()
        np.save(buffer, rows, allow_pickle=False)
        try:
            atomic_write(path, buffer.getbuffer())
        except OSError as e:  # a cache that cannot be written costs time, never the run
            note += f" (not cached: {e})"
    log(f"val split: computed ({len(rows)} of {n} rows) in {elapsed:.2f} s, {path.name}{note}")
    return rows


def hold_out(train: S, rows: np.ndarray) -> tuple[S, S]:
    """The training split without ``rows``, and those rows as the validation split."""
    labels = train.labels  # type: ignore[attr-defined]
    held = torch.zeros(len(labels), dtype=torch.bool)
    held[torch.as_tensor(rows)] = True
    parts = []
    for mask in (~held, held):
        idx = torch.nonzero(mask).flatten().to(labels.device)
        views = {k: v[idx] for k, v in train.views.items()}  # type: ignore[attr-defined]
        parts.append(dataclasses.replace(train, views=views, labels=labels[idx]))  # type: ignore[type-var]
    return parts[0], parts[1]


def train_key(data_key: str, data: dict[str, Any]) -> str:
    """The key of the training rows that remain: the data's own key when nothing is held
    out, else a key of the data and the split (for caches of per-row results)."""
    val = data.get("val")
    if not val or val.get("from_file"):
        return data_key
    text = json.dumps({"data": data_key, "val": val}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]
