"""Two groups compared the way a reviewer asks: Δ of the means, a 95 % bootstrap interval
of Δ, and a t-test's p-value, paired by seed when both groups hold the same seeds (the seed
fixes the data split and the initialisation, so pairs cancel that noise), Welch's otherwise.

scipy is imported inside ``compare_groups`` only: ``kdtui`` starts without it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

from kdtui.results.stats import (
    GroupRow,
    Metric,
    Stats,
    _round,
    scales,
    selected_on_note,
    summarize,
)

CONFIDENCE = 0.95
N_RESAMPLES = 9999
RANDOM_STATE = 0  # fixed: the same store gives the same interval every time

Test = Literal["paired-t", "welch-t"]


class CompareError(ValueError):
    """Two groups that cannot be compared; the message is one line for the user."""


@dataclass(frozen=True)
class Comparison:
    a: GroupRow
    b: GroupRow
    metric: Metric
    a_by_seed: dict[int, float]  # the finished seeds with a finite accuracy
    b_by_seed: dict[int, float]
    delta: float | None  # mean(B) − mean(A)
    ci95: tuple[float, float] | None
    p_value: float | None
    test: Test | None
    ci_method: str | None  # scipy.stats.bootstrap's method: BCa, or percentile where BCa fails
    why: str = ""  # why there is no test or no interval, in a sentence
    notes: list[str] = field(default_factory=list)  # seeds still to come, failed, …

    @property
    def stats_a(self) -> Stats:
        return Stats.of(self.a_by_seed.values())

    @property
    def stats_b(self) -> Stats:
        return Stats.of(self.b_by_seed.values())

    @property
    def paired(self) -> bool:
        """Both groups hold the same seeds: the test and the interval go by seed pairs."""
        return self.a_by_seed.keys() == self.b_by_seed.keys()

    @property
    def digits(self) -> int:
        return max(self.a.digits(2), self.b.digits(2))

    def to_json(self) -> dict[str, Any]:
        def side(row: GroupRow, by_seed: dict[int, float]) -> dict[str, Any]:
            return {
                "name": row.name,
                "group_key": row.group_key,
                **Stats.of(by_seed.values()).rounded(),
                "seeds": sorted(by_seed),
                "best_selected_on": row.best_selected_on,
            }

        return {
            "metric": self.metric,
            "a": side(self.a, self.a_by_seed),
            "b": side(self.b, self.b_by_seed),
            "n_a": len(self.a_by_seed),
            "n_b": len(self.b_by_seed),
            "mean_a": _round(self.stats_a.mean),
            "mean_b": _round(self.stats_b.mean),
            "delta": _round(self.delta),
            "ci95": None if self.ci95 is None else [_round(v) for v in self.ci95],
            "p_value": None if self.p_value is None else float(f"{self.p_value:.6g}"),
            "test": self.test,
            "ci_method": self.ci_method,
            "n_resamples": N_RESAMPLES if self.ci95 is not None else None,
            "why": self.why or None,
            "notes": self.notes,
        }


def _finite(row: GroupRow, metric: Metric) -> dict[int, float]:
    values = row.best_by_seed if metric == "best" else row.last_by_seed
    return {s: v for s, v in sorted(values.items()) if math.isfinite(v)}


def _diff_of_means(b: Any, a: Any, axis: int = -1) -> Any:
    return b.mean(axis=axis) - a.mean(axis=axis)


def compare_groups(a: GroupRow, b: GroupRow, metric: Metric = "best") -> Comparison:
    """Compare B with A on the finished seeds of each. Raises CompareError for groups
    written on different scales (fractions against percentages)."""
    va, vb = _finite(a, metric), _finite(b, metric)
    sa, sb = scales(va.values()), scales(vb.values())
    if sa and sb and sa != sb:
        raise CompareError(
            f"{a.name} is written as {'/'.join(sorted(sa))}s and {b.name} as "
            f"{'/'.join(sorted(sb))}s: a difference between them means nothing"
        )
    notes = [f"{row.name}: {note}" for row in (a, b) if (note := summarize(row, metric).progress)]
    if metric == "best" and (on := selected_on_note((a, b))):
        notes.append(on)  # a best chosen on the test set flatters its group
    mean_a, mean_b = Stats.of(va.values()).mean, Stats.of(vb.values()).mean
    delta = None if mean_a is None or mean_b is None else mean_b - mean_a
    paired = set(va) == set(vb)
    test: Test = "paired-t" if paired else "welch-t"
    small = [(row, n) for row, n in ((a, len(va)), (b, len(vb))) if n < 2]
    if small:
        said = " and ".join(
            f"{row.name} has {n} finished seed{'' if n == 1 else 's'}" for row, n in small
        )
        why = f"{said}: a t-test and a bootstrap interval need at least 2 seeds in each group"
        return Comparison(a, b, metric, va, vb, delta, None, None, None, None, why, notes)

    import numpy as np
    from scipy import stats

    xa, xb = np.array(list(va.values())), np.array(list(vb.values()))
    # paired: the seeds are in the same (sorted) order on both sides
    diffs = xb - xa if paired else np.zeros(0)
    with warnings.catch_warnings():  # degenerate data (no spread) shows as nan, said below
        warnings.simplefilter("ignore")
        if paired:
            p = float(stats.ttest_rel(xb, xa).pvalue)
            ci, method = _bootstrap((diffs,), np.mean)
        else:
            p = float(stats.ttest_ind(xb, xa, equal_var=False).pvalue)
            ci, method = _bootstrap((xb, xa), _diff_of_means)  # each resampled on its own
    # Equal up to float rounding (81.1 − 80.1 against 82.0 − 81.0) is no spread: a t of
    # 1e14 from rounding noise would print p = 0.
    flat = _flat(diffs) if paired else _flat(xa) and _flat(xb)
    if flat or not math.isfinite(p):
        why = (
            "the per-seed differences are all equal: a t-test has no spread to go on"
            if paired
            else "neither group's seeds spread: a t-test has nothing to go on"
        )
        return Comparison(a, b, metric, va, vb, delta, ci, None, None, method, why, notes)
    return Comparison(a, b, metric, va, vb, delta, ci, p, test, method, "", notes)


def _flat(x: Any) -> bool:
    """No spread beyond float rounding."""
    return float(x.max() - x.min()) <= 1e-9 * max(1.0, float(abs(x).max()))


def _bootstrap(data: tuple[Any, ...], statistic: Any) -> tuple[Any, str | None]:
    """A 95 % interval from scipy.stats.bootstrap with a fixed random state: BCa, or the
    percentile interval where BCa cannot be computed (few distinct resamples); None where
    neither can (no spread at all)."""
    from scipy import stats

    for method in ("BCa", "percentile"):
        res = stats.bootstrap(
            data,
            statistic,
            n_resamples=N_RESAMPLES,
            confidence_level=CONFIDENCE,
            method=method,
            vectorized=True,
            random_state=RANDOM_STATE,
        )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(lo) and math.isfinite(hi):
            return (lo, hi), method
    return None, None
