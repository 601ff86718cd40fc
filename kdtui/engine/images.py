"""Image datasets from local folders: CIFAR-10 (python version) and class-per-folder trees.

Nothing is downloaded: a missing folder or a wrong layout is a DataError that says which
layout is expected. Images stay uint8, (N, 3, H, W) — a quarter of float32's memory (150 MB
for CIFAR-10's train split) — and the trainer crops, flips and normalises each batch on the
device with the train split's per-channel statistics (``ImageArrays.mean`` / ``std``).
"""

from __future__ import annotations

import codecs
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kdtui.engine.data import Arrays, DataError, stable_hash
from kdtui.spec.datasets import CIFAR10_LAYOUT, IMAGE_FOLDER_LAYOUT

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_SIDE = 32


@dataclass(frozen=True, eq=False)
class ImageArrays(Arrays):
    """Arrays whose X are uint8 images (N, C, H, W), with the train split's per-channel mean
    and std in pixel units (0..255), for normalising each batch on the device."""

    mean: np.ndarray
    std: np.ndarray


def channel_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and std of uint8 images (N, C, H, W), from one 256-bin
    histogram per channel: no float copy of the whole array."""
    values = np.arange(256, dtype=np.float64)
    mean, std = [], []
    for c in range(X.shape[1]):
        counts = np.bincount(X[:, c].ravel(), minlength=256).astype(np.float64)
        m = counts @ values / counts.sum()
        mean.append(m)
        std.append(max(math.sqrt(counts @ (values - m) ** 2 / counts.sum()), 1e-3))
    return np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)


def _images(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    classes: tuple[str, ...],
    key_parts: dict[str, Any],
) -> ImageArrays:
    mean, std = channel_stats(X_train)
    return ImageArrays(
        X_train=X_train,
        y_train=np.asarray(y_train, dtype=np.int64),
        X_test=X_test,
        y_test=np.asarray(y_test, dtype=np.int64),
        classes=classes,
        key=stable_hash(key_parts),
        mean=mean,
        std=std,
    )


def _listing_key(paths: list[Path]) -> list[tuple[str, int, int]]:
    """What identifies the files cheaply: name, size, modification time."""
    stats = [p.stat() for p in paths]
    return [(str(p), st.st_size, st.st_mtime_ns) for p, st in zip(paths, stats, strict=True)]


# ---------------------------------------------------------------------------------- CIFAR-10

# numpy's array rebuilder, wherever this numpy version keeps it (numpy.core or numpy._core)
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles spell bytes
}


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, numbers, strings and numpy arrays, and nothing else. A pickle
    may name any importable callable to run while loading; CIFAR-10 is distributed only as
    pickles, so instead of trusting the file, every global but numpy's array rebuilders
    (and bytes' codec) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: a CIFAR-10 batch holds only arrays, lists "
                "and strings"
            ) from None


def _unpickle(path: Path) -> dict[Any, Any]:
    try:
        with path.open("rb") as f:
            # encoding="bytes": the original files are Python 2 pickles with byte-string keys
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception as e:  # a malformed pickle raises many types; all mean the same here
        raise DataError(f"{path}: not a CIFAR-10 batch ({e}); {CIFAR10_LAYOUT}") from e
    if not isinstance(obj, dict):
        raise DataError(f"{path}: holds a {type(obj).__name__}, not a dict; {CIFAR10_LAYOUT}")
    return obj


def _field(batch: dict[Any, Any], name: str, path: Path) -> Any:
    for key in (name.encode(), name):
        if key in batch:
            return batch[key]
    raise DataError(f"{path}: no {name!r} entry; {CIFAR10_LAYOUT}")


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: images (N, 3, 32, 32) uint8 (rows of 3072 = R, G, B planes of 32×32,
    row-major) and labels (N,)."""
    batch = _unpickle(path)
    data = np.asarray(_field(batch, "data", path))
    labels = np.asarray(_field(batch, "labels", path))
    side = _CIFAR_SIDE
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * side * side:
        raise DataError(
            f"{path}: data is {data.dtype} {data.shape}, expected uint8 (N, 3072); {CIFAR10_LAYOUT}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(data):
        raise DataError(
            f"{path}: labels are {labels.dtype} {labels.shape}, expected {len(data)} integers; "
            f"{CIFAR10_LAYOUT}"
        )
    if len(labels) and labels.min() < 0:
        raise DataError(f"{path}: negative labels; {CIFAR10_LAYOUT}")
    return data.reshape(-1, 3, side, side), labels.astype(np.int64)


def load_cifar10(path: str | Path) -> ImageArrays:
    """CIFAR-10, python version, from ``path`` (data_batch_1..5, test_batch, and
    batches.meta for the class names if present). 50 000 train / 10 000 test 32×32 images."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; {CIFAR10_LAYOUT}")
    files = [root / name for name in (*_CIFAR_TRAIN, "test_batch")]
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        raise DataError(f"{root}: missing {', '.join(missing)}; {CIFAR10_LAYOUT}")
    train = [_cifar_batch(p) for p in files[:-1]]
    X_test, y_test = _cifar_batch(files[-1])
    X_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    meta = root / "batches.meta"
    if meta.is_file():
        names = [
            n.decode() if isinstance(n, bytes) else str(n)
            for n in _field(_unpickle(meta), "label_names", meta)
        ]
    else:
        names = [str(k) for k in range(int(y_train.max()) + 1)]
    top = int(max(y_train.max(), y_test.max()))
    if top >= len(names):
        raise DataError(f"{root}: label {top} but only {len(names)} classes; {CIFAR10_LAYOUT}")
    return _images(
        X_train,
        y_train,
        X_test,
        y_test,
        tuple(names),
        {"dataset": "cifar10", "files": _listing_key(files)},
    )


# ------------------------------------------------------------------------------ image-folder


def _class_files(folder: Path, classes: list[str], root: Path) -> tuple[list[Path], list[int]]:
    """Image files under folder/<class>/ (any depth: Tiny-ImageNet keeps train/<wnid>/images/),
    in a stable order, with their class indices."""
    found = sorted(d.name for d in folder.iterdir() if d.is_dir())
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(
            f"{folder}: class folder(s) {', '.join(unknown[:5])} not in {root / 'train'}; "
            f"{IMAGE_FOLDER_LAYOUT}"
        )
    files: list[Path] = []
    labels: list[int] = []
    for k, name in enumerate(classes):
        if name not in found:
            continue
        images = sorted(
            p for p in (folder / name).rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES
        )
        files += images
        labels += [k] * len(images)
    if not files:
        raise DataError(f"{folder}: no .png or .jpg images in class folders; {IMAGE_FOLDER_LAYOUT}")
    return files, labels


def _decode(files: list[Path], size: tuple[int, int] | None = None) -> np.ndarray:
    """RGB images as uint8 (N, 3, H, W); every image must have the size of the first (or
    ``size``): resizing would change what the published accuracies are about."""
    out: np.ndarray | None = None
    for i, path in enumerate(files):
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as e:  # UnidentifiedImageError is an OSError
            raise DataError(f"{path}: cannot read the image ({e})") from e
        if out is None:
            size = size or rgb.shape[:2]
            out = np.empty((len(files), 3, *size), dtype=np.uint8)
        if rgb.shape[:2] != tuple(out.shape[2:]):
            h, w = out.shape[2:]
            raise DataError(
                f"{path}: {rgb.shape[1]}×{rgb.shape[0]} pixels, but the dataset's images are "
                f"{w}×{h}: all images must have one size"
            )
        out[i] = rgb.transpose(2, 0, 1)
    assert out is not None  # _class_files never returns an empty list
    return out


def load_image_folder(path: str | Path, test_split: str | None = None) -> ImageArrays:
    """Class-per-folder images (CINIC-10, Tiny-ImageNet with val/ sorted into class folders):
    ``path/train/<class>/...`` and ``path/<test_split>/<class>/...``, .png or .jpg, decoded
    with Pillow to RGB. Classes are train's folder names in sorted order; ``test_split``
    defaults to the first of test, val, valid that exists."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; {IMAGE_FOLDER_LAYOUT}")
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DataError(f"{root}: no train/ folder; {IMAGE_FOLDER_LAYOUT}")
    splits = [test_split] if test_split else ["test", "val", "valid"]
    test_dir = next((root / s for s in splits if (root / s).is_dir()), None)
    if test_dir is None:
        raise DataError(f"{root}: no {'/, '.join(splits)}/ folder; {IMAGE_FOLDER_LAYOUT}")
    classes = sorted(d.name for d in train_dir.iterdir() if d.is_dir())
    if len(classes) < 2:
        raise DataError(
            f"{train_dir}: {len(classes)} class folder(s), need at least 2; {IMAGE_FOLDER_LAYOUT}"
        )
    train_files, y_train = _class_files(train_dir, classes, root)
    test_files, y_test = _class_files(test_dir, classes, root)
    X_train = _decode(train_files)
    X_test = _decode(test_files, size=X_train.shape[2:])
    return _images(
        X_train,
        np.asarray(y_train),
        X_test,
        np.asarray(y_test),
        tuple(classes),
        {
            "dataset": "image-folder",
            "train": _listing_key(train_files),
            "test": _listing_key(test_files),
        },
    )
