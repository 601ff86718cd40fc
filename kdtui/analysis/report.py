"""One run's analysis on disk: every figure and a JSON file with every number shown."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdtui.analysis import figures
from kdtui.analysis.data import load
from kdtui.analysis.numbers import summarize
from kdtui.results.stats import picked_on, run_selected_on

FORMATS = ("png", "pdf")


@dataclass(frozen=True)
class Report:
    """What ``write`` produced: the numbers (as in the JSON) and the files written."""

    numbers: dict[str, Any]
    json_path: Path
    figures: list[Path]


def _finite(value: Any) -> Any:
    """JSON without NaN or infinities (not valid JSON): such a number becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def epoch_label(which: str, epoch: int, selected_on: str | None) -> str:
    """``best epoch 28, picked on test``, ``best epoch 9, picked on validation``,
    ``last epoch 30``: every "best" figure says where its epoch was chosen."""
    return f"{which} epoch {epoch}" + (picked_on(selected_on) if which == "best" else "")


def write(
    run: dict[str, Any],
    run_dir: Path,
    which: str,
    out_dir: Path,
    fmt: str = "png",
    progress: Callable[[str], None] = lambda _: None,
) -> Report:
    """Analyse archive ``which`` of the run ``run`` (its index summary) and write
    ``<which>.json`` and ``<which>-<figure>.<fmt>`` into ``out_dir``. Raises
    ``NoAnalysisData`` when the run kept nothing to analyse."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    data = load(run_dir, which)
    numbers = summarize(data, progress)
    head = {"run_id": run.get("run_id"), "name": run.get("name"), "seed": run.get("seed"),
            "which": numbers.pop("which"), "epoch": numbers.pop("epoch")}  # fmt: skip
    selected_on = run_selected_on(run) if which == "best" else None
    if which == "best":
        head["best_selected_on"] = selected_on  # "val" or "test", as ls --format json
    numbers = {**head, **numbers}
    out_dir.mkdir(parents=True, exist_ok=True)
    title = (
        f"{run.get('name')} (seed {run.get('seed')}), {epoch_label(which, data.epoch, selected_on)}"
    )
    stem = which
    progress("drawing the figures…")
    drawn = [
        figures.confusion(numbers, title, out_dir / f"{stem}-confusion.{fmt}"),
        figures.per_class(numbers, title, out_dir / f"{stem}-per-class.{fmt}"),
        figures.reliability(numbers, title, out_dir / f"{stem}-reliability.{fmt}"),
        figures.tsne(numbers, title, out_dir / f"{stem}-tsne.{fmt}"),
        figures.attention(data, numbers, title, out_dir / f"{stem}-attention.{fmt}"),
        *figures.views(data, numbers, title, out_dir, stem, fmt),
    ]
    paths = [p for p in drawn if p is not None]
    numbers["figures"] = [p.name for p in paths]
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(_finite(numbers), indent=1, allow_nan=False) + "\n")
    return Report(numbers, json_path, paths)
