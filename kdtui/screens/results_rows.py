"""The results screen's flat table, one row per group: its columns, each cell's text
(seeds, mean ± std with what it leaves out, Δ to a baseline), the sort keys, and the runs
whose curves make a group's. Pure functions of ``kdtui.results``' rows: no widgets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kdtui.fmt import fmt_acc
from kdtui.results import PARTIAL_MARK, GroupRow, Metric, Summary, summarize
from kdtui.results.pivot import delta_to
from kdtui.store import ACTIVE
from kdtui.widgets import Column, Tone

# Between a mean and the note on the seeds left out of it: "80.58 ± 0.53 · 1 failed".
NOTE_SEP = " · "
CANCELLED = "⊘"  # a seed cell: cancelled, told apart from ✗ failed or crashed
BASELINE = "base"  # the Δ of the baseline itself
MISSING = "–"  # no number (yet)
WHOLE_LABEL = "teacher → student · loss"  # the label column before the specs are read


def _mean_tone(text: str) -> Tone | None:
    final = "±" in text and NOTE_SEP not in text and not text.endswith(PARTIAL_MARK)
    return None if final else "warning"


def seed_tone(text: str) -> Tone | None:
    """A seed cell's colour: a failed seed stands out, a cancelled one recedes."""
    return {"✗": "error", CANCELLED: "muted"}.get(text)


# The seeds and their mean first, then what tells the group apart (never cut below 16
# characters: enough for the value that differs), then min and max, which the seeds show
# too: in 80 columns those are what gets cut, not the means nor the labels.
FIRST = [
    Column("mark", "✓"),
    Column("group", "group", max_width=28),
    Column("n", "n", justify="right"),
]
MEAN = Column("mean", "mean ± std", justify="right", tone=_mean_tone)
DELTA = Column("delta", "Δ", justify="right")
LABEL = Column("label", WHOLE_LABEL, max_width=60, flex=True, min_width=16)
LAST = [
    Column("min", "min", justify="right"),
    Column("max", "max", justify="right"),
]


def seed_cell(row: GroupRow, seed: int, values: dict[int, float]) -> str:
    """A seed's accuracy (nan or inf as such), … still to come, ✗ failed, ⊘ cancelled."""
    if seed in values:
        return fmt_acc(values[seed])
    if seed in row.pending_seeds:
        return "…"
    if seed in row.failed_seeds:
        return CANCELLED if row.ended.get(seed) == "cancelled" else "✗"
    return ""


def mean_cell(row: GroupRow, summary: Summary, metric: Metric) -> str:
    """Mean ± std of the finished seeds, marked * while others still run (the line under
    the table says how many), then what the finished ones leave out: ``80.58 ± 0.53 · 1
    failed``. A group with no finished seed shows – (or what became of its seeds)."""
    ended = replace(row, pending_seeds=[]).status_note(metric)  # failed, not finite...
    if summary.mean == MISSING:
        return ended or MISSING
    return summary.mean + summary.mark + (NOTE_SEP + ended if ended else "")


def row_cells(
    row: GroupRow,
    seeds: list[int],
    best: bool,
    marked: bool,
    label: str | None = None,
    delta: str | None = None,
) -> tuple[str, ...]:
    """A group's row: ✓, name, n, one cell per seed, mean, Δ (with a baseline), its label
    (what tells it apart; its models and loss when that is not known), min, max."""
    metric: Metric = "best" if best else "last"
    summary = summarize(row, metric, missing=MISSING)  # once: a std costs (statistics)
    values = row.best_by_seed if best else row.last_by_seed
    return (
        "✓" if marked else "",
        row.name,
        str(row.n),
        *(seed_cell(row, s, values) for s in seeds),
        mean_cell(row, summary, metric),
        *(() if delta is None else (delta,)),
        f"{row.label} · {row.loss}" if label is None else label,
        summary.min,
        summary.max,
    )


def sort_key(
    column: str,
    best: bool,
    labels: dict[str, str] | None = None,
    base: GroupRow | None = None,
) -> Callable[[GroupRow], Any]:
    """Numbers sort as numbers; a group with nothing to show sorts last."""

    def num(value: float | None) -> float:
        return -math.inf if value is None or not math.isfinite(value) else value

    metric: Metric = "best" if best else "last"
    if column.startswith("s") and column[1:].isdigit():
        seed = int(column[1:])
        return lambda r: num((r.best_by_seed if best else r.last_by_seed).get(seed))
    simple: dict[str, Callable[[GroupRow], Any]] = {
        "mark": lambda r: r.first_created,
        "group": lambda r: r.name,
        "label": lambda r: (labels or {}).get(r.group_key) or f"{r.label} {r.loss}",
        "n": lambda r: r.n,
        "mean": lambda r: num((r.best if best else r.last).mean),
        "delta": lambda r: num(delta_to(r, base, metric) if base is not None else None),
        "min": lambda r: num((r.best if best else r.last).min),
        "max": lambda r: num((r.best if best else r.last).max),
    }
    return simple[column]


def curve_runs(runs: list[dict[str, Any]], group_key: str) -> list[str]:
    """The runs whose curves make a group's: per seed its latest done run, else its
    latest running one (the runs its numbers come from, or will)."""
    chosen: dict[int, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: r.get("created") or 0):
        if run.get("group_key") != group_key or run.get("status") not in ("done", *ACTIVE):
            continue
        seed, prev = run.get("seed", 0), chosen.get(run.get("seed", 0))
        if prev is None or run.get("status") == "done" or prev.get("status") != "done":
            chosen[seed] = run
    return [r["run_id"] for _, r in sorted(chosen.items())]
