"""``kdtui compare A B``: Δ of the means, a 95 % bootstrap interval of Δ and a t-test's
p-value, checked against scipy on fixed numbers; paired by seed when both groups hold the
same seeds, Welch's otherwise; no test, said plainly, below two seeds."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from kdtui.cli import app as cli_app
from kdtui.results import CompareError, GroupRow, compare_groups, group_rows

A = {0: 80.1, 1: 81.0, 2: 79.5}
B = {0: 81.2, 1: 81.9, 2: 80.0}  # Δ per seed: 1.1, 0.9, 0.5
B4 = {0: 81.2, 1: 81.9, 3: 80.0, 4: 82.4}  # seed 2 failed, 3 and 4 added: no pairs


def group(name: str, best: dict[int, float], pending: list[int] | None = None) -> GroupRow:
    return GroupRow(
        f"key-{name}",
        name,
        "",
        "",
        "",
        best_by_seed=dict(best),
        last_by_seed={s: v - 1 for s, v in best.items()},
        pending_seeds=pending or [],
    )


def bootstrap(data: tuple[Any, ...], statistic: Any) -> tuple[float, float]:
    ci = stats.bootstrap(data, statistic, n_resamples=9999, random_state=0).confidence_interval
    return ci.low, ci.high


def test_same_seeds_are_paired_and_match_scipy():
    c = compare_groups(group("a", A), group("b", B))
    a, b = np.array(list(A.values())), np.array(list(B.values()))
    assert c.test == "paired-t" and c.ci_method == "BCa"
    assert c.delta == pytest.approx(b.mean() - a.mean()) == pytest.approx(0.833333, abs=1e-6)
    assert c.p_value == pytest.approx(stats.ttest_rel(b, a).pvalue)
    assert c.p_value == pytest.approx(0.0419979, abs=1e-6)  # t = 4.72 on 2 df, by hand
    assert c.ci95 == pytest.approx(bootstrap((b - a,), np.mean))
    # the paired interval is narrower than the unpaired one: the seeds' shared noise is gone
    unpaired = bootstrap((b, a), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis))
    assert c.ci95[1] - c.ci95[0] < unpaired[1] - unpaired[0]
    again = compare_groups(group("a", A), group("b", B))
    assert again.ci95 == c.ci95  # a fixed random state: the same interval every time


def test_different_seeds_take_welch_and_match_scipy():
    c = compare_groups(group("a", A), group("b", B4))
    a, b = np.array(list(A.values())), np.array(list(B4.values()))
    assert c.test == "welch-t"
    assert c.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    assert c.p_value != pytest.approx(stats.ttest_ind(b, a, equal_var=True).pvalue)
    assert c.ci95 == pytest.approx(
        bootstrap((b, a), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis))
    )
    doc = c.to_json()
    assert (doc["n_a"], doc["n_b"], doc["test"]) == (3, 4, "welch-t")
    assert doc["mean_b"] - doc["mean_a"] == pytest.approx(doc["delta"], abs=1e-6)


def test_a_group_below_two_seeds_gets_no_test_and_says_why():
    c = compare_groups(group("a", A), group("b", {0: 81.2}, pending=[1, 2]))
    assert (c.p_value, c.ci95, c.test) == (None, None, None)
    assert c.delta == pytest.approx(1.0)
    assert c.why == (
        "b has 1 finished seed: a t-test and a bootstrap interval need at least 2 seeds "
        "in each group"
    )
    assert c.notes == ["b: 1 of 3 seeds finished"]


def test_differences_equal_but_for_rounding_are_no_spread():
    """81.1 − 80.1 and 82.0 − 81.0 differ in the 14th digit: a t-test on that noise says
    p = 0; it is no evidence at all."""
    shifted = {s: v + 1.0 for s, v in A.items()}
    with warnings.catch_warnings():  # scipy warns of the cancellation, and answers anyway
        warnings.simplefilter("ignore")
        raw = stats.ttest_rel(np.array(list(shifted.values())), np.array(list(A.values())))
    assert not raw.pvalue > 1e-6  # what scipy alone reports (nan or ~0)
    c = compare_groups(group("a", A), group("b", shifted))
    assert c.p_value is None and c.delta == pytest.approx(1.0)
    assert c.why.startswith("the per-seed differences are all equal")


def test_fractions_against_percentages_are_refused():
    with pytest.raises(CompareError, match="fractions .* percents"):
        compare_groups(group("a", {0: 0.801, 1: 0.81}), group("b", B))


def test_the_last_epoch_metric_compares_last_accuracies():
    c = compare_groups(group("a", A), group("b", B), metric="last")
    assert c.a_by_seed == {s: v - 1 for s, v in A.items()}
    assert c.p_value == pytest.approx(0.0419979, abs=1e-6)  # a shift of both: same test


# ---------------------------------------------------------------------- the command


def write_index(root: Path, groups: dict[str, dict[int, float | None]]) -> None:
    runs = {}
    for name, by_seed in groups.items():
        for seed, acc in by_seed.items():
            run_id = f"{name}-s{seed}"
            runs[run_id] = {
                "run_id": run_id,
                "name": name,
                "group_key": f"{name}-key",
                "seed": seed,
                "status": "done" if acc is not None else "failed",
                "created": float(seed),
                "best_acc": acc,
                "last_acc": acc,
            }
    root.mkdir(parents=True)
    (root / "kdtui.json").write_text(json.dumps({"runs": runs, "todos": {}}))


def invoke(ws: Path, *args: str):
    return CliRunner().invoke(cli_app, ["compare", "-w", str(ws), *args], env={"COLUMNS": "120"})


def test_cli_compare_json_and_table(tmp_path: Path):
    write_index(tmp_path / "ws", {"base": A, "kd": B, "one": {0: 85.0}, "other": B4})
    doc = json.loads(invoke(tmp_path / "ws", "base", "kd", "--format", "json").output)
    assert set(doc) >= {"delta", "ci95", "p_value", "test", "n_a", "n_b", "mean_a", "mean_b"}
    assert (doc["test"], doc["n_a"], doc["n_b"]) == ("paired-t", 3, 3)
    assert doc["p_value"] == pytest.approx(0.0419979, abs=1e-6) and len(doc["ci95"]) == 2
    shown = invoke(tmp_path / "ws", "base", "kd").output
    assert "Δ = mean(B) − mean(A) = +0.83" in shown
    assert "p = 0.042  (paired t-test over 3 seeds)" in shown
    assert "95 % CI of Δ: [+0.50, +1.03]  (BCa bootstrap of the per-seed differences)" in shown
    welch = invoke(tmp_path / "ws", "kd", "base").output  # the other way round: Δ < 0
    assert "Δ = mean(B) − mean(A) = −0.83" in welch  # a minus sign, as in the pivot
    other = invoke(tmp_path / "ws", "base", "other").output
    assert "(BCa bootstrap of each group)" in other
    assert "p = 0.144  (Welch's t-test: the groups hold different seeds)" in other
    small = invoke(tmp_path / "ws", "base", "one").output
    assert "no p-value, no interval: one has 1 finished seed" in small
    assert json.loads(invoke(tmp_path / "ws", "base", "one", "-f", "json").output)["ci95"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["base", "kdd"], "error: B 'kdd': no group has this name or key prefix (close: kd)"),
        (["base", "base"], "error: A and B are the same group (base)"),
        (["base", "kd", "--metric", "top"], "error: unknown metric 'top' (best, last)"),
        (["base", "kd", "-f", "csv"], "error: unknown format 'csv' (table, json)"),
    ],
)
def test_cli_compare_mistakes_are_one_line(tmp_path: Path, args: list[str], message: str):
    write_index(tmp_path / "ws", {"base": A, "kd": B})
    result = invoke(tmp_path / "ws", *args)
    assert result.exit_code == 2 and result.output == message + "\n"


def test_scipy_waits_for_compare():
    """kdtui starts without scipy (and without pydantic for the table of groups)."""
    code = "import sys, kdtui.cli; assert 'scipy' not in sys.modules, 'scipy at start-up'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_group_rows_feed_compare(tmp_path: Path):
    runs = [
        {"run_id": f"r{s}", "name": "a", "group_key": "ka", "seed": s, "status": "done",
         "best_acc": v, "last_acc": v}
        for s, v in A.items()
    ]  # fmt: skip
    (a,) = group_rows(runs)
    c = compare_groups(a, group("b", B))
    assert c.a_by_seed == A and c.test == "paired-t"
