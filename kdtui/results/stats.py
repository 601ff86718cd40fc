"""Results: run summaries grouped by configuration, with per-seed statistics.

One row per group key; a seed counts once (its latest finished run). ``summarize`` turns a
group into text once, so the CLI, the TUI and the exports print the same numbers.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from kdtui.store import ACTIVE

Metric = Literal["best", "last"]  # the best epoch's accuracy, or the last epoch's
#: After a mean over the seeds finished so far while others are queued or running.
PARTIAL_MARK = "*"


def _sample_std(values: list[float], mean: float) -> float:
    """The sample standard deviation (n − 1) in two passes of ``math.fsum``: as exact as
    floats allow. ``statistics.stdev`` computes in Fractions, 15× slower, and the table of a
    study computes thousands; values so large that their squares overflow fall back to it."""
    variance = math.fsum((v - mean) * (v - mean) for v in values) / (len(values) - 1)
    return math.sqrt(variance) if math.isfinite(variance) else statistics.stdev(values)


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float | None
    std: float | None  # sample std (n − 1); None below two values
    min: float | None
    max: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> Stats:
        """Statistics of the finite values: a nan or inf (a diverged run, a bad import) is
        left out rather than turning every number of the group into nan, or crashing
        ``statistics``. ``n`` counts the values used."""
        values = [v for v in values if math.isfinite(v)]
        if not values:
            return cls(0, None, None, None, None)
        try:
            mean = math.fsum(values) / len(values)  # statistics.fmean's sum, without its checks
        except OverflowError:  # fsum of huge values; the exact mean still fits a float
            mean = float(statistics.mean(values))
        std = _sample_std(values, mean) if len(values) > 1 else None
        return cls(len(values), mean, std, min(values), max(values))

    def rounded(self, ndigits: int = 6) -> dict[str, Any]:
        """For JSON: accuracies are float32 on the GPU, and 30.000001907348633 is noise."""
        return {k: _round(v, ndigits) for k, v in asdict(self).items()}

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
    # No done run with an accuracy; the last run failed, crashed or was cancelled.
    failed_seeds: list[int] = field(default_factory=list)
    ended: dict[int, str] = field(default_factory=dict)  # failed seed → that run's status
    first_created: float = 0.0
    # where the done seeds trained here chose their best epoch: "val" or "test"
    selected_on: set[str] = field(default_factory=set)

    @property
    def best(self) -> Stats:
        return Stats.of(list(self.best_by_seed.values()))

    @property
    def last(self) -> Stats:
        return Stats.of(list(self.last_by_seed.values()))

    @property
    def best_selected_on(self) -> str | None:
        """Where the best epochs were chosen: "val" when every seed trained here chose on
        its validation split, "test" when any chose on the test set (runs without
        ``data.val``), None for outside results only (their selection is not known)."""
        if "test" in self.selected_on:
            return "test"
        return "val" if self.selected_on else None

    @property
    def n(self) -> int:
        return len(self.best_by_seed)

    def digits(self, digits: int) -> int:
        """Decimals to show: two more for a group written as fractions (0.7412), so that
        it keeps the precision its percentages would have."""
        return digits + 2 if scales(self.best_by_seed.values()) == {"fraction"} else digits

    def nonfinite_seeds(self, metric: Metric | None = None) -> list[int]:
        """Done seeds with a nan or inf accuracy, left out of the statistics: of ``metric``
        (best or last epoch), or of either when both are shown."""
        seeds: set[int] = set()
        for m in (metric,) if metric else ("best", "last"):
            by_seed = self.best_by_seed if m == "best" else self.last_by_seed
            if not all(map(math.isfinite, by_seed.values())):  # mostly all are: a C loop
                seeds.update(s for s, v in by_seed.items() if not math.isfinite(v))
        return sorted(seeds)

    def status_note(self, metric: Metric | None = None, *, progress: bool = False) -> str:
        """What is missing, so a partial mean is never mistaken for a final one: seeds still
        to come, then the ended ones by what happened (failed, crashed, cancelled), then
        the seeds of ``metric`` (or of either) left out for not being finite. ``progress``
        words the seeds to come as how far the group is (``2 of 3 seeds finished``), for a
        table that shows the partial mean beside it; the app's Results screen, which shows
        the note in place of that mean, keeps ``1 running/queued``."""
        parts = []
        if self.pending_seeds and progress:
            total = self.n + len(self.pending_seeds)
            parts.append(f"{self.n} of {total} seeds finished")
        elif self.pending_seeds:
            parts.append(f"{len(self.pending_seeds)} running/queued")
        if self.failed_seeds:  # most groups have none: a study's table asks thousands
            ended = Counter(self.ended.get(s, "failed") for s in self.failed_seeds)
            order = {status: i for i, status in enumerate(ENDED_ORDER)}
            for status in sorted(ended, key=lambda st: (order.get(st, len(order)), st)):
                parts.append(f"{ended[status]} {ENDED_NAMES.get(status, status)}")
        if nonfinite := self.nonfinite_seeds(metric):
            parts.append(f"{len(nonfinite)} not finite")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The group for ``--format json``: numbers rounded to 6 decimals, and a nan or inf
        seed as null (JSON has no such numbers)."""
        return {
            "group_key": self.group_key,
            "name": self.name,
            "label": self.label,
            "loss": self.loss,
            "dataset": self.dataset,
            "n": self.n,
            "seeds": sorted(self.best_by_seed),
            "best_acc": self.best.rounded(),
            "last_acc": self.last.rounded(),
            "best_by_seed": {str(k): _round(v) for k, v in sorted(self.best_by_seed.items())},
            "last_by_seed": {str(k): _round(v) for k, v in sorted(self.last_by_seed.items())},
            "pending_seeds": sorted(self.pending_seeds),
            "failed_seeds": sorted(self.failed_seeds),
            "best_selected_on": self.best_selected_on,
        }


