"""``kdtui table --rows/--cols/--baseline``: groups laid out by two spec paths read from
their frozen spec.json, the best of each column marked, Δ to a baseline, partial groups
marked; the markdown, json and LaTeX of one pivot carry the same numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_experiment
from typer.testing import CliRunner

from kdtui import launcher
from kdtui.cli import app as cli_app
from kdtui.results import group_rows, markdown_table, summarize
from kdtui.results.pivot import (
    PivotError,
    build_pivot,
    group_specs,
    pivot_latex,
    pivot_markdown,
    to_json,
)
from kdtui.spec import validate_spec
from kdtui.store import Store

# A running seed of another host is judged by its heartbeat alone: never stale here.
STALE_ENV = {"KDTUI_HEARTBEAT_STALE_S": "1e12"}
KD4 = {"ce": 1.0, "kd": {"T": 4, "weight": 0.7}}
KD2 = {"ce": 1.0, "kd": {"T": 2, "weight": 0.7}}
SEEDS = [0, 1, 2]


def _exp(name: str, **over: Any) -> dict[str, Any]:
    return tiny_experiment(name, seeds=SEEDS, **over)


# The lab's study in small: two teachers (trained with CE, no teacher), the baseline
# student, KD from each teacher at T=4, and at T=2 from the small one.
STUDY = [
    _exp("base"),
    _exp("t10", student={"depth": 10, "width": 2, "view": "signal"}),
    _exp("t16", student={"depth": 16, "width": 1, "view": "signal"}),
    _exp("kd-t10", teachers=[{"experiment": "t10"}], loss=KD4),
    _exp("kd-t16", teachers=[{"experiment": "t16"}], loss=KD4),
    _exp("kd2-t10", teachers=[{"experiment": "t10"}], loss=KD2),
]
# best accuracy per seed; the last epoch's is one point lower
ACC = {
    "base": [80.0, 81.0, 82.0],
    "t10": [85.0, 86.0, 87.0],
    "t16": [90.0, 91.0, 92.0],
    "kd-t10": [83.0, 84.0, 85.0],
    "kd-t16": [84.0, 85.5, 86.0],
    "kd2-t10": [82.0, 82.5, 83.0],
}


def build(root: Path, pending: dict[str, list[int]] | None = None) -> Store:
    """The study in a store, every seed done except ``pending`` (name → seeds running)."""
    store = Store(root)
    launcher.enqueue(store, validate_spec({"experiments": STUDY}))
    pending = pending or {}
    for run in store.runs():
        name, seed = run["name"], run["seed"]
        if seed in pending.get(name, []):
            store.update(run["run_id"], {"status": "running"})
        else:
            acc = ACC[name][seed]
            store.update(run["run_id"], {"status": "done", "best_acc": acc, "last_acc": acc - 1})
    return store


@pytest.fixture
def study(tmp_path: Path) -> Store:
    return build(tmp_path / "ws")


def pivot_of(store: Store, rows: str, cols: str, **kw: Any):
    runs = store.runs()
    return build_pivot(group_rows(runs), group_specs(store, runs), rows, cols, **kw)


def grid(p) -> dict[tuple[str, str], Any]:
    return {(p.row_labels[r], p.col_labels[c]): cell for (r, c), cell in p.cells.items()}


# ---------------------------------------------------------------------- layout


def test_teachers_by_rows_losses_by_columns(study: Store):
    p = pivot_of(study, "teachers[0].experiment", "loss", baseline="base")
    assert p.col_labels == ["CE", "CE+KD(T=4,w=0.7)", "CE+KD(T=2,w=0.7)"]
    # base and both teachers train with CE and no teacher: their row splits by the
    # student model (the label the tables use) instead of pooling three configurations
    assert p.row_labels == [
        "– · WRN10-1(signal)",
        "– · WRN10-2(signal)",
        "– · WRN16-1(signal)",
        "t10",
        "t16",
    ]
    assert p.split == {"–": ["student"]}
    cells = grid(p)
    assert len(cells) == 6
    kd = cells[("t10", "CE+KD(T=4,w=0.7)")]
    assert kd.group.name == "kd-t10" and kd.stats.n == 3 and kd.stats.mean == 84.0
    assert kd.delta == pytest.approx(84.0 - 81.0)
    assert cells[("– · WRN10-1(signal)", "CE")].delta == 0.0  # the baseline itself


def test_best_of_each_column_is_marked(study: Store):
    p = pivot_of(study, "teachers[0].experiment", "loss")
    best = {key for key, cell in grid(p).items() if cell.best}
    assert best == {
        ("– · WRN16-1(signal)", "CE"),  # the big teacher
        ("t16", "CE+KD(T=4,w=0.7)"),  # 85.17 beats kd-t10's 84.00
        ("t10", "CE+KD(T=2,w=0.7)"),  # alone in its column
    }
    last = pivot_of(study, "teachers[0].experiment", "loss", metric="last")
    assert grid(last)[("t16", "CE+KD(T=4,w=0.7)")].stats.mean == pytest.approx(84.1666667)


def test_numeric_paths_sort_by_value_and_nothing_comes_first(study: Store):
    p = pivot_of(study, "loss.kd.T", "teachers[0].experiment")
    assert p.row_labels[0].startswith("–") and p.row_labels[-2:] == ["2", "4"]
    assert p.col_labels == ["–", "t10", "t16"]
    assert grid(p)[("2", "t10")].group.name == "kd2-t10"


def test_markdown_json_and_latex_carry_the_same_numbers(study: Store):
    p = pivot_of(study, "teachers[0].experiment", "loss", baseline="base")
    doc = json.loads(json.dumps(to_json(p), allow_nan=False))
    md, tex = pivot_markdown(p), pivot_latex(p)
    md_rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines()[2:7]}
    for cell in doc["cells"]:
        mean, std, n = cell["mean"], cell["std"], cell["n"]
        shown = f"{mean:.2f} ± {std:.2f}"
        row = md_rows[cell["row"]]
        assert (f"**{shown}** ({n})" if cell["best"] else f"{shown} ({n})") in row
        tex_shown = shown.replace("±", r"$\pm$")
        assert (rf"\textbf{{{tex_shown}}} ({n})" if cell["best"] else f"{tex_shown} ({n})") in tex
        if cell["delta"] and cell["name"] != "base":
            delta = f"{cell['delta']:+.2f}".replace("-", "−")
            assert f"Δ {delta}" in row and rf"$\Delta$ {delta}" in tex
    assert doc["baseline"] == {"name": "base", "group_key": p.baseline.group_key, "mean": 81.0}
    assert "(baseline)" in md_rows["– · WRN10-1(signal)"]
    assert "Δ: mean − the mean of baseline base (81.00)" in md


def test_latex_is_booktabs_with_as_many_columns_as_the_pivot(study: Store):
    tex = pivot_latex(pivot_of(study, "teachers[0].experiment", "loss"))
    lines = tex.splitlines()
    assert lines[0].startswith("% mean ± std (n)".replace("±", r"$\pm$"))
    assert lines[1] == r"\begin{tabular}{lrrr}" and lines[-1] == r"\end{tabular}"
    assert lines[2:7] == [
        r"\toprule",
        r" & \multicolumn{3}{c}{loss} \\",
        r"\cmidrule(lr){2-4}",
        r"teachers[0].experiment & CE & CE+KD(T=4,w=0.7) & CE+KD(T=2,w=0.7) \\",
        r"\midrule",
    ]
    body = lines[7 : lines.index(r"\bottomrule")]
    assert len(body) == 5 and all(line.count(" & ") == 3 for line in body)
    assert body[0].startswith(r"-- $\cdot$ WRN10-1(signal) & 81.00 $\pm$ 1.00 (3) &  & ")
    # escaped labels: an underscore in a path or a name would break the build
    p = pivot_of(study, "teachers[0].experiment", "loss")
    p.rows_path = "a_b"
    assert r"a\_b & CE" in pivot_latex(p)


def test_no_delta_across_scales(tmp_path: Path):
    store = build(tmp_path / "ws")
    for run in store.runs():  # kd-t16 recorded as fractions
        if run["name"] == "kd-t16":
            store.update(run["run_id"], {"best_acc": run["best_acc"] / 100})
    p = pivot_of(store, "teachers[0].experiment", "loss", baseline="base")
    assert grid(p)[("t16", "CE+KD(T=4,w=0.7)")].delta is None
    assert p.no_delta == ["kd-t16"]


def test_the_spec_is_read_once_per_group_not_per_run(study: Store, monkeypatch: pytest.MonkeyPatch):
    read: list[str] = []
    original = Store.read_spec
    monkeypatch.setattr(
        Store, "read_spec", lambda self, rid: read.append(rid) or original(self, rid)
    )
    pivot_of(study, "teachers[0].experiment", "loss")
    assert len(study.runs()) == 18 and len(read) == 6


# ---------------------------------------------------------------------- partial groups


def test_a_partial_group_shows_its_finished_seeds_marked(tmp_path: Path):
    store = build(tmp_path / "ws", pending={"kd-t16": [2]})
    rows = group_rows(store.runs())
    (kd,) = [r for r in rows if r.name == "kd-t16"]
    s = summarize(kd)
    assert (s.mean, s.mark, s.progress) == ("84.75 ± 1.06", "*", "2 of 3 seeds finished")
    assert s.note == "1 running/queued"  # the Results screen shows this in place of a mean
    p = pivot_of(store, "teachers[0].experiment", "loss")
    cell = grid(p)[("t16", "CE+KD(T=4,w=0.7)")]
    assert cell.stats.n == 2 and cell.summary.mark == "*"
    md = pivot_markdown(p)
    assert (
        "**84.75 ± 1.06** (2)\\*" in md
    )  # the best of its column, partial or not and "- \\* kd-t16: 2 of 3 seeds finished" in md
    doc = to_json(p)
    (c,) = [c for c in doc["cells"] if c["name"] == "kd-t16"]
    assert (c["n"], c["partial"], c["finished"], c["pending"]) == (2, True, 2, 1)
    # the flat table and its exports mark it the same way
    line = next(x for x in markdown_table(rows).splitlines() if x.startswith("| kd-t16"))
    assert "| 84.75 ± 1.06* |" in line and line.endswith("| 2 of 3 seeds finished |")


def test_a_group_with_nothing_finished_has_no_mark_and_says_so(tmp_path: Path):
    store = build(tmp_path / "ws", pending={"kd-t16": [0, 1, 2]})
    p = pivot_of(store, "teachers[0].experiment", "loss")
    cell = grid(p)[("t16", "CE+KD(T=4,w=0.7)")]
    assert (cell.stats.n, cell.summary.mark, cell.best) == (0, "", False)
    assert "kd-t16: 0 of 3 seeds finished" in pivot_markdown(p)


# ---------------------------------------------------------------------- mistakes


@pytest.mark.parametrize(
    ("rows", "cols", "message"),
    [
        ("student.width", "data.n_train", "--cols data.n_train: the same in every group"),
        ("loss.kd.tau", "loss", "--rows loss.kd.tau: no group's spec has this path"),
        ("loss", "loss", "--rows and --cols both name loss"),
        ("teachers[0].", "loss", "'teachers[0].' is not a spec path"),
    ],
)
def test_bad_paths_name_the_paths_that_vary(study: Store, rows: str, cols: str, message: str):
    with pytest.raises(PivotError) as exc:
        pivot_of(study, rows, cols)
    assert str(exc.value).startswith(message)
    if "spec path" not in message and "both" not in message:
        assert "paths that vary: student.depth, student.width, teachers[0].experiment" in str(
            exc.value
        )
        assert "seeds" not in str(exc.value) and "name" not in str(exc.value).split(":")[-1]


def test_a_baseline_that_names_no_group_or_several(study: Store):
    with pytest.raises(PivotError, match="--baseline 'bsae': no group .* \\(close: base\\)"):
        pivot_of(study, "teachers[0].experiment", "loss", baseline="bsae")
    key = next(r["group_key"] for r in study.runs() if r["name"] == "t16")
    p = pivot_of(study, "teachers[0].experiment", "loss", baseline=key[:6])
    assert p.baseline is not None and p.baseline.name == "t16"


def invoke(ws: Path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(
        cli_app, ["table", "-w", str(ws), *args], env={"COLUMNS": "200", **(env or {})}
    )


def test_cli_pivot_in_every_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for key, value in STALE_ENV.items():  # the running seed stays running
        monkeypatch.setenv(key, value)
    build(tmp_path / "ws", pending={"kd-t16": [2]})
    args = ["--rows", "teachers[0].experiment", "--cols", "loss", "--baseline", "base"]
    shown = invoke(tmp_path / "ws", *args)
    assert shown.exit_code == 0, shown.output
    assert "84.75 ± 1.06 (2)*" in shown.output and "Δ +3.75" in shown.output
    assert "91.00 ± 1.00 (3) ▲" in shown.output  # best of its column, in a pipe too
    assert "* kd-t16: 2 of 3 seeds finished" in shown.output
    doc = json.loads(invoke(tmp_path / "ws", *args, "--format", "json").output)
    assert doc["cols"] == ["CE", "CE+KD(T=4,w=0.7)", "CE+KD(T=2,w=0.7)"]
    csv = invoke(tmp_path / "ws", *args, "-f", "csv").output.splitlines()
    assert csv[0].startswith("row,col,name,group_key,n,mean,std") and len(csv) == 7
    for fmt in ("markdown", "latex"):
        assert invoke(tmp_path / "ws", *args, "-f", fmt).exit_code == 0
    flat = invoke(tmp_path / "ws")  # without --rows/--cols: the table of groups
    assert flat.exit_code == 0 and "84.75 ± 1.06*" in flat.output
    assert "2 of 3 seeds finished" in flat.output and "mean of the seeds finished" in flat.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "student.width"], "--rows and --cols go together"),
        (["--baseline", "base"], "--baseline is for the pivot"),
        (
            ["--rows", "x", "--cols", "loss"],
            "--rows x: no group's spec has this path; paths that vary:",
        ),
        (["--rows", "loss", "--cols", "student", "--metric", "mean"], "unknown metric 'mean'"),
    ],
)
def test_cli_mistakes_are_one_line(study: Store, args: list[str], message: str):
    result = invoke(study.root, *args)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {message}") and result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_an_empty_workspace_says_so_as_the_flat_table_does(tmp_path: Path):
    result = invoke(tmp_path / "ws", "--rows", "loss", "--cols", "student")
    assert (result.exit_code, result.output) == (0, "no results yet\n")


def test_a_group_whose_spec_cannot_be_read_stays_in_the_pivot(tmp_path: Path):
    """A result recorded from elsewhere, or a damaged spec.json: its paths read as –."""
    store = build(tmp_path / "ws")
    newest = max((r for r in store.runs() if r["name"] == "kd-t16"), key=lambda r: r["created"])
    (store.run_dir(newest["run_id"]) / "spec.json").write_text("{not json")
    p = pivot_of(store, "teachers[0].experiment", "loss")
    assert grid(p)[("– · –", "–")].group.name == "kd-t16"


def test_labels_of_objects_read_like_the_tables():
    from kdtui.results.pivot import label, parse_path

    assert parse_path("teachers[0].model.view") == ("teachers", 0, "model", "view")
    teacher = {"experiment": "gaf16-3", "weight": 1.0, "pick": "same-seed"}
    assert label(parse_path("teachers[0]"), teacher) == "gaf16-3"
    assert label(parse_path("teachers"), [teacher, {**teacher, "experiment": "sig"}]) == (
        "gaf16-3 + sig"
    )
    assert label(parse_path("teachers"), []) == "none"
    assert label(parse_path("loss.kd"), {"T": 4.0, "weight": 0.7}) == "KD(T=4,w=0.7)"
    model = {"depth": 16, "width": 3, "view": {"kind": "gaf", "image_size": 32}}
    assert label(parse_path("student"), model) == "WRN16-3(gaf)"
    assert label(parse_path("augment"), {"mixup": {"alpha": 1.0}}) == "mixup(α=1)"
    assert label(parse_path("loss.kd.T"), 4.0) == "4" and label(parse_path("x"), None) == "–"
    assert re.fullmatch(r"\{.*\}", label(parse_path("optim"), {"lr": 0.1}))  # no label: JSON
