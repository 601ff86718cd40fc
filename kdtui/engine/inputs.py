"""What a run reads: its dataset's arrays, and every view of them its models need, held on
the training device as tensors (batches are index slices of them: no Dataset, no collate,
no worker processes for data that fit in memory)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kdtui.engine import augment
from kdtui.engine import data as datasets
from kdtui.engine.images import ImageArrays, load_cifar10, load_image_folder
from kdtui.engine.views import cached_view
from kdtui.spec import ModelSpec, canonical_json

#: Zero padding of the standard random crop for image datasets (CIFAR / WRN recipe).
CROP_PADDING = 4


def load_arrays(data: dict[str, Any]) -> datasets.Arrays:
    kind, channels = data["dataset"], data.get("channels")
    if kind == "basicmotions":
        return datasets.load_basicmotions(channels)
    if kind == "synthetic-har":
        options = {
            k: v
            for k, v in data.items()
            if k not in ("dataset", "channels", "val") and v is not None
        }
        return datasets.make_synthetic_har(channels=channels, **options)
    if kind == "npz":
        return datasets.load_npz(data["path"], channels, data.get("layout", "NCL"))
    if kind == "cifar10":
        return load_cifar10(data["path"])
    if kind == "image-folder":
        return load_image_folder(data["path"], data.get("test_split"))
    raise ValueError(f"unknown dataset {kind!r}")


@dataclass
class Split:
    views: dict[str, Tensor]  # view id -> (N, ...) on the device; dataset images stay uint8
    labels: Tensor
    # view id -> per-channel train (mean, std), (1, C, 1, 1), for the uint8 image views
    image_stats: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def inputs(self, view: str, x: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """Model input from stored rows of ``view``: dataset images are cropped and flipped
        at random first when ``gen`` is given (training), then normalised; others as is."""
        if view not in self.image_stats:
            return x
        if gen is not None:
            x = augment.crop_flip(x, CROP_PADDING, gen)
        mean, std = self.image_stats[view]
        return (x.float() - mean) / std

    def take(
        self, idx: Tensor, gen: torch.Generator | None = None, only: set[str] | None = None
    ) -> tuple[dict[str, Tensor], Tensor]:
        """Rows ``idx`` of every view (or of the views in ``only``), and their labels."""
        views = {k: v for k, v in self.views.items() if only is None or k in only}
        return {k: self.inputs(k, v[idx], gen) for k, v in views.items()}, self.labels[idx]


def view_tensor(arr: np.ndarray, device: torch.device) -> Tensor:
    """A view's array as a tensor on ``device``. On the CPU a cached view stays memory-mapped
    (no copy: pages are read from the cache file as batches touch them, and runs sharing
    the view share the page cache); on a GPU it is copied over once."""
    if device.type == "cpu":
        with warnings.catch_warnings():  # read-only map: training only ever reads views
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return torch.from_numpy(np.array(arr, dtype=np.float32)).to(device)


def view_id(spec: ModelSpec) -> str:
    return canonical_json(spec.view.model_dump(mode="json"))


def prepare_splits(
    arrays: datasets.Arrays,
    models: list[ModelSpec],
    cache_dir: Path,
    device: torch.device,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    log: Callable[[str], None],
) -> tuple[Split, Split, Split | None]:
    """Every view the student and the teachers need, once each, as device tensors: of the
    train and test splits, and of ``val`` (an npz's own validation windows) when given."""
    out = []
    for split, X, y in (
        ("train", arrays.X_train, arrays.y_train),
        ("test", arrays.X_test, arrays.y_test),
        *([("val", *val)] if val is not None else []),
    ):
        views: dict[str, Tensor] = {}
        stats: dict[str, tuple[Tensor, Tensor]] = {}
        for spec in models:
            vid = view_id(spec)
            if vid in views:
                continue
            if isinstance(arrays, ImageArrays):  # every model reads the "image" view: uint8
                views[vid] = torch.from_numpy(X).to(device)
                mean, std = (
                    torch.from_numpy(v).to(device).view(1, -1, 1, 1)
                    for v in (arrays.mean, arrays.std)
                )
                stats[vid] = (mean, std)
            else:
                arr = cached_view(
                    X,
                    spec.view.model_dump(mode="json"),
                    data_key=arrays.key,
                    split=split,
                    cache_dir=cache_dir,
                    log=log,
                )
                views[vid] = view_tensor(arr, device)
        out.append(Split(views, torch.as_tensor(y, dtype=torch.long).to(device), stats))
    return out[0], out[1], out[2] if val is not None else None
