"""``kdtui check``: a study validated and expanded, as a table or JSON, with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli

from kdtui.spec import load_spec

STUDY = Path("examples/study.json").resolve()


def test_check_lists_the_expanded_study_as_json_and_writes_nothing(tmp_path):
    ws = tmp_path / "ws"
    result = run_cli("check", str(STUDY), "--format", "json", workspace=ws)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    loaded = load_spec(STUDY)
    assert [r["name"] for r in rows] == [e.name for e in loaded.experiments]
    assert {r["name"]: r["group_key"] for r in rows} == loaded.group_keys
    assert all(r["seeds"] == [0, 1, 2] and r["runs"] == 3 for r in rows)
    by_name = {r["name"]: r for r in rows}
    assert [t["experiment"] for t in by_name["kd-gaf-WRN28-3"]["teachers"]] == ["gaf-WRN28-3"]
    two = by_name["kd-two-teachers"]["teachers"]
    assert [(t["experiment"], t["weight"], t["pick"]) for t in two] == [
        ("gaf-WRN16-3", 0.7, "same-seed"),
        ("signal-WRN16-3", 0.3, "same-seed"),
    ]
    assert by_name["signal-WRN16-1"]["teachers"] == []
    assert not ws.exists()  # no workspace made, nothing queued


def test_check_table_has_one_line_per_experiment_and_the_totals(tmp_path):
    result = run_cli("check", str(STUDY), workspace=tmp_path / "ws")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["experiment", "group", "seeds", "runs", "teachers"]
    keys = load_spec(STUDY).group_keys
    two = next(line for line in lines if line.startswith("kd-two-teachers"))
    assert two.split() == [
        "kd-two-teachers", keys["kd-two-teachers"], "0,1,2", "3",
        "0.7·gaf-WRN16-3", "+", "0.3·signal-WRN16-3",
    ]  # fmt: skip
    assert next(line for line in lines if line.startswith("gaf-WRN28-3")).split()[-1] == "–"
    assert len(lines) == 1 + 11 + 1
    assert lines[-1] == "11 experiments, 33 runs; nothing written"


def test_an_invalid_study_is_refused_as_run_refuses_it(tmp_path):
    body = json.loads(STUDY.read_text())
    body["experiments"][3]["loss"]["kd"]["T"] = 0
    body["defaults"]["epochs"] = 0
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps(body))
    ws = tmp_path / "ws"
    check = run_cli("check", str(spec), workspace=ws)
    run = run_cli("run", str(spec), workspace=ws)
    assert check.returncode == run.returncode == 2
    assert check.stderr == run.stderr
    assert check.stderr.splitlines()[1:] == [
        "  defaults.epochs: must be >= 1 (got 0)",
        "  experiments[3].loss.kd.T: must be > 0.0 (got 0)",
    ]
    assert check.stdout == ""
