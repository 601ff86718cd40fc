"""Results statistics on whatever the store holds (nan, inf, junk), failed and cancelled
seeds named apart, and the same numbers in ``kdtui table`` and the app's Results screen."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from tuikit import NOW, STALE_ENV, until, write_index
from typer.testing import CliRunner

from kdtui.cli import app as cli_app
from kdtui.results import (
    Stats,
    csv_table,
    export_cells,
    group_rows,
    latex_table,
    markdown_table,
    summarize,
)
from kdtui.screens.results import ResultsScreen, row_cells
from kdtui.tui.app import KdApp
from kdtui.widgets import Grid


def run(seed: int, acc: Any, status: str = "done", group: str = "g", **over: Any) -> dict:
    doc = {
        "run_id": f"{group}-s{seed}-{status}",
        "name": group,
        "group_key": f"key-{group}",
        "seed": seed,
        "status": status,
        "created": float(seed),
        "label": "A → B",
        "loss": "ce",
        "dataset": "d",
        "best_acc": acc,
        "last_acc": acc,
    }
    doc.update(over)
    return doc


# ---------------------------------------------------------------------- non-finite values


def test_stats_leave_out_nan_and_inf_instead_of_crashing():
    s = Stats.of([50.0, math.nan, math.inf, 70.0, -math.inf])
    assert (s.n, s.mean, s.min, s.max) == (2, 60.0, 50.0, 70.0)
    assert s.std == pytest.approx(14.1421356)
    assert Stats.of([math.nan]) == Stats(0, None, None, None, None)
    assert Stats.of([1e308, 1e308]).mean == 1e308  # fsum overflows; the mean does not


POISONED = [
    run(0, 150.0),
    run(1, math.nan),
    run(2, math.inf),
    run(3, "junk"),  # a hand-edited index
    run(4, 50.0, last_acc=None),  # no last accuracy: the best one stands in
]


def test_every_export_survives_non_finite_values_and_shows_them():
    (row,) = group_rows(POISONED)
    assert row.n == 5 and row.nonfinite_seeds() == [1, 2, 3]
    assert (row.best.n, row.best.mean, row.last.mean) == (2, 100.0, 100.0)
    assert row.status_note() == "3 not finite"
    md = markdown_table([row]).splitlines()[2]
    assert "| 100.00 ± 70.71 | 50.00 | 150.00 |" in md
    assert "150.00, –, –, –, 50.00 | 3 not finite |" in md  # as the terminal shows them
    (line,) = csv.DictReader(io.StringIO(csv_table([row])))
    assert (line["best_mean"], line["best_max"], line["note"]) == (
        "100.0000",
        "150.0000",
        "3 not finite",
    )
    assert "150.00, --, --, --, 50.00" in latex_table([row])  # LaTeX dashes
    doc = json.loads(json.dumps(row.to_json(), allow_nan=False))  # strict JSON
    assert doc["best_by_seed"] == {"0": 150.0, "1": None, "2": None, "3": None, "4": 50.0}
    assert doc["best_acc"]["n"] == 2 and doc["best_acc"]["mean"] == 100.0


def test_a_nan_last_accuracy_alone_is_flagged_too():
    (row,) = group_rows([run(0, 50.0, last_acc=math.nan), run(1, 52.0)])
    assert (row.best.n, row.last.n, row.last.mean) == (2, 1, 52.0)
    assert row.status_note() == "1 not finite"
    # each table counts only the seeds its own mean leaves out
    assert row.status_note("best") == "" and row.status_note("last") == "1 not finite"
    assert summarize(row, "best").note == "" and summarize(row, "last").note == "1 not finite"


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "csv", "latex"])
def test_cli_table_on_a_store_with_nan_and_inf(fmt: str, tmp_path: Path):
    write_index(tmp_path / "ws", POISONED)
    result = CliRunner().invoke(
        cli_app, ["table", "--format", fmt, "-w", str(tmp_path / "ws")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "100.0" in result.output


def test_json_rounds_float32_noise_to_6_decimals():
    rows = group_rows(
        [run(0, 60.000003814697266, last_acc=30.000001907348633), run(1, 60.000003814697266)]
    )
    doc = rows[0].to_json()
    assert doc["best_by_seed"] == {"0": 60.000004, "1": 60.000004}
    assert doc["last_by_seed"]["0"] == 30.000002
    assert doc["best_acc"] == {
        "n": 2,
        "mean": 60.000004,
        "std": 0.0,
        "min": 60.000004,
        "max": 60.000004,
    }
    assert doc["last_acc"]["mean"] == 45.000003


# ---------------------------------------------------------------------- ended seeds


def test_failed_crashed_and_cancelled_seeds_are_named_apart():
    (row,) = group_rows(
        [
            run(0, 55.0),
            run(1, None, "cancelled"),
            run(2, None, "failed"),
            run(3, None, "crashed"),
            run(4, None, "cancelled"),
            run(5, None, "running"),
        ]
    )
    assert row.failed_seeds == [1, 2, 3, 4]  # the JSON field keeps its meaning
    assert row.ended == {1: "cancelled", 2: "failed", 3: "crashed", 4: "cancelled"}
    assert row.status_note() == "1 running/queued, 1 failed, 1 crashed, 2 cancelled"


def test_tui_shows_the_mean_of_the_finished_seeds_next_to_a_cancelled_one():
    (row,) = group_rows([run(0, 55.0), run(1, None, "cancelled")])
    cells = row_cells(row, [0, 1], best=True, marked=False)
    assert cells[3:6] == ("55.00", "⊘", "55.00 ± – · 1 cancelled")
    assert cells[-2:] == ("55.00", "55.00")  # min, max
    # the CLI exports print the same numbers and the same note
    assert export_cells(row)[4:7] == ["55.00 ± –", "55.00", "55.00"]
    assert export_cells(row)[9] == "1 cancelled" == summarize(row).note

    (failed,) = group_rows([run(0, 55.0), run(1, 57.0), run(2, None, "failed")])
    cells = row_cells(failed, [0, 1, 2], best=True, marked=False)
    assert cells[3:7] == ("55.00", "57.00", "✗", "56.00 ± 1.41 · 1 failed")
    assert cells[-2:] == ("55.00", "57.00")  # min, max


def test_tui_marks_a_partial_mean_while_seeds_run():
    (row,) = group_rows([run(0, 55.0), run(1, None, "running"), run(2, None, "cancelled")])
    cells = row_cells(row, [0, 1, 2], best=True, marked=False)
    assert cells[3:7] == ("55.00", "…", "⊘", "55.00 ± –* · 1 cancelled")
    (nothing,) = group_rows([run(0, None, "failed")])
    cells = row_cells(nothing, [0], best=True, marked=False)
    assert cells[3:5] == ("✗", "1 failed") and cells[-2:] == ("–", "–")


async def test_results_screen_opens_on_a_store_with_nan_and_a_cancelled_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in STALE_ENV.items():
        monkeypatch.setenv(key, value)
    # no "junk" string here: the Runs screen (shown first) formats accuracies as numbers
    finite_or_not = [r for r in POISONED if not isinstance(r["best_acc"], str)]
    runs = [*finite_or_not, run(0, 55.0, group="h"), run(1, None, "cancelled", group="h")]
    write_index(tmp_path / "ws", runs)
    app = KdApp(tmp_path / "ws", clock=lambda: NOW, devices="cpu ×2", poll_s=0.05)
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.press("3")
        assert isinstance(app.screen, ResultsScreen)
        grid = app.screen.query_one(Grid)
        await until(pilot, lambda: len(grid.order) == 2, "2 groups")
        cells = {key: " ".join(grid.cells[key]) for key in grid.order}
        assert "100.00 ± 70.71 · 2 not finite" in cells["key-g"]
        assert "55.00 ± – · 1 cancelled" in cells["key-h"]


def test_exported_seeds_name_themselves_when_one_is_missing():
    (row,) = group_rows([run(0, 80.0), run(1, 82.5), run(2, 81.0)])
    assert export_cells(row)[8] == "80.00, 82.50, 81.00"  # 0..n-1: read by position
    (row,) = group_rows([run(1, 82.5), run(2, 81.0)])  # seed 0 failed or was cancelled
    assert export_cells(row)[8] == "s1=82.50, s2=81.00"
