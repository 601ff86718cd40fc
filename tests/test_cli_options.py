"""CLI options and messages, in process (no engine, no runner): where --workspace points,
what bad input says, and how numbers and plurals read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tiny_experiment
from typer.testing import CliRunner

from kdtui import launcher, runner
from kdtui.cli import app
from kdtui.clikit import fmt_acc, plural
from kdtui.executors import LocalExecutor, local
from kdtui.spec import validate_spec
from kdtui.store import Store

cli = CliRunner()


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder with no KDTUI_WORKSPACE, so ./runs is the default."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KDTUI_WORKSPACE", raising=False)
    return tmp_path


@pytest.fixture
def no_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """``kdtui run`` queues its runs but starts no queue runner (nothing trains)."""
    monkeypatch.setattr(LocalExecutor, "start", lambda self, store, run_ids: None)
    monkeypatch.setattr(local, "ensure_runner", lambda store: False)  # nor does `ls` then


def invoke(*args: str):
    return cli.invoke(app, list(args))


def record(ws: Path, group: str, value: str, seed: int = 0) -> dict:
    result = invoke("record", group, value, "--seed", str(seed), "-w", str(ws))
    assert result.exit_code == 0, result.output
    return next(r for r in Store(ws).runs() if r["name"] == group and r["seed"] == seed)


def spec_file(tmp_path: Path, **over) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(tiny_experiment("kd", **over)))
    return path


# ---------------------------------------------------------------------- --workspace


def test_top_level_workspace_reaches_every_subcommand(here: Path, no_runner: None) -> None:
    ws = here / "ws1"
    assert invoke("--workspace", str(ws), "todo", "add", "hello").exit_code == 0
    assert invoke("-w", str(ws), "record", "kd", "30").exit_code == 0
    result = invoke("-w", str(ws), "run", str(spec_file(here)), "--detach")
    assert result.exit_code == 0, result.output
    assert not (here / "runs").exists()
    assert [t["text"] for t in Store(ws).todos()] == ["hello"]
    assert sorted(r["name"] for r in Store(ws).runs()) == ["kd", "kd"]

    listed = json.loads(invoke("-w", str(ws), "ls", "--format", "json").stdout)
    assert len(listed) == 2
    assert "hello" in invoke("-w", str(ws), "todo", "ls").stdout
    assert len(json.loads(invoke("-w", str(ws), "table", "-f", "json").stdout)) == 2
    assert not (here / "runs").exists()


def test_subcommand_workspace_wins_and_top_level_beats_the_env_var(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top, sub, env = here / "top", here / "sub", here / "env"
    assert invoke("-w", str(top), "todo", "add", "a", "-w", str(sub)).exit_code == 0
    monkeypatch.setenv("KDTUI_WORKSPACE", str(env))
    assert invoke("-w", str(top), "todo", "add", "b").exit_code == 0
    assert invoke("todo", "add", "c").exit_code == 0
    texts = {ws.name: [t["text"] for t in Store(ws).todos()] for ws in (top, sub, env)}
    assert texts == {"top": ["b"], "sub": ["a"], "env": ["c"]}


@pytest.mark.parametrize(
    "args",
    [
        ["run", "SPEC", "--detach"],  # never follows the runs, even with the old bug
        ["ls"],
        ["ls", "--format", "json"],
        ["table"],
        ["show", "x"],
        ["stop", "--all"],
        ["resume", "--all-crashed"],
        ["doctor"],
        ["record", "kd", "30"],
        ["todo", "add", "x"],
        ["todo", "ls"],
        ["todo", "done", "x"],
        ["notes", "fill", "NOTES", "--from-store"],
    ],
)
@pytest.mark.parametrize("where", ["file", "under-file", "top-level"])
def test_a_workspace_that_is_a_file_is_one_line_and_exit_2(
    here: Path, no_runner: None, args: list[str], where: str
) -> None:
    spec, notes = spec_file(here), here / "notes.md"
    notes.write_text("## kd\n- 1\n- 2\n- mean :\n")
    args = [{"SPEC": str(spec), "NOTES": str(notes)}.get(a, a) for a in args]
    (here / "f").write_text("hi\n")
    ws = "f/sub" if where == "under-file" else "f"
    before = sorted(p.name for p in here.iterdir())
    argv = ["-w", ws, *args] if where == "top-level" else [*args, "-w", ws]
    result = invoke(*argv)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: workspace {ws} is not a directory")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert sorted(p.name for p in here.iterdir()) == before
    assert (here / "f").read_text() == "hi\n"


def test_the_app_refuses_a_workspace_that_is_a_file(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kdtui.tui.app

    monkeypatch.setattr(kdtui.tui.app, "run_app", lambda ws: pytest.fail(f"app opened on {ws}"))
    (here / "f").write_text("hi\n")
    result = invoke("-w", "f")
    assert result.exit_code == 2 and "workspace f is not a directory" in result.stderr


# ---------------------------------------------------------------------- ls


def test_ls_status_is_checked_and_an_empty_filter_says_so(here: Path) -> None:
    ws = here / "ws"
    result = invoke("ls", "--status", "bogus", "-w", str(ws))
    assert result.exit_code == 2
    assert "unknown status 'bogus' (queued, running, done, failed, crashed, cancelled)" in (
        result.stderr
    )
    assert invoke("ls", "--status", "bogus", "-f", "json", "-w", str(ws)).exit_code == 2
    assert "no runs yet" in invoke("ls", "--status", "failed", "-w", str(ws)).stdout

    record(ws, "kd", "30")
    result = invoke("ls", "--status", "failed", "-w", str(ws))
    assert result.exit_code == 0 and result.stdout.strip() == "no failed runs"
    assert "kd" in invoke("ls", "--status", "done", "-w", str(ws)).stdout


def test_ls_json_rounds_accuracies_to_6_decimals(here: Path) -> None:
    ws = here / "ws"
    run = record(ws, "kd", "30.000001907348633")  # float32 noise, as the engine reports it
    Store(ws).update(
        run["run_id"], {"acc": 68.20625305175781, "nll": 0.123456789123, "ece": float("nan")}
    )
    text = invoke("ls", "--format", "json", "-w", str(ws)).stdout
    (listed,) = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert listed["ece"] is None
    assert listed["best_acc"] == listed["last_acc"] == 30.000002  # as `kdtui table -f json`
    assert listed["acc"] == 68.206253 and "30.000001907348633" not in text
    assert listed["nll"] == 0.123456789123  # only accuracies are rounded


# ---------------------------------------------------------------------- run


def test_run_refuses_gpus_that_are_not_visible(
    here: Path, no_runner: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, spec = here / "ws", spec_file(here)

    def run_gpus(gpus: str):
        return invoke("run", str(spec), "--gpus", gpus, "--detach", "-w", str(ws))

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    result = run_gpus("0,1")
    assert result.exit_code == 2
    assert "--gpus 0,1: no GPU visible (CUDA_VISIBLE_DEVICES empty)" in result.stderr

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    result = run_gpus("0,1")
    assert result.exit_code == 2
    assert "--gpus 0,1: GPU 1 not visible (visible: 0)" in result.stderr

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr("shutil.which", lambda name: None)
    result = run_gpus("0")
    assert result.exit_code == 2 and "no GPU visible (nvidia-smi not found)" in result.stderr
    assert not ws.exists()  # nothing queued

    result = invoke("run", str(spec), "--per-gpu", "2", "--detach", "-w", str(ws))
    assert result.exit_code == 2 and "--per-gpu: no GPU visible" in result.stderr
    assert not ws.exists()  # nothing queued

    monkeypatch.setattr(runner, "discover_gpus", lambda: ["0", "1"])
    result = run_gpus("1")
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in Store(ws).runs()] == ["queued"]


def test_run_says_its_counts_in_proper_plurals(here: Path, no_runner: None) -> None:
    one = invoke("run", str(spec_file(here)), "--detach", "-w", "a")
    assert one.exit_code == 0 and one.stdout.startswith("queued 1 run (1 experiment) in a")
    two = invoke("run", str(spec_file(here, seeds=[0, 1])), "--detach", "-w", "b")
    assert two.stdout.startswith("queued 2 runs (1 experiment) in b")


def test_run_says_which_seeds_the_store_has_already(here: Path, no_runner: None) -> None:
    spec = spec_file(here, seeds=[0, 1])
    first = invoke("run", str(spec), "--detach", "-w", "ws")
    assert first.exit_code == 0 and "note:" not in first.stderr
    again = invoke("run", str(spec_file(here, seeds=[1, 2])), "--detach", "-w", "ws")
    assert again.exit_code == 0, again.output
    assert "already names another configuration" not in again.stderr  # the same one
    changed = invoke("run", str(spec_file(here, epochs=3)), "--detach", "-w", "ws")
    assert "note: 'kd' already names another configuration (group " in changed.stderr
    assert "note: the store has kd seed 1 already: trained again, the latest run counts" in (
        again.stderr
    )


def test_outside_results_show_no_epochs_and_show_says_their_note(here: Path) -> None:
    ws = here / "ws"
    result = invoke("record", "paper", "71.2", "--note", "table 3 of the paper", "-w", str(ws))
    assert result.exit_code == 0, result.output
    listing = invoke("ls", "-w", str(ws)).stdout
    assert "paper" in listing and "0/?" not in listing  # trained nowhere: no epochs
    (run,) = Store(ws).runs()
    shown = invoke("show", run["run_id"], "-w", str(ws)).stdout
    assert "source      record" in shown and "note        table 3 of the paper" in shown
    assert "executor" not in shown and "  epoch " not in shown  # trained elsewhere


def test_an_ambiguous_run_prefix_names_its_matches(here: Path) -> None:
    ws = here / "ws"
    for seed in (0, 1):
        record(ws, "twin", "50", seed=seed)
    result = invoke("show", "record-twin", "-w", str(ws))
    assert result.exit_code == 2
    assert "record-twin matches 2 runs (record-twin-" in result.stderr
    assert "give more of the id" in result.stderr


def test_rm_moves_finished_runs_to_the_trash_and_leaves_active_ones(
    here: Path, no_runner: None
) -> None:
    ws = here / "ws"
    wrong = record(ws, "paper", "0.7")
    assert invoke("record", "paper", "71", "-w", str(ws)).exit_code == 2  # 71 beside 0.7
    assert invoke("record", "paper", "71", "--force", "-w", str(ws)).exit_code == 0
    assert invoke("run", str(spec_file(here)), "--detach", "-w", str(ws)).exit_code == 0
    queued = next(r for r in Store(ws).runs() if r["status"] == "queued")

    result = invoke("rm", queued["run_id"], "-y", "-w", str(ws))
    assert result.exit_code == 2 and "queued or running; stop first" in result.stderr
    result = cli.invoke(app, ["rm", wrong["run_id"], "-w", str(ws)], input="n\n")
    assert result.exit_code == 1 and Store(ws).get(wrong["run_id"])  # asked, and kept
    result = cli.invoke(app, ["rm", wrong["run_id"], "-w", str(ws)], input="y\n")
    assert result.exit_code == 0 and "removed 1 run" in result.stdout
    assert Store(ws).get(wrong["run_id"]) is None
    assert (ws / "trash" / wrong["run_id"] / "spec.json").exists()  # nothing lost
    table = json.loads(invoke("table", "--format", "json", "-w", str(ws)).stdout)
    assert [(r["name"], r["n"]) for r in table if r["name"] == "paper"] == [("paper", 1)]
    assert "rebuilt 2 runs" in invoke("doctor", "-w", str(ws)).stdout  # the trash stays out


def test_rm_keeps_a_teacher_that_a_waiting_student_needs(here: Path, no_runner: None) -> None:
    ws = here / "ws"
    store = Store(ws)
    kd = {"loss": {"kd": {}}, "teachers": [{"experiment": "t"}]}
    spec = validate_spec([tiny_experiment("t"), tiny_experiment("s", **kd)])
    teacher, student = launcher.enqueue(store, spec)
    store.record_event(teacher, {"type": "end", "status": "done", "best_acc": 50.0})
    result = invoke("rm", teacher, teacher, "-y", "-w", str(ws))
    assert result.exit_code == 2 and f"students need these teachers ({student})" in result.stderr
    store.record_event(student, {"type": "end", "status": "cancelled", "reason": "asked"})
    result = invoke("rm", teacher, teacher, "-y", "-w", str(ws))
    assert result.exit_code == 0 and result.stdout.count(teacher) == 1  # named once
    assert "removed 1 run" in result.stdout


def test_stop_and_resume_with_nothing_named_are_usage_errors(here: Path) -> None:
    for command, instead in (("stop", "--all"), ("resume", "--all-crashed")):
        result = invoke(command, "-w", str(here / "ws"))
        assert result.exit_code == 2 and f"or give {instead}" in result.stderr


def test_changing_the_workspace_slots_is_said(here: Path, no_runner: None) -> None:
    local.write_runner_config(Store(here / "ws"), jobs=2)  # an earlier `run --jobs 2`
    same = invoke("run", str(spec_file(here)), "--jobs", "2", "--detach", "-w", "ws")
    assert same.exit_code == 0 and "note:" not in same.stderr
    again = invoke("run", str(spec_file(here)), "--jobs", "1", "--detach", "-w", "ws")
    assert "the workspace's slots change (jobs 2 → 1)" in again.stderr


def test_plural() -> None:
    assert [plural(n, "run") for n in (0, 1, 2)] == ["0 runs", "1 run", "2 runs"]
    assert plural(2, "query", "queries") == "2 queries"


# ---------------------------------------------------------------------- errors


def test_an_error_stays_on_one_line_when_piped(here: Path) -> None:
    status = "x" * 300
    result = invoke("ls", "--status", status, "-w", "ws")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_accuracies_that_are_no_number_are_shown_as_they_are() -> None:
    assert [fmt_acc(v) for v in (None, 68.2063, 70, "n/a", float("nan"))] == [
        "–", "68.21", "70.00", "n/a", "nan",
    ]  # fmt: skip


def test_doctor_reports_a_planted_folder_and_never_indexes_it(here: Path, no_runner: None) -> None:
    """Indexed, such a folder crashed the queue runner at every start."""
    ws = here / "ws"
    assert invoke("run", str(spec_file(here)), "--detach", "-w", str(ws)).exit_code == 0
    (good,) = Store(ws).runs()
    planted = ws / "planted"
    planted.mkdir()
    spec = json.loads((ws / good["run_id"] / "spec.json").read_text())
    (planted / "spec.json").write_text(json.dumps({**spec, "run_id": "../../escape"}))
    (ws / good["run_id"] / "events.jsonl").symlink_to(here / "elsewhere.jsonl")
    result = invoke("doctor", "-w", str(ws))
    assert result.exit_code == 0, result.output
    assert "left out 1 bad folder(s): planted (spec.json names run '../../escape')" in result.stdout
    assert f"linked: {good['run_id']}: events.jsonl" in result.stdout
    assert [r["run_id"] for r in Store(ws).runs()] == [good["run_id"]]