#: How a table's note says where its "best" epochs were chosen: a spec without
#: ``data.val`` picks its best epoch on the test set, which flatters it.
SELECTED_ON = {
    frozenset({"test"}): "best epoch chosen on the test set (no validation split: data.val)",
    frozenset({"val"}): "best epoch chosen on the validation split; its test accuracy shown",
    frozenset({"test", "val"}): "best epoch chosen on validation, on the test set where marked ° "
    "(no data.val)",
}


#: A split as a best epoch's label names it (``picked_on``).
PICKED_ON = {"val": "validation", "test": "test"}


def picked_on(selected_on: str | None) -> str:
    """``, picked on test`` / ``, picked on validation`` after a best epoch's number (on
    test it flatters the run), nothing where it is not known."""
    return f", picked on {PICKED_ON[selected_on]}" if selected_on in PICKED_ON else ""


def run_selected_on(run: dict[str, Any]) -> str | None:
    """Where one run chose its best epoch: its ``best_selected_on``, "test" for a run
    trained before the field existed, None for an outside result (not known)."""
    if run.get("source", "kdtui") != "kdtui":
        return None
    return run.get("best_selected_on") or "test"


def selected_on_note(rows: Iterable[GroupRow], *, marked: bool = False) -> str | None:
    """The one line every "best" figure carries: where its epochs were chosen (None when
    no group was trained here). A mix names its test-chosen groups, unless ``marked``
    (the table marks them ° itself)."""
    rows = list(rows)
    chosen = frozenset({row.best_selected_on for row in rows} - {None})
    if not chosen:
        return None
    if len(chosen) == 1 or marked:
        return SELECTED_ON[chosen]  # type: ignore[index]
    names = [row.name for row in rows if row.best_selected_on == "test"]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"best epoch chosen on validation, on the test set for {shown} (no data.val)"


# Ended seeds without a result, named by what happened, in this order in a note.
ENDED_ORDER = ("failed", "crashed", "cancelled", "done")
ENDED_NAMES = {"done": "without accuracy", "None": "without status"}


