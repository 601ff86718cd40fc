"""Results exports (markdown, csv, latex): the same cells, per-seed values included."""

from __future__ import annotations

import csv
import io

from kdtui.results import EXPORT_HEAD, csv_table, group_rows, latex_table, markdown_table


def run(seed: int, acc: float | None, status: str = "done", **over) -> dict:
    doc = {
        "run_id": f"r{seed}-{status}",
        "name": "kd_T4 | λ=0.7",
        "group_key": "g1",
        "seed": seed,
        "status": status,
        "created": float(seed),
        "label": "WRN16-3(gaf) → WRN16-1(signal)",
        "loss": "ce+kd",
        "dataset": "basicmotions",
        "best_acc": acc,
        "last_acc": None if acc is None else acc - 1,
    }
    doc.update(over)
    return doc


ROWS = group_rows(
    [run(0, 68.2063), run(1, 68.4410), run(2, None, "running")]
    + [run(0, 50.0, group_key="g2", name="alone", label="x", loss="ce")]
)


def test_markdown_has_mean_std_n_and_each_seed():
    # a seed still running: the mean of the two finished is marked * and the note says so
    lines = markdown_table(ROWS).splitlines()
    assert lines[0] == "| " + " | ".join(EXPORT_HEAD) + " |"
    assert lines[2] == (
        "| kd_T4 \\| λ=0.7 | WRN16-3(gaf) → WRN16-1(signal) | ce+kd | 2 | 68.32 ± 0.17* | 68.21 "
        "| 68.44 | 67.32 ± 0.17* | 68.21, 68.44 | 2 of 3 seeds finished |"
    )
    assert lines[3] == "| alone | x | ce | 1 | 50.00 ± – | 50.00 | 50.00 | 49.00 ± – | 50.00 |  |"


def test_csv_splits_mean_and_std_and_leaves_missing_cells_empty():
    rows = list(csv.DictReader(io.StringIO(csv_table(ROWS))))
    assert rows[0]["group"] == "kd_T4 | λ=0.7" and rows[0]["group_key"] == "g1"
    assert (rows[0]["n"], rows[0]["best_mean"], rows[0]["best_std"]) == ("2", "68.3237", "0.1660")
    assert rows[0]["best_per_seed"] == "68.2063, 68.4410"
    assert rows[0]["note"] == "2 of 3 seeds finished"  # the means stay plain numbers
    assert (rows[1]["best_std"], rows[1]["last_std"], rows[1]["best_min"]) == ("", "", "50.0000")


def test_latex_is_a_booktabs_tabular_with_escaped_cells():
    tex = latex_table(ROWS)
    lines = tex.splitlines()
    assert lines[0] == r"\begin{tabular}{lllrllllll}" and lines[-1] == r"\end{tabular}"
    assert r"\toprule" in lines and r"\midrule" in lines and r"\bottomrule" in lines
    assert lines[4].startswith(
        r"kd\_T4 \textbar{} $\lambda$=0.7 & WRN16-3(gaf) $\rightarrow$ WRN16-1(signal)"
    )
    assert r"68.32 $\pm$ 0.17" in lines[4] and lines[4].endswith(r"\\")
    assert r"50.00 $\pm$ --" in lines[5]


def test_no_rows_gives_just_the_header():
    assert markdown_table([]).count("\n") == 2
    assert csv_table([]).count("\n") == 1


def test_a_group_of_fractions_keeps_its_precision():
    rows = group_rows([run(0, 0.7412, last_acc=0.7412), run(1, 0.7389, last_acc=0.7389)])
    md = markdown_table(rows)
    assert "0.7400 ± 0.0016" in md and "0.7412, 0.7389" in md  # not 0.74 ± 0.00
    assert "0.740050" in csv_table(rows)
    percent = markdown_table(group_rows([run(0, 74.12), run(1, 1.0)]))
    assert "37.56 ± 51.70" in percent  # one value ≤ 1 does not make a group of fractions
