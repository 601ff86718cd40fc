"""Results: run summaries grouped by configuration, with per-seed statistics.

One row per group key; a seed counts once (its latest finished run). Text formats for the
CLI and the notes live here too, so the CLI, the TUI and exports print the same numbers.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from kdtui.store import ACTIVE


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float | None
    std: float | None  # sample std (n − 1); None below two values
    min: float | None
    max: float | None

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        if not values:
            return cls(0, None, None, None, None)
        std = statistics.stdev(values) if len(values) > 1 else None
        return cls(len(values), statistics.fmean(values), std, min(values), max(values))

    def mean_pm_std(self, digits: int = 2) -> str:
        if self.mean is None:
            return "–"
        std = "–" if self.std is None else f"{self.std:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {std}"


@dataclass
class GroupRow:
    group_key: str
    name: str
    label: str
    loss: str
    dataset: str
    best_by_seed: dict[int, float] = field(default_factory=dict)
    last_by_seed: dict[int, float] = field(default_factory=dict)
    pending_seeds: list[int] = field(default_factory=list)  # queued or running
    failed_seeds: list[int] = field(default_factory=list)  # no done run, last one failed
    first_created: float = 0.0

    @property
    def best(self) -> Stats:
        return Stats.of(list(self.best_by_seed.values()))

    @property
    def last(self) -> Stats:
        return Stats.of(list(self.last_by_seed.values()))

    @property
    def n(self) -> int:
        return len(self.best_by_seed)

    def status_note(self) -> str:
        """What is missing, so a partial mean is never mistaken for a final one."""
        parts = []
        if self.pending_seeds:
            parts.append(f"{len(self.pending_seeds)} running/queued")
        if self.failed_seeds:
            parts.append(f"{len(self.failed_seeds)} failed")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "group_key": self.group_key,
            "name": self.name,
            "label": self.label,
            "loss": self.loss,
            "dataset": self.dataset,
            "n": self.n,
            "seeds": sorted(self.best_by_seed),
            "best_acc": asdict(self.best),
            "last_acc": asdict(self.last),
            "best_by_seed": {str(k): v for k, v in sorted(self.best_by_seed.items())},
            "last_by_seed": {str(k): v for k, v in sorted(self.last_by_seed.items())},
            "pending_seeds": sorted(self.pending_seeds),
            "failed_seeds": sorted(self.failed_seeds),
        }


def group_rows(
    runs: Iterable[dict[str, Any]], group_keys: Iterable[str] | None = None
) -> list[GroupRow]:
    """Group run summaries into result rows, oldest group first."""
    wanted = set(group_keys) if group_keys is not None else None
    rows: dict[str, GroupRow] = {}
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: r.get("created") or 0):
        key = run.get("group_key")
        if not key or (wanted is not None and key not in wanted):
            continue
        if key not in rows:
            rows[key] = GroupRow(
                key,
                run.get("name", "?"),
                run.get("label", ""),
                run.get("loss", ""),
                run.get("dataset", ""),
                first_created=run.get("created") or 0,
            )
        seed = run.get("seed", 0)
        prev = latest.get((key, seed))
        # A seed's result is its latest done run; an unfinished rerun does not hide it.
        if prev is None or run.get("status") == "done" or prev.get("status") != "done":
            latest[(key, seed)] = run
    for (key, seed), run in latest.items():
        row, status = rows[key], run.get("status")
        if status == "done" and run.get("best_acc") is not None:
            row.best_by_seed[seed] = float(run["best_acc"])
            row.last_by_seed[seed] = float(run.get("last_acc", run["best_acc"]))
        elif status in ACTIVE:
            row.pending_seeds.append(seed)
        else:
            row.failed_seeds.append(seed)
    names: dict[str, int] = {}
    for row in rows.values():
        names[row.name] = names.get(row.name, 0) + 1
    for row in rows.values():
        if names[row.name] > 1:  # same name, different configuration: tell them apart
            row.name = f"{row.name} [{row.group_key[:6]}]"
    return sorted(rows.values(), key=lambda r: r.first_created)


def _fmt(value: float | None, digits: int, missing: str = "–") -> str:
    return missing if value is None or math.isnan(value) else f"{value:.{digits}f}"


EXPORT_HEAD = (
    "group",
    "teacher → student",
    "loss",
    "n",
    "best acc (mean ± std)",
    "min",
    "max",
    "last acc (mean ± std)",
    "best acc per seed",
    "note",
)


def export_cells(r: GroupRow, digits: int = 2, missing: str = "–") -> list[str]:
    """One group as the cells of ``EXPORT_HEAD``: every text export formats its numbers here."""
    b, last = r.best, r.last
    seeds = ", ".join(f"{v:.{digits}f}" for _, v in sorted(r.best_by_seed.items()))
    return [
        r.name,
        r.label,
        r.loss,
        str(r.n),
        b.mean_pm_std(digits),
        _fmt(b.min, digits, missing),
        _fmt(b.max, digits, missing),
        last.mean_pm_std(digits),
        seeds or missing,
        r.status_note(),
    ]


def markdown_table(rows: list[GroupRow], digits: int = 2) -> str:
    """The table a researcher pastes into notes: mean ± std over seeds, best and last, and
    each seed's best accuracy."""
    lines = ["| " + " | ".join(EXPORT_HEAD) + " |", "|" + "---|" * len(EXPORT_HEAD)]
    for r in rows:
        cells = [c.replace("|", "\\|") for c in export_cells(r, digits)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: list[GroupRow], digits: int = 4) -> str:
    """The table for a spreadsheet: the same cells, mean and std in separate columns."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "group",
            "group_key",
            "teacher_student",
            "loss",
            "n",
            "best_mean",
            "best_std",
            "best_min",
            "best_max",
            "last_mean",
            "last_std",
            "best_per_seed",
            "note",
        ]
    )
    for r in rows:
        name, label, loss, n, _, lo, hi, _, seeds, note = export_cells(r, digits, missing="")
        b, last = r.best, r.last
        mean_std = [_fmt(v, digits, "") for v in (b.mean, b.std)]
        last_mean_std = [_fmt(v, digits, "") for v in (last.mean, last.std)]
        writer.writerow(
            [name, r.group_key, label, loss, n, *mean_std, lo, hi, *last_mean_std, seeds, note]
        )
    return buf.getvalue()


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",
    "±": r"$\pm$",
    "→": r"$\rightarrow$",
    "×": r"$\times$",
    "λ": r"$\lambda$",
    "–": "--",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex_table(rows: list[GroupRow], digits: int = 2) -> str:
    """A booktabs ``tabular`` for a paper, with the same cells as the markdown table."""
    cols = "lllr" + "l" * (len(EXPORT_HEAD) - 4)
    lines = [
        rf"\begin{{tabular}}{{{cols}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in EXPORT_HEAD) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(latex_escape(c) for c in export_cells(r, digits)) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
