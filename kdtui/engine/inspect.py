"""What a run keeps for ``kdtui analyze`` and the app's Analysis tab, so that nobody has to
retrain a model to see where it errs and what it looks at.

At its best and last epochs the engine writes ``RUN/analysis/<which>.npz`` (``which`` is
``best`` or ``last``), an uncompressed NumPy archive that reads without pickle:

- ``logits`` (N, K) float32, ``labels`` (N,) int64: the whole test split, exactly as the
  epoch's metrics saw them (the analysis recomputes accuracy and ECE from them);
- ``emb`` (N, D) float16: the pooled pre-logit embeddings (``ModelOutput.emb``), for t-SNE;
- ``samples`` (S,) int64: a fixed, class-balanced handful of test indices, chosen from the
  labels alone with a seed of their own, so every run on the same data shows the same ones;
- ``att_m{i}_g{g}`` (S, *spatial) float16: the attention map of feature group ``g`` of model
  ``i`` (0 the student, 1.. its teachers) on those samples, as Attention Transfer defines
  it: mean over channels of |f|^p, flattened and divided by its L2 norm per sample;
- ``pred_m{i}`` (S,) int64: what model ``i`` predicts for each sample;
- ``view_v{j}`` (S, C, ...) float16 (uint8 for dataset images): the input of view ``j`` for
  those samples (the signal, or one GAF / MTF / RP image per channel);
- ``meta``: a JSON string: epoch, metrics, classes, channels, models and views.

float16 keeps three significant digits: far below what a t-SNE scatter or a heat map shows,
half the bytes. The logits stay float32 so the recomputed metrics equal the reported ones.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

#: Seed of the sample choice: fixed, and independent of the run seed on purpose.
SAMPLE_SEED = 16_2024
#: Most samples whose maps and views are kept (two per class up to eight classes).
MAX_SAMPLES = 16
#: The files a run may hold, in the order they are listed.
WHICH = ("best", "last")
#: Bump when the archive's layout changes.
FORMAT = 1


class SplitLike(Protocol):
    """The trainer's split on the device: stored rows per view id, and how a row becomes a
    model input (dataset images are normalised on the fly)."""

    views: dict[str, Tensor]
    labels: Tensor

    def inputs(self, view: str, x: Tensor, gen: torch.Generator | None = None) -> Tensor: ...


@dataclass
class Member:
    """One model whose maps are kept: the student first, then each teacher."""

    role: str  # "student", "teacher 1", ...
    label: str  # e.g. "WRN16-3(gaf)"
    model: nn.Module
    view: str  # the trainer's view id of its input
    view_spec: dict[str, Any]  # the view's options, e.g. {"kind": "gaf", ...}; "image" for images
    source: str | None = None  # a teacher's run id or checkpoint


def sample_indices(
    labels: np.ndarray, max_samples: int = MAX_SAMPLES, seed: int = SAMPLE_SEED
) -> np.ndarray:
    """A class-balanced handful of indices into ``labels``, grouped by class in label order:
    two per class while that fits ``max_samples``, else one per class of up to
    ``max_samples`` classes spread evenly over the labels. Depends only on the labels and
    the seed, so every run (every seed, every model) on the same data gets the same ones."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    per_class = 2 if 2 * len(classes) <= max_samples else 1
    if len(classes) > max_samples:
        classes = classes[np.linspace(0, len(classes) - 1, max_samples).round().astype(int)]
    rng = np.random.default_rng(seed)
    picked = []
    for c in classes:
        pool = np.flatnonzero(labels == c)
        picked.append(np.sort(rng.choice(pool, size=min(per_class, len(pool)), replace=False)))
    return np.concatenate(picked).astype(np.int64) if picked else np.zeros(0, np.int64)


def attention_maps(feats: list[Tensor], p: float = 2.0) -> list[Tensor]:
    """Attention Transfer's map of each feature group, float32, (B, *spatial): mean over
    channels of |f|^p, divided by its L2 norm over the flattened map of each sample (the Q
    that ``losses.at_loss`` compares, before alignment)."""
    out = []
    for f in feats:
        energy = f.float().abs().pow(p).mean(dim=1)
        flat = energy.flatten(1)
        flat = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
        out.append(flat.view_as(energy))
    return out


@dataclass
class Outputs:
    """A model's outputs on a whole split, from one pass in eval mode."""

    logits: Tensor  # (N, K) float32
    emb: Tensor  # (N, D) pre-logit embeddings
    maps: list[Tensor] | None = None  # per group, the kept samples' attention maps
    pred: Tensor | None = None  # the kept samples' predicted classes


