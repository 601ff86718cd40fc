"""Reading what a run kept for analysis (``RUN/analysis/<which>.npz``, written by the
engine's ``kdtui.engine.inspect``) without torch, and saying plainly when it kept none."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The archives a run may hold, and the folder they live in inside the run folder.
WHICH = ("best", "last")
FOLDER = "analysis"


class NoAnalysisData(Exception):
    """The run kept nothing to analyse (or not the epoch asked for): one line says why."""


@dataclass(frozen=True)
class Model:
    """A model whose maps were kept: the student (index 0) or one of its teachers."""

    role: str
    label: str
    view: int  # index into RunData.views
    source: str | None
    maps: list[np.ndarray]  # per feature group, (S, *spatial) float32
    pred: np.ndarray  # (S,) predicted class of each sample


@dataclass(frozen=True)
class RunData:
    """One archive: the test split's logits, labels and embeddings at one epoch, and the
    fixed samples' maps and inputs."""

    which: str
    epoch: int
    logits: np.ndarray  # (N, K) float32
    labels: np.ndarray  # (N,) int64
    emb: np.ndarray  # (N, D) float32
    samples: np.ndarray  # (S,) indices into the test split
    classes: list[str]
    channels: list[int]
    models: list[Model]
    views: list[dict[str, Any]]  # view options, e.g. {"kind": "gaf", ...}
    view_inputs: list[np.ndarray]  # per view, (S, C, ...)
    metrics: dict[str, float] = field(default_factory=dict)  # as the engine reported them
    p: float = 2.0

    @property
    def n_classes(self) -> int:
        return self.logits.shape[1]


def available(run_dir: Path) -> list[str]:
    """The archives this run folder holds, best first."""
    return [w for w in WHICH if (run_dir / FOLDER / f"{w}.npz").is_file()]


def load(run_dir: Path, which: str = "best") -> RunData:
    """The archive ``which`` of a run; NoAnalysisData, with a one-line reason, when the run
    has none (trained before kdtui kept it, stopped before that epoch) or it is unreadable."""
    path = run_dir / FOLDER / f"{which}.npz"
    if not path.is_file():
        have = available(run_dir)
        if have:
            raise NoAnalysisData(f"no {which!r} analysis data (it has: {', '.join(have)})")
        raise NoAnalysisData("no analysis data (trained before kdtui kept it)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays["meta"]))
        models = []
        for i, m in enumerate(meta["models"]):
            maps, g = [], 0
            while f"att_m{i}_g{g}" in arrays:
                maps.append(arrays[f"att_m{i}_g{g}"].astype(np.float32))
                g += 1
            models.append(
                Model(m["role"], m["label"], m["view"], m.get("source"), maps, arrays[f"pred_m{i}"])
            )
        return RunData(
            which=which,
            epoch=int(meta["epoch"]),
            logits=arrays["logits"].astype(np.float32, copy=False),
            labels=arrays["labels"].astype(np.int64, copy=False),
            emb=arrays["emb"].astype(np.float32),
            samples=arrays["samples"],
            classes=[str(c) for c in meta["classes"]],
            channels=[int(c) for c in meta["channels"]],
            models=models,
            views=list(meta["views"]),
            view_inputs=[arrays[f"view_v{j}"] for j in range(len(meta["views"]))],
            metrics=dict(meta.get("metrics") or {}),
            p=float(meta.get("p", 2.0)),
        )
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise NoAnalysisData(f"{path} is unreadable ({type(exc).__name__}: {exc})") from exc