def scales(values: Iterable[float]) -> set[Literal["fraction", "percent"]]:
    """How accuracies are written: as fractions (0.682), percentages (68.2), or both
    (mixed up). 0 and 1 read the same either way and tell nothing; nan and inf neither."""
    return {
        "fraction" if v < 1 else "percent" for v in values if math.isfinite(v) and v not in (0, 1)
    }


def _round(value: float | int | None, ndigits: int = 6) -> float | int | None:
    """A number for JSON: rounded, and None for nan/inf (not valid JSON)."""
    if isinstance(value, float):
        return round(value, ndigits) if math.isfinite(value) else None
    return value


def _accuracy(value: Any) -> float | None:
    """An accuracy from the store as a float; a value that is no number at all (a hand-
    edited index) becomes nan, so it shows up instead of crashing the table."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


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
        best = _accuracy(run.get("best_acc"))
        if status == "done" and best is not None:
            last = _accuracy(run.get("last_acc"))
            row.best_by_seed[seed] = best
            row.last_by_seed[seed] = best if last is None else last
            if on := run_selected_on(run):
                row.selected_on.add(on)
        elif status in ACTIVE:
            row.pending_seeds.append(seed)
        else:
            row.failed_seeds.append(seed)
            row.ended[seed] = str(status)
    names: dict[str, int] = {}
    for row in rows.values():
        names[row.name] = names.get(row.name, 0) + 1
    for row in rows.values():
        if names[row.name] > 1:  # same name, different configuration: tell them apart
            row.name = f"{row.name} [{row.group_key[:6]}]"
    return sorted(rows.values(), key=lambda r: r.first_created)


def _fmt(value: float | None, digits: int, missing: str = "–") -> str:
    return missing if value is None or math.isnan(value) else f"{value:.{digits}f}"


@dataclass(frozen=True)
class Summary:
    """A group's statistics as text, shared by ``kdtui table``'s exports and the app's
    Results screen so both show the same numbers and name what is missing the same way."""

    mean: str  # "mean ± std" of the finished seeds, or ``missing``
    min: str
    max: str
    note: str  # status_note(): seeds pending, failed, cancelled, not finite
    pending: bool  # seeds still queued or running: the mean is not final yet
    mark: str = ""  # PARTIAL_MARK after a mean that seeds still to come will change
    progress: str = ""  # the note with the seeds to come as "2 of 3 seeds finished"

    @property
    def marked_mean(self) -> str:
        """The mean as a table that shows partial means prints it: ``86.90 ± 1.74*``."""
        return self.mean + self.mark


def summarize(
    row: GroupRow, metric: Metric = "best", digits: int = 2, missing: str = "–"
) -> Summary:
    """Mean ± std, min and max over the seeds that finished, whatever happened to the
    others: a failed or cancelled seed is named in ``note``, it does not hide the rest; a
    mean that seeds still running will change is marked (``mark``) and ``progress`` says
    how many seeds it holds."""
    stats = row.best if metric == "best" else row.last
    digits = row.digits(digits)
    mean, mark = _mean_and_mark(row, stats, digits, missing)
    note = row.status_note(metric)
    return Summary(
        mean,
        _fmt(stats.min, digits, missing),
        _fmt(stats.max, digits, missing),
        note,
        bool(row.pending_seeds),
        mark,
        row.status_note(metric, progress=True) if row.pending_seeds else note,  # same words
    )


def mean_and_mark(
    row: GroupRow, metric: Metric = "best", digits: int = 2, missing: str = "–"
) -> tuple[str, str]:
    """``summarize(...)``'s ``mean`` and ``mark`` alone, for a table that shows nothing
    else of that metric (the last epoch's): a study's table asks for thousands, and
    wording notes and min/max that nobody reads was a third of printing it."""
    stats = row.best if metric == "best" else row.last
    return _mean_and_mark(row, stats, row.digits(digits), missing)


def _mean_and_mark(row: GroupRow, stats: Stats, digits: int, missing: str) -> tuple[str, str]:
    if stats.mean is None:
        return missing, ""
    return stats.mean_pm_std(digits), PARTIAL_MARK if row.pending_seeds else ""
