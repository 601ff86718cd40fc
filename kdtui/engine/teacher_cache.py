"""Frozen-teacher caching: a frozen teacher on fixed inputs gives the same outputs every
epoch, so they are computed once — or read from disk, where every seed of a group and later
groups with the same teacher and data find them — and indexed per batch afterwards.

Only what the loss reads is kept: the logits (KD), the feature groups of the feature terms
(AT, SP, AMD) and the embedding (DASK). The cache is off when the inputs are not fixed
(Mixup, CutMix, random crops) or when it would not fit the memory budget.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from kdtui.engine.models import ModelOutput, WideResNet
from kdtui.spec import LossSpec
from kdtui.store import atomic_write

MAX_BYTES = int(float(os.environ.get("KDTUI_TEACHER_CACHE_GB", "4")) * 2**30)


def needed_outputs(spec: LossSpec) -> tuple[tuple[int, ...], bool]:
    """Which feature groups, and whether the embedding, the loss reads from a teacher."""
    groups = sorted({g for term in (spec.at, spec.sp, spec.amd) if term for g in term.groups})
    return tuple(groups), spec.dask is not None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(checkpoint: Path, data_key: str, view: str, spec: LossSpec, dtype: str) -> str:
    """What produced the outputs: the teacher's weights (by content), the data and view,
    the outputs kept, and the precision they were computed in."""
    groups, emb = needed_outputs(spec)
    parts = [file_sha256(checkpoint), data_key, view, str(groups), str(emb), dtype]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


class CachedTeacher:
    """A teacher's outputs for every training sample; ``take(idx)`` gives a batch's."""

    def __init__(self, logits: Tensor, feats: dict[int, Tensor], emb: Tensor | None):
        self.logits, self.feats, self.emb = logits, feats, emb

    def take(self, idx: Tensor) -> ModelOutput:
        feats = [self.feats[g][idx] if g in self.feats else None for g in range(3)]
        emb = self.emb[idx] if self.emb is not None else None
        return ModelOutput(self.logits[idx], feats, emb)  # type: ignore[arg-type]

    def state(self) -> dict[str, Tensor]:
        out = {"logits": self.logits, **{f"feat{g}": t for g, t in self.feats.items()}}
        return out if self.emb is None else {**out, "emb": self.emb}

    @classmethod
    def from_state(cls, state: dict[str, Tensor], device: torch.device) -> CachedTeacher:
        feats = {int(k[4:]): v.to(device) for k, v in state.items() if k.startswith("feat")}
        emb = state["emb"].to(device) if "emb" in state else None
        return cls(state["logits"].to(device), feats, emb)


def output_bytes(model: WideResNet, one: Tensor, n: int, spec: LossSpec) -> int:
    """Bytes the kept outputs of ``n`` samples take, from one sample's forward pass."""
    groups, emb = needed_outputs(spec)
    with torch.no_grad():
        out = model(one)
    per_sample = out.logits.numel() + sum(out.feats[g].numel() for g in groups)
    per_sample += out.emb.numel() if emb else 0
    return per_sample * 4 * n


@torch.no_grad()
def compute(
    model: WideResNet,
    inputs: Callable[[Tensor], Tensor],
    n: int,
    spec: LossSpec,
    batch_size: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> CachedTeacher:
    """Run the frozen teacher over all ``n`` training samples once, a batch at a time (to
    bound memory), keeping what the loss reads."""
    groups, want_emb = needed_outputs(spec)
    logits, feats, embs = [], {g: [] for g in groups}, []
    for i in range(0, n, batch_size):
        idx = torch.arange(i, min(i + batch_size, n), device=device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(inputs(idx))
        logits.append(out.logits.float())
        for g in groups:
            feats[g].append(out.feats[g].float())
        if want_emb:
            embs.append(out.emb.float())
    return CachedTeacher(
        torch.cat(logits),
        {g: torch.cat(v) for g, v in feats.items()},
        torch.cat(embs) if want_emb else None,
    )


def load_or_compute(
    path: Path, device: torch.device, make: Callable[[], CachedTeacher], log: Callable[[str], None]
) -> CachedTeacher:
    """The cached outputs from ``path``, or computed by ``make`` and saved there."""
    if path.exists():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            log(f"teacher cache: loaded {path.name}")
            return CachedTeacher.from_state(state, device)
        except Exception as exc:  # a torn or foreign file: recompute, never fail the run
            log(f"teacher cache: {path.name} unreadable ({type(exc).__name__}), recomputing")
    cached = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({k: v.cpu() for k, v in cached.state().items()}, buffer)
    atomic_write(path, buffer.getvalue())
    log(f"teacher cache: computed and saved {path.name}")
    return cached