@torch.no_grad()
def predict(
    model: nn.Module,
    split: SplitLike,
    view: str,
    batch_size: int,
    amp_dtype: torch.dtype | None,
    device: torch.device,
    samples: Tensor | None = None,
    p: float = 2.0,
) -> Outputs:
    """Logits (float32) and embeddings of a whole split in one pass, and the attention maps
    of the rows ``samples`` on the way: the epoch's metrics and what the run keeps for
    analysis come from the same forward (eval mode: a row's outputs do not depend on the
    other rows of its batch), so keeping them costs no second pass."""
    model.eval()
    x = split.views[view]
    step = max(256, batch_size)
    logits, embs, rows, maps, preds = [], [], [], [], []
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        for i in range(0, len(x), step):
            out = model(split.inputs(view, x[i : i + step]))
            logits.append(out.logits.float())
            embs.append(out.emb)
            if samples is not None:
                hit = torch.nonzero((samples >= i) & (samples < i + step)).flatten()
                if len(hit):
                    local = samples[hit] - i
                    rows.append(hit)
                    maps.append(attention_maps([f[local] for f in out.feats], p))
                    preds.append(out.logits[local].argmax(1))
    result = Outputs(torch.cat(logits), torch.cat(embs))
    if samples is not None and rows:
        back = torch.argsort(torch.cat(rows))  # batch order back to the samples' order
        result.maps = [torch.cat([m[g] for m in maps])[back] for g in range(len(maps[0]))]
        result.pred = torch.cat(preds)[back]
    return result


def _compact(x: Tensor) -> np.ndarray:
    """A tensor as a NumPy array for the archive: integers and uint8 images as they are,
    floating point as float16."""
    arr = x.detach().cpu()
    if arr.is_floating_point():
        return arr.to(torch.float16).numpy()
    return arr.numpy()


class Keeper:
    """Writes a run's analysis archives. The sample inputs and the teachers' maps are
    computed once (teachers are frozen); everything else comes from the student's pass
    over the test split that the epoch's metrics need anyway (``Keeper.predict``)."""

    def __init__(
        self,
        folder: Path,
        split: SplitLike,
        members: list[Member],
        *,
        classes: list[str],
        channels: list[int],
        p: float,
        amp_dtype: torch.dtype | None,
        device: torch.device,
    ) -> None:
        self.folder = folder
        self.split = split
        self.members = members
        self.p = p
        self.amp_dtype = amp_dtype
        self.device = device
        labels = split.labels.cpu().numpy()
        self.samples = sample_indices(labels)
        self._idx = torch.as_tensor(self.samples, device=split.labels.device)
        views: list[str] = []
        for m in members:
            if m.view not in views:
                views.append(m.view)
        self._views = views
        self.fixed: dict[str, np.ndarray] = {
            "labels": labels.astype(np.int64),
            "samples": self.samples,
            **{f"view_v{j}": _compact(split.views[v][self._idx]) for j, v in enumerate(views)},
        }
        self.meta: dict[str, Any] = {
            "format": FORMAT,
            "classes": list(classes),
            "channels": list(channels),
            "p": p,
            "sample_seed": SAMPLE_SEED,
            "views": [next(m.view_spec for m in members if m.view == v) for v in views],
            "models": [
                {"role": m.role, "label": m.label, "view": views.index(m.view), "source": m.source}
                for m in members
            ],
        }
        self._teachers: dict[str, np.ndarray] | None = None

    def predict(self, student: nn.Module, batch_size: int) -> Outputs:
        """The student's outputs on the test split, with the kept samples' maps."""
        view = self.members[0].view
        return predict(student, self.split, view, batch_size, self.amp_dtype, self.device,
                       self._idx, self.p)  # fmt: skip

    @torch.no_grad()
    def _on_samples(self, i: int, model: nn.Module) -> dict[str, np.ndarray]:
        """Teacher ``i``'s attention maps and predictions on the samples (once: frozen)."""
        was_training = model.training
        model.eval()
        view = self.members[i].view
        x = self.split.inputs(view, self.split.views[view][self._idx])
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            out = model(x)
        model.train(was_training)
        maps = attention_maps(out.feats, self.p)
        arrays = {f"att_m{i}_g{g}": _compact(a) for g, a in enumerate(maps)}
        arrays[f"pred_m{i}"] = out.logits.argmax(1).cpu().numpy().astype(np.int64)
        return arrays

    def save(self, which: str, epoch: int, out: Outputs, metrics: dict[str, float]) -> Path:
        """Write ``<which>.npz`` from the student's ``out`` (``predict``), atomically: a
        reader sees the old file or the new one."""
        if self._teachers is None:
            self._teachers = {}
            for i, m in enumerate(self.members[1:], start=1):
                self._teachers.update(self._on_samples(i, m.model))
        assert out.maps is not None and out.pred is not None, "predict without the samples"
        arrays = {
            **self.fixed,
            **self._teachers,
            **{f"att_m0_g{g}": _compact(a) for g, a in enumerate(out.maps)},
            "pred_m0": out.pred.cpu().numpy().astype(np.int64),
            "logits": out.logits.detach().float().cpu().numpy(),
            "emb": _compact(out.emb),
            "meta": np.array(
                json.dumps({**self.meta, "which": which, "epoch": epoch, "metrics": metrics})
            ),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{which}.npz"
        tmp = path.with_name(f".{which}.npz.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        return path


def kept(folder: Path) -> list[str]:
    """Which archives an analysis folder holds, for the run's summary."""
    return [w for w in WHICH if (folder / f"{w}.npz").is_file()]
