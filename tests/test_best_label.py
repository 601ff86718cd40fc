"""Issue 16: every "best" figure says where its epoch was chosen. A spec without
``data.val`` picks its best epoch on the test set, which flatters it: the Results screen,
the pivot (terminal, markdown, LaTeX, json), the flat exports, ``kdtui compare``, ``kdtui
show`` and ``kdtui ls`` say so, all through ``selected_on_note`` / ``run_selected_on``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_experiment
from textual.widgets import Static
from tuikit import NOW, STALE_ENV, grid_lines, until
from typer.testing import CliRunner

from kdtui import launcher
from kdtui.cli import app as cli_app
from kdtui.fmt import fmt_acc
from kdtui.results import (
    compare_groups,
    csv_table,
    group_rows,
    group_specs,
    latex_table,
    markdown_table,
    run_selected_on,
    selected_on_note,
)
from kdtui.results.pivot import build_pivot, notes, pivot_latex, pivot_markdown, to_json
from kdtui.screens.results import ResultsScreen
from kdtui.screens.run_detail import RunDetailScreen
from kdtui.screens.runs import RunsScreen
from kdtui.spec import validate_spec
from kdtui.store import Store
from kdtui.tui.app import KdApp
from kdtui.widgets import Grid

ON_TEST = "best epoch chosen on the test set (no validation split: data.val)"
ON_VAL = "best epoch chosen on the validation split; its test accuracy shown"
VAL = {"fraction": 0.25}


def _exp(name: str, width: int, val: bool) -> dict[str, Any]:
    exp = tiny_experiment(
        name, seeds=[0, 1], student={"depth": 10, "width": width, "view": "signal"}
    )
    if val:
        exp["data"] = {**exp["data"], "val": VAL}
    return exp


def build(root: Path, *, val: set[str]) -> Store:
    """Two students (width 1 and 2) × two learning rates, two seeds each, all done; the
    experiments named in ``val`` hold a validation split and chose their best on it, as
    the engine records it."""
    specs = [
        _exp(f"w{w}-lr{lr}", w, f"w{w}-lr{lr}" in val) | {"optim": {"lr": lr}}
        for w in (1, 2)
        for lr in (0.05, 0.1)
    ]
    store = Store(root)
    launcher.enqueue(store, validate_spec({"experiments": specs}))
    for i, run in enumerate(store.runs()):
        on = "val" if run["name"] in val else "test"
        acc = 70.0 + i
        fields = {"status": "done", "best_acc": acc, "last_acc": acc - 1}
        store.update(run["run_id"], fields | {"best_selected_on": on})
    return store


ALL = {"w1-lr0.05", "w1-lr0.1", "w2-lr0.05", "w2-lr0.1"}


def pivot_of(store: Store, metric: str = "best"):
    runs = store.runs()
    rows = group_rows(runs)
    return build_pivot(rows, group_specs(store, runs), "student.width", "optim.lr", metric=metric)


def invoke(*args: str):
    return CliRunner().invoke(cli_app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})


# ---------------------------------------------------------------------- the helper


def test_the_note_says_test_val_or_names_the_groups_of_a_mix():
    def run(name: str, on: str | None, source: str = "kdtui") -> dict[str, Any]:
        doc = {"run_id": name, "group_key": name, "name": name, "seed": 0, "status": "done"}
        doc |= {"best_acc": 80.0, "last_acc": 79.0, "source": source}
        return doc | ({"best_selected_on": on} if on else {})

    rows = {r.name: r for r in group_rows([
        run("v", "val"), run("t", "test"), run("old", None), run("lab", None, "notes:x.md:1"),
    ])}  # fmt: skip
    assert selected_on_note([rows["v"]]) == ON_VAL
    assert selected_on_note([rows["t"], rows["old"]]) == ON_TEST
    assert selected_on_note([rows["lab"]]) is None  # an outside result: not known
    mixed = selected_on_note(rows.values())
    assert mixed == "best epoch chosen on validation, on the test set for t, old (no data.val)"
    assert "where marked °" in (selected_on_note(rows.values(), marked=True) or "")
    assert run_selected_on(run("old", None)) == "test"
    assert run_selected_on(run("lab", None, "notes:x.md:1")) is None


# ---------------------------------------------------------------------- flat exports


@pytest.mark.parametrize(("val", "said"), [(set(), ON_TEST), (ALL, ON_VAL)])
def test_flat_exports_carry_the_note(tmp_path: Path, val: set[str], said: str):
    rows = group_rows(build(tmp_path / "ws", val=val).runs())
    md = markdown_table(rows).splitlines()
    assert md[-1] == said and md[-2] == ""  # under the table, not inside it
    parsed = list(csv.DictReader(io.StringIO(csv_table(rows))))
    on = "val" if val else "test"
    assert len(parsed) == 4 and {p["best_selected_on"] for p in parsed} == {on}
    tex = latex_table(rows).splitlines()
    assert tex[-3] == r"\bottomrule" and tex[-1] == r"\end{tabular}"
    assert tex[-2] == rf"\multicolumn{{10}}{{l}}{{\footnotesize {said}}} \\"


def test_a_mix_names_the_groups_chosen_on_test(tmp_path: Path):
    rows = group_rows(build(tmp_path / "ws", val={"w1-lr0.05", "w1-lr0.1"}).runs())
    assert markdown_table(rows).splitlines()[-1] == (
        "best epoch chosen on validation, on the test set for w2-lr0.05, w2-lr0.1 (no data.val)"
    )


# ---------------------------------------------------------------------- the pivot


def test_the_pivot_notes_say_where_best_was_chosen(tmp_path: Path):
    store = build(tmp_path / "ws", val=set())
    p = pivot_of(store)
    assert notes(p)[1] == ON_TEST
    assert f"- {ON_TEST}" in pivot_markdown(p)
    tex = pivot_latex(p)
    assert tex.index(ON_TEST) > tex.index(r"\bottomrule")
    assert {c["best_selected_on"] for c in to_json(p)["cells"]} == {"test"}
    assert ON_TEST not in notes(pivot_of(store, "last"))  # the last epoch is chosen by no one
    assert notes(pivot_of(build(tmp_path / "v", val=ALL)))[1] == ON_VAL


def test_cli_pivot_and_flat_table_in_every_format(tmp_path: Path):
    build(tmp_path / "ws", val=set())
    ws, pivot = str(tmp_path / "ws"), ["--rows", "student.width", "--cols", "optim.lr"]
    shown = invoke("table", "-w", ws, *pivot)
    assert shown.exit_code == 0, shown.output
    assert ON_TEST in shown.output
    for fmt in ("markdown", "latex"):
        assert ON_TEST in invoke("table", "-w", ws, *pivot, "-f", fmt).output
    doc = json.loads(invoke("table", "-w", ws, *pivot, "-f", "json").output)
    assert {c["best_selected_on"] for c in doc["cells"]} == {"test"}
    for fmt in ("markdown", "latex"):
        assert ON_TEST in invoke("table", "-w", ws, "-f", fmt).output
    assert invoke("table", "-w", ws, "-f", "csv").output.splitlines()[1].endswith(",test")


# ---------------------------------------------------------------------- compare


def test_compare_of_best_says_where_it_was_chosen(tmp_path: Path):
    rows = {r.name: r for r in group_rows(build(tmp_path / "ws", val={"w1-lr0.05"}).runs())}
    mixed = compare_groups(rows["w1-lr0.05"], rows["w2-lr0.05"])
    assert mixed.notes[-1] == (
        "best epoch chosen on validation, on the test set for w2-lr0.05 (no data.val)"
    )
    doc = mixed.to_json()
    assert (doc["a"]["best_selected_on"], doc["b"]["best_selected_on"]) == ("val", "test")
    assert not compare_groups(rows["w1-lr0.05"], rows["w2-lr0.05"], "last").notes
    shown = invoke("compare", "w1-lr0.1", "w2-lr0.1", "-w", str(tmp_path / "ws"))
    assert shown.exit_code == 0, shown.output
    assert ON_TEST in shown.output
    last = invoke("compare", "w1-lr0.1", "w2-lr0.1", "--metric", "last", "-w", str(tmp_path / "ws"))
    assert last.exit_code == 0 and "chosen on" not in last.output


# ---------------------------------------------------------------------- show and ls


def test_show_labels_the_best_accuracy(tmp_path: Path):
    store = build(tmp_path / "ws", val={"w1-lr0.05"})
    by_name = {r["name"]: r["run_id"] for r in store.runs()}
    plain = invoke("show", by_name["w2-lr0.1"], "-w", str(store.root))
    assert plain.exit_code == 0, plain.output
    lines = plain.output.splitlines()
    (at,) = [i for i, x in enumerate(lines) if x.startswith("  best_acc ")]
    assert lines[at + 1] == " " * 14 + ON_TEST  # under the figure it qualifies
    held = invoke("show", by_name["w1-lr0.05"], "-w", str(store.root)).output
    assert ON_VAL in held and ON_TEST not in held


def test_ls_says_where_its_best_column_was_chosen(tmp_path: Path):
    store = build(tmp_path / "ws", val=set())
    lines = invoke("ls", "-w", str(store.root)).output.splitlines()
    assert lines[-1] == ON_TEST and "°" not in "".join(lines)
    store = build(tmp_path / "mix", val={"w1-lr0.05"})
    lines = invoke("ls", "-w", str(store.root)).output.splitlines()
    assert lines[-1].startswith("best epoch chosen on validation, on the test set where marked °")
    marked = [x.split()[0] for x in lines[1:-1] if "°" in x]
    test_runs = {r["run_id"] for r in store.runs() if r["name"] != "w1-lr0.05"}
    assert set(marked) == test_runs and len(marked) == 6


# ---------------------------------------------------------------------- the app


async def test_results_screen_legend_says_it_for_best_not_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in STALE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(launcher, "revive_runner", lambda store: 0)
    store = build(tmp_path / "ws", val=set())
    app = KdApp(store.root, clock=lambda: NOW, devices="cpu ×2", poll_s=0.05)

    def legend() -> str:
        widget = app.screen.query_one("#legend", Static)
        return str(widget.render()) if widget.display else ""

    async with app.run_test(size=(100, 24)) as pilot:
        await until(pilot, lambda: len(app.screen.query_one(Grid).order) > 0, "the runs")
        await pilot.press("3")
        assert isinstance(app.screen, ResultsScreen)
        await until(pilot, lambda: len(app.screen.query_one(Grid).order) == 4, "4 groups")
        await until(pilot, lambda: ON_TEST in legend(), "the note under the table")
        await pilot.press("b")  # the last epoch: chosen by no one
        await until(pilot, lambda: ON_TEST not in legend(), "no note for the last epoch")


def _app(store: Store, monkeypatch: pytest.MonkeyPatch) -> KdApp:
    for key, value in STALE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(launcher, "revive_runner", lambda store: 0)
    return KdApp(store.root, clock=lambda: NOW, devices="cpu ×2", poll_s=0.05)


def _summary(app: KdApp) -> str:
    return str(app.screen.query_one("#summary", Static).render())


async def test_runs_screen_says_where_its_best_column_was_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(build(tmp_path / "ws", val=set()), monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(app.screen.query_one(Grid).order) == 8, "the runs")
        await until(pilot, lambda: "best picked on test" in _summary(app), "the summary")
        assert _summary(app).startswith("8 runs · best picked on test · sorted by age")
        assert "°" not in "".join(grid_lines(app.screen.query_one(Grid)))
    store = build(tmp_path / "mix", val={"w1-lr0.05"})  # a mix marks the test-chosen °
    app = _app(store, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        grid = app.screen.query_one(Grid)
        await until(pilot, lambda: len(grid.order) == 8, "the runs")
        await until(pilot, lambda: "°" in "".join(grid_lines(grid)), "the marks")
        assert "best on validation, ° on test" in _summary(app)
        names = {r["run_id"]: r["name"] for r in store.runs()}
        marked = {
            names[key]
            for key, line in zip(grid.order, grid_lines(grid), strict=True)
            if "°" in line
        }
        assert marked == {"w1-lr0.1", "w2-lr0.05", "w2-lr0.1"}


async def test_run_detail_head_says_where_best_was_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = build(tmp_path / "ws", val={"w1-lr0.05"})
    by_name = {r["name"]: r for r in store.runs()}
    app = _app(store, monkeypatch)

    def head() -> str:
        if not isinstance(app.screen, RunDetailScreen):
            return ""
        return str(app.screen.query_one("#summary", Static).render())

    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(app.screen.query_one(Grid).order) == 8, "the runs")
        for name, on in (("w2-lr0.1", "test"), ("w1-lr0.05", "val")):
            app.open_run(by_name[name]["run_id"])
            said = f"best {fmt_acc(by_name[name]['best_acc'])} on {on}"
            await until(pilot, lambda said=said: said in head(), f"{name}'s head")
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, RunsScreen), "the runs again")
