"""The validation split (``data.val``): rows of the training split held out for model
selection, so that the test set never decides which epoch, checkpoint or teacher is "best".

The split depends only on the training labels (and subjects), the fraction and the split's
own seed, never on the run seed: every seed of a group validates on the same rows. It is
stratified by class (scikit-learn's ``StratifiedShuffleSplit``); with ``by_subject`` whole
subjects go to one side (``StratifiedGroupKFold``, its first fold), since windows of one
person on both sides of a split leak. The rows are taken out of the training split after its
views are prepared, so the view cache (keyed by the whole training split) is shared with runs
without validation; the frozen-teacher cache is keyed by ``train_key``, as its rows differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from kdtui.engine.data import DataError

S = TypeVar("S")  # the trainer's Split: a dataclass with views, labels and image stats


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


def split_rows(data: dict[str, Any], y_train: np.ndarray) -> np.ndarray | None:
    """The training rows held out that the spec's ``data`` asks for; None without
    ``data.val`` or when the validation windows come from the file."""
    val = data.get("val")
    if not val or val.get("from_file"):
        return None
    groups = subjects(data["path"], len(y_train)) if val.get("by_subject") else None
    return val_rows(y_train, val["fraction"], val["seed"], groups)


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
