"""Checkpoints: reading one without unpickling code, the frozen teachers built from theirs,
and writing a run's own (atomically, with a JSON sidecar kdtui reads without torch)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kdtui.engine import data as datasets
from kdtui.engine.inputs import view_id
from kdtui.engine.models import WideResNet
from kdtui.needs import resolve_need
from kdtui.spec import Experiment, ModelSpec
from kdtui.spec.checkpoint import checkpoint_problem
from kdtui.store import Store, WriteFailed, atomic_write, describe_os_error


def build_model(spec: ModelSpec, arrays: datasets.Arrays) -> WideResNet:
    """The network ``spec`` describes, sized to the data: its classes and input channels."""
    return WideResNet(
        depth=spec.depth,
        width=spec.width,
        num_classes=arrays.num_classes,
        in_channels=arrays.in_channels,
        dim=int(spec.dim or 1),
        dropout=spec.dropout,
    )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A kdtui checkpoint (or a bare state dict), loaded without unpickling code."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if why := checkpoint_problem(path):  # what it is instead, where torch would say "101"
        raise RuntimeError(why)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt file
        raise RuntimeError(
            f"checkpoint {path} is unreadable or corrupt: {exc}".splitlines()[0]
        ) from exc
    return ckpt if isinstance(ckpt, dict) else {"model": ckpt}


def save_checkpoint(
    path: Path, payload: dict[str, Any], model: dict[str, Any], run_id: str, run_dir: Path
) -> None:
    """``payload`` written atomically to ``path``, with a JSON sidecar (the ``model`` spec,
    the epoch, the run) so that kdtui can check a checkpoint's architecture without torch."""
    # Serialised in memory first, so that a full disk fails in our own write — one
    # clear OSError, the temp file removed — not deep in torch ("unexpected pos").
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    meta = {"model": model, "epoch": payload["epoch"], "run_id": run_id}
    try:
        path.parent.mkdir(exist_ok=True)
        atomic_write(path, buffer.getbuffer())
        atomic_write(path.with_suffix(".json"), json.dumps(meta).encode())
    except OSError as exc:
        raise WriteFailed(describe_os_error(exc, "writing", run_dir)) from None


# ---------------------------------------------------------------------- teachers


@dataclass
class Teacher:
    model: WideResNet
    view: str
    weight: float
    source: str
    checkpoint: Path


def load_teachers(
    store: Store,
    run_spec: dict[str, Any],
    exp: Experiment,
    arrays: datasets.Arrays,
    device: torch.device,
    *,
    log: Callable[[str], None],
) -> tuple[list[Teacher], list[dict[str, Any]]]:
    """Build each teacher, load its weights, freeze it in eval mode."""
    runs = store.runs() if any(t.experiment for t in exp.teachers) else []
    needs = iter(run_spec["needs"])
    teachers, records = [], []
    for t in exp.teachers:
        assert t.model is not None  # the validator filled it in
        if t.experiment:
            need = next(needs)
            state, detail = resolve_need(need, runs)
            if state != "ready":
                raise RuntimeError(detail or f"teacher {t.experiment!r} has no finished run yet")
            path, source = store.run_dir(detail) / "ckpt" / "best.pt", detail
        else:
            path, source = Path(str(t.checkpoint)), str(t.checkpoint)
        model = build_model(t.model, arrays)
        state_dict = load_checkpoint(path).get("model")
        try:
            model.load_state_dict(state_dict)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise RuntimeError(
                f"teacher checkpoint {path} does not fit {t.model.label()}: {_misfit(exc)}"
            ) from exc
        model.to(device).eval().requires_grad_(False)
        if device.type == "cuda" and t.model.dim == 2:
            model.to(memory_format=torch.channels_last)
        teachers.append(Teacher(model, view_id(t.model), t.weight, source, path))
        records.append(
            {
                "run_id": source if t.experiment else None,
                "checkpoint": str(path),
                "model": t.model.label(),
                "weight": t.weight,
            }
        )
        log(f"teacher {t.model.label()} (weight {t.weight:g}) from {path}")
    return teachers, records


def _misfit(exc: Exception) -> str:
    """The one line of a failed ``load_state_dict`` that says what differs (PyTorch's
    first line only names the model): the first shape mismatch, else the first problem."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    for line in lines:
        if m := re.match(
            r"size mismatch for (\S+): copying a param with shape torch\.Size\((\[.*?\])\) "
            r"from checkpoint, the shape in current model is torch\.Size\((\[.*?\])\)",
            line,
        ):
            return (
                f"{m[1]} is {m[2]} in the checkpoint, {m[3]} here "
                "(other input channels or classes than this data?)"
            )
    problems = [line for line in lines[1:] if line] or lines[:1]
    return problems[0][:300] if problems and problems[0] else type(exc).__name__
