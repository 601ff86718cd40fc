"""The headless CLI end to end: real engine processes, real store, real results table."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import run_cli, tiny_experiment


def test_importing_the_cli_does_not_import_torch():
    code = "import sys, kdtui.cli, kdtui.launcher, kdtui.runner; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_invalid_spec_exits_2_with_every_problem_and_writes_nothing(write_spec, workspace):
    bad = {"experiments": [
        tiny_experiment("t"),
        {**tiny_experiment("s"), "colour": 1, "epochs": "two",
         "data": {"dataset": "npz", "path": "nowhere.npz"},
         "teachers": [{"experiment": "ghost"}], "loss": {"kd": {"T": -1}}},
    ]}  # fmt: skip
    result = run_cli("run", str(write_spec(bad)), workspace=workspace)
    assert result.returncode == 2, result.stdout + result.stderr
    for needle in (
        "experiments[1].colour: unknown field",
        "experiments[1].epochs:",
        "experiments[1].loss.kd.T: must be > 0",
        "experiments[1].data.path: no such file",
        "experiments[1].teachers[0].experiment: no experiment named 'ghost'",
    ):
        assert needle in result.stderr, result.stderr
    assert not workspace.exists()


def test_errors_stay_one_line_when_piped(write_spec, tmp_path):
    """A narrow terminal size must not hard-wrap piped errors: they are grepped."""
    view = {"kind": "gaf", "method": "sum", "image_size": 16}
    spec = write_spec(tiny_experiment("t", student={"depth": 10, "width": 1, "view": view}))
    env = dict(os.environ, COLUMNS="40", NO_COLOR="1", KDTUI_WORKSPACE=str(tmp_path / "ws"))
    result = subprocess.run(
        [sys.executable, "-m", "kdtui", "run", str(spec)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    line = "  student.view.method: Input should be 'summation' or 'difference'"
    assert line in result.stderr.splitlines(), result.stderr


def test_top_level_workspace_from_the_shell(write_spec, tmp_path):
    """``kdtui --workspace DIR CMD``, as typed: the top-level option reaches the command."""
    env = {k: v for k, v in os.environ.items() if k != "KDTUI_WORKSPACE"}
    ws = tmp_path / "ws1"

    def kdtui(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "kdtui", "--workspace", str(ws), *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)

    assert kdtui("todo", "add", "hello").returncode == 0
    assert kdtui("record", "kd", "70").returncode == 0
    assert [r["name"] for r in json.loads(kdtui("ls", "-f", "json").stdout)] == ["kd"]
    assert not (tmp_path / "runs").exists() and (ws / "kdtui.json").exists()


@pytest.mark.slow
def test_teacher_and_kd_student_end_to_end(write_spec, cleanup_processes):
    workspace = cleanup_processes
    teacher = tiny_experiment("teacher", seeds=[0, 1])
    teacher["student"] = {"depth": 10, "width": 2, "view": {"kind": "gaf", "image_size": 16}}
    student = tiny_experiment("student", seeds=[0, 1],
                              teachers=[{"experiment": "teacher", "pick": "same-seed"}],
                              loss={"ce": 0.3, "kd": {"T": 4, "weight": 0.7}})  # fmt: skip
    spec = write_spec({"experiments": [teacher, student]})
    result = run_cli("run", str(spec), "--jobs", "2", workspace=workspace, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "±" in result.stdout and "student" in result.stdout

    table = json.loads(run_cli("table", "--format", "json", workspace=workspace).stdout)
    assert [row["name"] for row in table] == ["teacher", "student"]
    for row in table:
        assert row["n"] == 2 and row["seeds"] == [0, 1]
        stats = row["best_acc"]
        assert stats["min"] <= stats["mean"] <= stats["max"] and stats["std"] is not None

    runs = json.loads(run_cli("ls", "--format", "json", workspace=workspace).stdout)
    assert len(runs) == 4 and {r["status"] for r in runs} == {"done"}
    students = [r for r in runs if r["name"] == "student"]
    teachers = {r["seed"]: r["run_id"] for r in runs if r["name"] == "teacher"}
    for s in students:  # same-seed: each student learned from the teacher of its seed
        assert s["teacher_runs"][0]["run_id"] == teachers[s["seed"]]
        assert s["started"] >= max(r["ended"] for r in runs if r["run_id"] == teachers[s["seed"]])

    # every run folder holds what the store promises
    for r in runs:
        folder = workspace / r["run_id"]
        events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
        assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2]
        assert events[-1]["type"] == "end" and events[-1]["status"] == "done"
        assert (folder / "ckpt" / "best.pt").exists() and (folder / "ckpt" / "last.pt").exists()
        assert json.loads((folder / "spec.json").read_text())["seed"] == r["seed"]

    # the GAF images were computed once and then read from the cache
    logs = "".join((workspace / r["run_id"] / "stdout.log").read_text() for r in runs)
    assert logs.count("view gaf(summation, 16) train: computed") == 1
    assert logs.count("view gaf(summation, 16) train: loaded from cache") >= 3

    shown = run_cli("show", students[0]["run_id"][:-2], workspace=workspace).stdout
    assert "teacher" in shown and teachers[students[0]["seed"]] in shown

    md = run_cli("table", "--format", "markdown", workspace=workspace).stdout
    assert md.startswith("| group") and "| student |" in md

    # a third teacher seed in the file: --skip-done trains only what is missing (one run:
    # a student's seed 2 would wait for it, one engine start after the other)
    teacher["seeds"] = [0, 1, 2]
    spec = write_spec({"experiments": [teacher, student]})
    result = run_cli("run", str(spec), "--skip-done", "--jobs", "2", workspace=workspace,
                     timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    skipped = "skipped, in the store already: teacher seeds 0, 1; student seeds 0, 1"
    assert skipped in result.stdout and "queued 1 run (1 experiment)" in result.stdout
    runs = json.loads(run_cli("ls", "--format", "json", workspace=workspace).stdout)
    assert [(r["name"], r["seed"]) for r in runs if r["seed"] == 2] == [("teacher", 2)]
    assert len(runs) == 5 and {r["status"] for r in runs} == {"done"}
    again = run_cli("run", str(spec), "--skip-done", workspace=workspace)
    assert again.returncode == 0 and "nothing to run: every seed is in the store" in again.stdout
    assert "±" in again.stdout  # the table of what the store holds


def test_schema_is_json_schema(workspace):
    result = run_cli("schema", workspace=workspace)
    schema = json.loads(result.stdout)
    # the experiment's schema: the root, or a definition the spec file's forms refer to
    experiment = schema.get("$defs", {}).get("Experiment", schema)
    assert experiment["type"] == "object" and "student" in experiment["properties"]


def test_ls_on_empty_workspace_is_friendly(workspace):
    result = run_cli("ls", workspace=workspace)
    assert result.returncode == 0 and "no runs yet" in result.stdout
    assert json.loads(run_cli("ls", "--format", "json", workspace=workspace).stdout) == []


def test_piped_output_is_not_cut_to_80_columns(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["KDTUI_WORKSPACE"] = str(tmp_path / "ws")
    name = "T1 : WRN28-3(sig), T2 : WRN28-3(GAF), AMD global+local, beta 1000, long"

    def kdtui(*args: str) -> str:
        cmd = [sys.executable, "-m", "kdtui", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout

    kdtui("record", name, "70.1")
    assert any(line.startswith(name) for line in kdtui("table").splitlines())
