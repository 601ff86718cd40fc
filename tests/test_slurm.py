"""The Slurm executor: its rules against a faked Slurm, then for real against a
single-node cluster (tests/slurm_cluster.py) — skipped, with the reason, where munge and
Slurm's daemons are not installed or we are not root."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, tiny_experiment, wait_for
from slurm_cluster import SlurmCluster, slurm_cluster, unavailable

from kdtui.executors import ExecutorError, reconcile, slurm
from kdtui.executors.slurm import Job, SlurmExecutor, SlurmOptions, afterok
from kdtui.launcher import enqueue, more_seeds, requeue
from kdtui.runner import local_queue
from kdtui.spec import validate_spec
from kdtui.store import Store, read_events

SLURM_RUN = ("--executor", "slurm", "--gpus-per-run", "0")
# One process of the suite runs them all (pytest-xdist): one cluster, started once.
pytestmark = pytest.mark.xdist_group("slurm")


def _slow(name: str, epochs: int, **over: Any) -> dict[str, Any]:
    """Epochs of ~0.2 s on one core: long enough to act on a run in the middle."""
    exp = tiny_experiment(name, epochs=epochs, **over)
    exp["data"].update(n_train=192, length=128)
    return exp


def _by_name(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in runs}


# ---------------------------------------------------------------------- rules (no Slurm)


@pytest.fixture
def fake_slurm(monkeypatch: pytest.MonkeyPatch):
    """Slurm's answers as the test sets them: {job id: Job}, or None for 'cannot ask'."""
    answers: dict[str, Any] = {"jobs": {}}
    monkeypatch.setattr(slurm, "_answers", slurm._Answers())
    monkeypatch.setattr(slurm, "query", lambda ids: answers["jobs"])
    monkeypatch.setattr(slurm, "scancel", lambda job_id: answers.setdefault("cancelled", []).append(job_id) or True)  # fmt: skip
    return answers


