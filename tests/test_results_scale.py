"""`kdtui table` and `kdtui ls` at a study's size: the shortcuts that keep them well inside
0.5 s at 10,000 runs (the last epoch's mean alone, one sort of the runs per change of the
index, the collector paused while the index is parsed) print what the long way did."""

from __future__ import annotations

import gc
import io
import math
from pathlib import Path
from typing import Any

import pytest
from tuikit import write_index

from kdtui import clikit, results_cli
from kdtui.results import PARTIAL_MARK, group_rows, mean_and_mark, summarize
from kdtui.store import Store


def run(group: int, seed: int, status: str = "done", **over: Any) -> dict[str, Any]:
    doc = {
        "run_id": f"g{group}-s{seed}-{status}",
        "name": f"group-{group}",
        "group_key": f"key-{group:04d}",
        "seed": seed,
        "status": status,
        "created": group * 10.0 + seed,
        "label": "WRN16-3(gaf) → WRN16-1(signal)",
        "loss": "CE+KD(T=4,w=0.7)",
        "dataset": "d",
        "best_acc": 80.0 + group % 7 + seed,
        "last_acc": 79.0 + group % 5 + seed,
    }
    doc.update(over)
    return doc


def varied_runs() -> list[dict[str, Any]]:
    """Groups of every kind a table meets: final, partial, failed, nan or inf in one metric
    only, fractions, no accuracy at all."""
    return [
        *(run(0, s) for s in range(3)),
        run(1, 0), run(1, 1, "running"), run(1, 2, "queued"),
        run(2, 0), run(2, 1, "failed"), run(2, 2, "cancelled"),
        run(3, 0, best_acc=math.nan), run(3, 1), run(3, 2, "queued"),
        run(4, 0, last_acc=math.inf), run(4, 1),
        run(5, 0, best_acc=0.71, last_acc=0.7), run(5, 1, best_acc=0.7412, last_acc=0.73),
        run(6, 0, "queued"), run(6, 1, "crashed"),
        run(7, 0, best_acc=math.nan, last_acc=math.nan), run(7, 1, "running"),
        run(8, 0, best_acc=None),
    ]  # fmt: skip


@pytest.mark.parametrize("missing", ["–", "-"])
@pytest.mark.parametrize("metric", ["best", "last"])
def test_the_mean_alone_is_summarize_s_mean_and_mark(metric: str, missing: str) -> None:
    rows = group_rows(varied_runs())
    assert len(rows) == 9
    for row in rows:
        summary = summarize(row, metric, 2, missing)  # type: ignore[arg-type]
        assert mean_and_mark(row, metric, 2, missing) == (summary.mean, summary.mark)  # type: ignore[arg-type]
    marks = {row.name: mean_and_mark(row, metric)[1] for row in rows}  # type: ignore[arg-type]
    assert marks["group-1"] == marks["group-3"] == PARTIAL_MARK and marks["group-0"] == ""
    fractions = {"best": "0.7256 ± 0.0221", "last": "0.7150 ± 0.0212"}
    assert mean_and_mark(rows[5], metric)[0] == fractions[metric]  # 4 places, as summarize


def many_rows_table(
    monkeypatch: pytest.MonkeyPatch, runs: list[dict[str, Any]], terminal_width: int | None = None
) -> str:
    """``print_rows`` as the terminal (``terminal_width``) or a pipe shows it, no colour."""
    buffer = io.StringIO()
    for name, value in (
        ("_file", buffer),
        ("_force_terminal", terminal_width is not None),
        ("no_color", True),
        ("_width", terminal_width or 200),
    ):
        monkeypatch.setattr(clikit.out, name, value)
    results_cli.print_rows(group_rows(runs))
    return buffer.getvalue()