def _slurm_runs(store: Store, *experiments: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Runs enqueued for the Slurm executor and given job ids 1, 2, ... (no sbatch)."""
    ex = SlurmExecutor(SlurmOptions(gpus_per_run=0))
    for i, run_id in enumerate(enqueue(store, validate_spec(list(experiments)), ex), start=1):
        store.record_event(run_id, {"type": "submit", "executor": "slurm", "job_id": str(i)})
    return {r["run_id"]: r for r in store.runs()}


def test_slurm_runs_are_judged_by_slurm_never_by_a_pid(tmp_path, fake_slurm):
    store = Store(tmp_path / "ws")
    ids = list(_slurm_runs(store, tiny_experiment("a", seeds=[0, 1, 2, 3, 4, 5, 6])))
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    for run_id in ids[:6]:  # "running" with a pid of this host that is gone
        store.record_event(run_id, {"type": "start", "pid": dead.pid, "host": os.uname().nodename})
    store.update(ids[3], {"cancel_requested": time.time()})
    (store.run_dir(ids[4]) / "stdout.log").write_text("Traceback ...\nValueError: boom\n")
    fake_slurm["jobs"] = {
        "1": Job("RUNNING", None, "n1"),
        "2": Job("TIMEOUT", "TimeLimit", "n1"),
        "3": Job("CANCELLED", None, "n2"),
        "4": Job("CANCELLED", None, "n2"),
        "5": Job("FAILED", "NonZeroExitCode", "n1", exit_code=1, signal=0),
        "6": Job("FAILED", "NonZeroExitCode", "n1", exit_code=0, signal=9),
        "7": Job("PENDING", "Priority", None),
    }
    lines = reconcile(store)
    runs = [store.get(i) for i in ids]
    assert [r["status"] for r in runs] == [
        "running", "crashed", "crashed", "cancelled", "failed", "crashed", "queued",
    ]  # fmt: skip
    assert runs[0]["node"] == "n1" and runs[0]["slurm_state"] == "RUNNING"
    assert runs[1]["error"] == "Slurm job 2 TIMEOUT on n1: time limit reached"
    assert runs[1]["slurm_state"] == "TIMEOUT"
    assert runs[2]["error"] == "Slurm job 3 CANCELLED on n2: cancelled outside kdtui (scancel)"
    assert runs[3]["error"] == "cancelled by the user"
    assert runs[4]["error"].endswith(
        "exited with exit code 1 without an end event: ValueError: boom"
    )
    assert runs[5]["error"] == "Slurm job 6 FAILED on n1: killed by signal 9"
    assert runs[6]["slurm_reason"] == "Priority" and runs[6]["slurm_state"] == "PENDING"
    assert len(lines) == 5 and read_events(store.run_dir(ids[1]))[-1]["status"] == "crashed"
    assert reconcile(store) == []  # settled runs stay settled


def test_without_slurm_a_running_slurm_run_is_judged_by_its_heartbeat(
    tmp_path, fake_slurm, monkeypatch
):
    store = Store(tmp_path / "ws")
    fresh, stale, queued = _slurm_runs(store, tiny_experiment("a", seeds=[0, 1, 2]))
    for run_id in (fresh, stale):
        store.record_event(run_id, {"type": "start", "pid": 1, "host": "elsewhere"})
    store.update(stale, {"heartbeat": time.time() - 1000})
    monkeypatch.setenv("KDTUI_HEARTBEAT_STALE_S", "120")
    fake_slurm["jobs"] = None  # squeue missing or the controller down
    reconcile(store)
    assert store.get(fresh)["status"] == "running" and store.get(queued)["status"] == "queued"
    assert store.get(stale)["status"] == "crashed"
    assert "no heartbeat" in store.get(stale)["error"]

    fake_slurm["jobs"] = {}  # Slurm answers, and knows nothing of job 1
    monkeypatch.setattr(slurm, "_answers", slurm._Answers())
    reconcile(store)
    assert "Slurm has no record of job 1" in store.get(fresh)["error"]


def test_a_queued_student_of_a_failed_teacher_fails_and_its_job_is_cancelled(tmp_path, fake_slurm):
    store = Store(tmp_path / "ws")
    student = tiny_experiment("s", teachers=[{"experiment": "t"}], loss={"kd": {"T": 4}})
    teacher_id, student_id = _slurm_runs(store, tiny_experiment("t"), student)
    store.record_event(teacher_id, {"type": "error", "message": "boom"})
    fake_slurm["jobs"] = {"2": Job("PENDING", "Dependency", None)}
    reconcile(store)
    assert store.get(student_id)["status"] == "failed"
    assert "teacher 't' seed 0 is failed" in store.get(student_id)["error"]
    assert fake_slurm["cancelled"] == ["2"]


def test_dependency_never_satisfied_fails_the_student(tmp_path, fake_slurm):
    store = Store(tmp_path / "ws")
    (run_id,) = _slurm_runs(store, tiny_experiment("s"))
    fake_slurm["jobs"] = {"1": Job("PENDING", "DependencyNeverSatisfied", None)}
    reconcile(store)
    assert store.get(run_id)["status"] == "failed"
    assert "DependencyNeverSatisfied" in store.get(run_id)["error"]
    assert fake_slurm["cancelled"] == ["1"]


def test_a_student_waits_only_for_the_teacher_jobs_it_needs(tmp_path):
    store = Store(tmp_path / "ws")
    kd = {"kd": {"T": 4}}
    same = tiny_experiment("same", seeds=[0, 1], teachers=[{"experiment": "t"}], loss=kd)
    best = tiny_experiment("best", seeds=[0], teachers=[{"experiment": "t", "pick": "best"}], loss=kd)  # fmt: skip
    runs = list(_slurm_runs(store, tiny_experiment("t", seeds=[0, 1]), same, best).values())
    t0, t1, s0, s1, b0 = runs
    assert afterok(s0, runs) == ("ready", f"afterok:{t0['job_id']}")
    assert afterok(s1, runs) == ("ready", f"afterok:{t1['job_id']}")
    assert afterok(b0, runs) == ("ready", f"afterok:{t0['job_id']}:{t1['job_id']}")
    t0.update(status="done", best_acc=50.0)
    assert afterok(s0, runs) == ("ready", "")  # nothing left to wait for
    t1.update(job_id=None)  # its submission has not happened yet
    assert afterok(s1, runs) == ("wait", "")
    t1.update(executor="local")
    assert afterok(s1, runs)[0] == "failed" and "local executor" in afterok(s1, runs)[1]


def test_the_local_runner_leaves_slurm_runs_to_slurm(tmp_path):
    store = Store(tmp_path / "ws")
    _slurm_runs(store, tiny_experiment("s"))
    enqueue(store, validate_spec(tiny_experiment("l")))
    assert [r["name"] for r in local_queue(store.runs())] == ["l"]


def test_a_rebuilt_index_keeps_the_executor_and_the_job(tmp_path):
    store = Store(tmp_path / "ws")
    (run_id,) = _slurm_runs(store, tiny_experiment("s"))
    store.rebuild()
    run = store.get(run_id)
    assert (run["executor"], run["job_id"], run["status"]) == ("slurm", "1", "queued")


def test_requeue_forgets_the_previous_attempt(tmp_path, fake_slurm, monkeypatch):
    store = Store(tmp_path / "ws")
    (run_id,) = _slurm_runs(store, tiny_experiment("s"))
    store.update(run_id, {"cancel_requested": 1.0, "node": "n1", "slurm_state": "CANCELLED"})
    store.record_event(run_id, {"type": "end", "status": "crashed", "reason": "x"})
    started = []
    monkeypatch.setattr(SlurmExecutor, "start", lambda self, st, ids: started.extend(ids))
    assert requeue(store, [run_id]) == [run_id] and started == [run_id]
    run = store.get(run_id)
    assert run["status"] == "queued"
    assert not any(run.get(k) for k in ("cancel_requested", "job_id", "node", "slurm_state"))


def test_query_falls_back_from_squeue_to_sacct_and_its_completion_log(monkeypatch):
    calls = []

    def fake(*cmd: str) -> subprocess.CompletedProcess[str]:
        calls.append(cmd[0] + (" --completion" if "--completion" in cmd else ""))
        if cmd[0] == "squeue":  # job 7 is still held; 8 and 9 are not
            line = "7   |PENDING  |Dependency |  |0  |"
            return subprocess.CompletedProcess(cmd, 0, line + "\n", "")
        if "--completion" not in cmd:
            return subprocess.CompletedProcess(cmd, 1, "", "Slurm accounting storage is disabled")
        return subprocess.CompletedProcess(cmd, 0, "8|CANCELLED by 0||n3|0:15\n", "")

    monkeypatch.setattr(slurm, "_slurm", fake)
    jobs = slurm.query(["7", "8", "9"])
    assert jobs == {
        "7": Job("PENDING", "Dependency", None, 0, 0),
        "8": Job("CANCELLED", None, "n3", 0, 15),
    }
    assert calls == ["squeue", "sacct", "sacct --completion"]


def test_options_merge_the_workspace_file_and_the_command_line(tmp_path):
    store = Store(tmp_path)
    (tmp_path / "slurm.json").write_text(
        json.dumps({"partition": "gpu", "time": "01:00:00", "options": {"account": "lab", "cpus-per-task": 4}})
    )  # fmt: skip
    opts = SlurmOptions.load(store, time_limit="04:00:00", extra=["qos=high", "exclusive"])
    assert opts.sbatch_args() == [
        "--partition=gpu", "--gres=gpu:1", "--time=04:00:00",
        "--account=lab", "--cpus-per-task=4", "--qos=high", "--exclusive",
    ]  # fmt: skip
    assert SlurmOptions.load(store, gpus_per_run=0).sbatch_args()[1] == "--time=01:00:00"
    with pytest.raises(ExecutorError, match="kdtui sets it itself"):
        SlurmOptions.load(store, extra=["output=/tmp/x"])
    (tmp_path / "slurm.json").write_text('{"partion": "gpu"}')
    with pytest.raises(ExecutorError, match="partion: Extra inputs are not permitted"):
        SlurmOptions.load(store)


def test_run_refuses_options_of_the_other_executor_and_a_missing_sbatch(
    write_spec, workspace, monkeypatch
):
    spec = str(write_spec(tiny_experiment("x")))
    result = run_cli("run", spec, "--executor", "slurm", "--jobs", "2", workspace=workspace)
    assert result.returncode == 2 and "--jobs: not an option of --executor slurm" in result.stderr
    result = run_cli("run", spec, "--partition", "gpu", workspace=workspace)
    assert (
        result.returncode == 2 and "--partition: not an option of --executor local" in result.stderr
    )
    monkeypatch.setenv("PATH", "/nonexistent")
    result = run_cli("run", spec, "--executor", "slurm", workspace=workspace)
    assert result.returncode == 2 and "sbatch is not on PATH" in result.stderr
    assert not (workspace / "kdtui.json").exists()


# ---------------------------------------------------------------------- a real cluster


@pytest.fixture(scope="module")
def slurm_env() -> SlurmCluster:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with slurm_cluster() as cluster, pytest.MonkeyPatch.context() as mp:
        for key, value in cluster.env.items():
            mp.setenv(key, value)  # run_cli's kdtui, and through sbatch its jobs, see it
        mp.setenv("KDTUI_SLURM_POLL_S", "0.5")
        yield cluster


@pytest.fixture
def cluster(slurm_env: SlurmCluster, workspace: Path):
    """The cluster, left without jobs for the next test."""
    yield slurm_env
    slurm_env.cancel_all()


def no_probe(workspace: Path) -> None:
    """The workspace's slurm.json skips the probe job (``probe_timeout_s`` 0): seconds of
    each test that is not about it (the two-stage test and the unshared workspace are)."""
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "slurm.json").write_text(json.dumps({"probe_timeout_s": 0}))


@pytest.mark.slow
def test_two_stage_spec_runs_as_dependent_jobs_and_follows_to_done(cluster, workspace, write_spec):
    teacher = tiny_experiment("teacher")
    teacher["student"] = {"depth": 10, "width": 2, "view": "signal"}
    student = tiny_experiment("student", teachers=[{"experiment": "teacher"}],
                              loss={"ce": 0.3, "kd": {"T": 4, "weight": 0.7}})  # fmt: skip
    spec = write_spec([teacher, student])
    env = dict(os.environ, KDTUI_WORKSPACE=str(workspace), COLUMNS="120", NO_COLOR="1")
    cmd = [sys.executable, "-m", "kdtui", "run", str(spec), *SLURM_RUN]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = Store(workspace)
    try:
        jobs = wait_for(
            lambda: store.index_path.exists()
            and len(runs := _by_name(store.runs())) == 2
            and all(r.get("job_id") for r in runs.values())
            and {n: r["job_id"] for n, r in runs.items()},
            timeout=90, what="both runs submitted",
        )  # fmt: skip
        shown = cluster.run("scontrol", "show", "job", jobs["student"])
        assert f"Dependency=afterok:{jobs['teacher']}" in shown, shown
        out, err = proc.communicate(timeout=150)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    said = " ".join(out.split())  # lines wrap where the workspace's path is long
    assert "probe job" in said and f"as Slurm jobs {jobs['teacher']}, {jobs['student']}" in said
    assert "student" in out and "±" in out  # the results table

    runs = _by_name(store.runs())
    for r in runs.values():
        assert r["status"] == "done" and r["executor"] == "slurm"
        assert r["node"] == cluster.node and r["host"] and r["device"] == "cpu"
        assert [e["epoch"] for e in read_events(workspace / r["run_id"]) if e["type"] == "epoch"] == [1, 2]  # fmt: skip
        assert "done" in (workspace / r["run_id"] / "stdout.log").read_text()
        assert r["slurm_reason"] is None and r["slurm_state"] is None  # Slurm's word is history
    assert runs["student"]["teacher_runs"][0]["run_id"] == runs["teacher"]["run_id"]
    assert runs["student"]["started"] >= runs["teacher"]["ended"]
    assert json.loads((workspace / "slurm-probe.json").read_text())["node"] == cluster.node


@pytest.mark.slow
def test_scancel_crashes_a_run_and_resume_finishes_it(cluster, workspace, write_spec):
    no_probe(workspace)
    spec = write_spec(_slow("victim", epochs=8))
    result = run_cli("run", str(spec), *SLURM_RUN, "--detach", workspace=workspace)
    assert result.returncode == 0, result.stderr
    store = Store(workspace)
    run = wait_for(lambda: (r := store.runs()[0]).get("epoch", 0) >= 2 and r, timeout=90,
                   what="epoch 2")  # fmt: skip
    # Frozen, the engine cannot end before the cancel reaches it, however few epochs are
    # left (they are what the resume trains); Slurm sends SIGCONT with its SIGTERM.
    os.kill(run["pid"], signal.SIGSTOP)
    cluster.run("scancel", run["job_id"])

    def crashed() -> dict[str, Any] | None:
        (r,) = json.loads(run_cli("ls", "--format", "json", workspace=workspace).stdout)
        return r if r["status"] == "crashed" else None

    listing = wait_for(crashed, timeout=30, what="crashed in kdtui ls")
    assert listing["error"].startswith(f"Slurm job {run['job_id']} CANCELLED on {cluster.node}")

    assert "resuming 1 run" in run_cli("resume", run["run_id"], workspace=workspace).stdout
    assert store.get(run["run_id"])["job_id"] not in (None, run["job_id"])
    wait_for(lambda: store.runs()[0]["status"] == "done", timeout=90, what="resumed run done")
    epochs = [e["epoch"] for e in read_events(workspace / run["run_id"]) if e["type"] == "epoch"]
    assert epochs == list(range(1, 9))
    log = (workspace / run["run_id"] / "stdout.log").read_text()
    assert "stopped by Slurm" in log and "resumed after epoch" in log


@pytest.mark.slow
def test_stop_cancels_a_running_and_a_pending_job(cluster, workspace, write_spec):
    no_probe(workspace)
    student = _slow("student", epochs=2, teachers=[{"experiment": "teacher"}], loss={"kd": {"T": 4}})  # fmt: skip
    spec = write_spec([_slow("teacher", epochs=300), student])
    assert run_cli("run", str(spec), *SLURM_RUN, "--detach", workspace=workspace).returncode == 0

    def waiting() -> dict[str, dict[str, Any]] | None:
        runs = _by_name(json.loads(run_cli("ls", "--format", "json", workspace=workspace).stdout))
        ok = runs["teacher"].get("epoch", 0) >= 1 and runs["student"].get("slurm_reason")
        return runs if ok else None

    runs = wait_for(waiting, timeout=90, what="teacher training, student pending")
    assert runs["student"]["status"] == "queued" and runs["student"]["slurm_reason"] == "Dependency"
    assert "cancelling 2 runs" in run_cli("stop", "--all", workspace=workspace).stdout
    store = Store(workspace)
    wait_for(lambda: {r["status"] for r in store.runs()} == {"cancelled"}, timeout=30,
             what="both cancelled")  # fmt: skip
    runs = _by_name(store.runs())
    assert runs["teacher"]["error"] == "cancelled by the user"
    assert runs["student"]["error"] == "cancelled before it started"
    wait_for(lambda: not cluster.active_jobs(), timeout=20, what="no job left in Slurm")


@pytest.mark.slow
def test_a_failed_teacher_fails_its_student_and_no_job_is_left(cluster, workspace, write_spec, tmp_path):  # fmt: skip
    no_probe(workspace)
    teacher = tiny_experiment("teacher", optim={"lr": 1e30})  # diverges in its first epoch
    student = tiny_experiment("student", teachers=[{"experiment": "teacher"}],
                              loss={"kd": {"T": 4}})  # fmt: skip
    result = run_cli("run", str(write_spec([teacher, student])), *SLURM_RUN, workspace=workspace)
    assert result.returncode == 1, result.stdout + result.stderr
    runs = _by_name(Store(workspace).runs())
    assert runs["teacher"]["status"] == "failed" and "diverged" in runs["teacher"]["error"]
    assert runs["student"]["status"] == "failed" and "teacher" in runs["student"]["error"]
    wait_for(lambda: not cluster.active_jobs(), timeout=20, what="the student's job gone")


@pytest.mark.slow
def test_a_workspace_the_jobs_cannot_see_is_refused(cluster, tmp_path, write_spec):
    """The CLI sees a private tmpfs over the workspace folder (a mount namespace), the
    job sees the folder underneath: a workspace that is not shared."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-m", "true"]).returncode != 0:
        pytest.skip("needs unshare -m (mount namespaces) to hide the workspace from the jobs")
    ws = tmp_path / "private"
    ws.mkdir()
    spec = write_spec(tiny_experiment("x"))
    kdtui = f"{sys.executable} -m kdtui run {spec} {' '.join(SLURM_RUN)} --workspace {ws}"
    result = subprocess.run(
        [unshare, "-m", "--propagation", "private", "sh", "-c", f"mount -t tmpfs none {ws} && {kdtui}"],
        env=dict(os.environ, COLUMNS="200", NO_COLOR="1"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert "but the file does not appear here" in said
    assert "must be on a filesystem the compute nodes share" in said
    assert not (ws / "kdtui.json").exists()


def test_more_seeds_are_launched_like_the_run_they_extend(tmp_path, fake_slurm, monkeypatch):
    store = Store(tmp_path / "ws")
    (run_id,) = _slurm_runs(store, tiny_experiment("s", seeds=[0]))
    started: list[str] = []
    monkeypatch.setattr(SlurmExecutor, "start", lambda self, st, ids: started.extend(ids))
    new = more_seeds(store, run_id, [1, 2])
    assert started == new and len(new) == 2
    original = store.read_spec(run_id)
    for spec in map(store.read_spec, new):
        assert (spec["executor"], spec["sbatch"]) == ("slurm", original["sbatch"])
        assert spec["group_key"] == original["group_key"]
    assert [store.get(i)["executor"] for i in new] == ["slurm", "slurm"]
    with pytest.raises(ValueError, match=r"already has seed\(s\) 1 "):
        more_seeds(store, run_id, [1, 3])
    assert len(store.runs()) == 3  # nothing queued