def test_the_table_of_many_groups_keeps_its_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond MANY_ROWS groups the table is written by hand: each group's numbers stand
    right-aligned under their headers, its models · loss line carries nothing after it,
    and the partial mean of a group with seeds to come is marked and explained."""
    groups = results_cli.MANY_ROWS + 50
    runs = [run(g, s) for g in range(groups) for s in range(3)]
    runs += [run(7, 3, "queued"), run(9, 3, "failed"), run(11, 0, best_acc=math.nan)]
    lines = many_rows_table(monkeypatch, runs).splitlines()
    head, body = lines[0], lines[1 : 1 + 2 * groups]
    assert head.split() == ["group", "n", "best", "acc", "%", "last", "acc", "%", "min", "max"]
    ends = [head.index(f" {h}") + 1 + len(h) for h in results_cli.NUMBER_HEADERS]
    assert ends[-1] == len(head)
    for first, second in zip(body[::2], body[1::2], strict=True):
        assert second == "WRN16-3(gaf) → WRN16-1(signal) · CE+KD(T=4,w=0.7)"
        assert len(first) == len(head), first  # right-aligned: every line ends with max
        assert all(first[end - 1] != " " and first[end : end + 2] in ("  ", "") for end in ends)
    by_name = {line.split()[0]: line for line in body[::2]}
    partial = by_name["group-7"]
    assert "3 of 4 seeds finished" in partial and f"{PARTIAL_MARK}  " in partial
    assert "1 failed" in by_name["group-9"] and "1 not finite" in by_name["group-11"]
    assert lines[1 + 2 * groups :] == [
        "mean ± sample std over seeds; best = best epoch, last = last epoch",
        "best epoch chosen on the test set (no validation split: data.val)",
        "* the mean of the seeds finished so far: the others still run",
    ]


def test_the_table_of_many_groups_cuts_what_the_terminal_cannot_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = [run(g, 0, name=f"group-{g}-" + "x" * 80) for g in range(results_cli.MANY_ROWS + 1)]
    lines = many_rows_table(monkeypatch, runs, terminal_width=90).splitlines()
    assert max(map(len, lines[:-1])) == 90 and lines[1].split()[0].endswith("…")
    assert all(len(line) <= 90 for line in lines[:-1]) and not lines[2].endswith(" ")


def test_the_sorted_runs_follow_every_change_of_the_index(tmp_path: Path) -> None:
    """``summaries()`` sorts once per change of the index: another process's write, a
    fold, a batch of this store's own are all seen, and a caller's list is its own."""
    ws = tmp_path / "ws"
    write_index(ws, [run(g, 0) for g in (3, 1, 2)])
    store = Store(ws)
    first = store.summaries()
    assert [r["run_id"] for r in first] == ["g1-s0-done", "g2-s0-done", "g3-s0-done"]
    first.clear()  # the caller's list: the next one is whole
    assert len(store.summaries()) == 3
    Store(ws).put_runs([run(0, 0)])  # another process: one journal line
    assert [r["run_id"] for r in store.summaries()][0] == "g0-s0-done"
    other = Store(ws)
    other.remove_runs(["g2-s0-done"])
    other._index.fold()  # kdtui.json written anew
    assert [r["run_id"] for r in store.summaries()] == ["g0-s0-done", "g1-s0-done", "g3-s0-done"]
    with store.batch() as batch:  # inside a batch: the batch's own changes too
        batch.put("runs", run(9, 0, created=-1.0))
        assert store.summaries()[0]["run_id"] == "g9-s0-done"
    assert [r["run_id"] for r in store.summaries()][:2] == ["g9-s0-done", "g0-s0-done"]


def test_the_index_is_parsed_with_the_collector_paused() -> None:
    """What is made while paused goes to the collector's oldest generation unwalked; the
    collector's state is given back as it was, and objects someone froze stay frozen."""
    assert gc.isenabled()
    with clikit.collector_paused():
        assert not gc.isenabled()
        made = [{"run": i, "needs": []} for i in range(100)]  # tracked: holds a list
    assert gc.isenabled()
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(doc) in oldest for doc in made) and id(made) in oldest
    gc.disable()
    try:
        with clikit.collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with clikit.collector_paused():
            young = [{"young": 1}]
        assert gc.get_freeze_count() == frozen and young
    finally:
        gc.unfreeze()
