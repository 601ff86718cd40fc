"""Run lifecycle under abuse: kills, hang-ups, resume, cancel, a corrupted index."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import run_cli, tiny_experiment, wait_for

from kdtui.store import Store, read_events

# one test process runs them all (pytest-xdist): the module's trained runs are made once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("lifecycle")]


def _epochs(run_dir: Path) -> list[int]:
    return [e["epoch"] for e in read_events(run_dir) if e.get("type") == "epoch"]


def _slow_experiment(name: str, epochs: int = 6, **over) -> dict:
    """Epochs long enough (~0.3 s) to kill a run in the middle of one."""
    exp = tiny_experiment(name, epochs=epochs, **over)
    exp["data"].update(n_train=192, length=128)
    return exp


def _one_run(store: Store) -> dict:
    (run,) = store.runs()
    return run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A workspace where ``kdtui run`` trained two seeds side by side and its runner has
    left, and when that began. Tests take a copy (``done_copy``): each its own."""
    from kdtui.executors.local import runner_alive

    root = tmp_path_factory.mktemp("trained")
    spec = root / "spec.json"
    spec.write_text(json.dumps(tiny_experiment("keep", seeds=[0, 1])))
    began = time.time()
    result = run_cli("run", str(spec), "--jobs", "2", workspace=root / "ws", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: not runner_alive(Store(root / "ws")), timeout=30, what="the runner to exit")
    return root / "ws", began


@pytest.fixture
def done_copy(trained: tuple[Path, float], tmp_path: Path) -> Path:
    """A copy of ``trained``'s workspace, for a test to break without touching another's."""
    ws = tmp_path / "ws"
    shutil.copytree(trained[0], ws)
    return ws


def test_sigkill_mid_epoch_is_crashed_then_resume_finishes_each_epoch_once(
    write_spec, cleanup_processes
):
    ws = cleanup_processes
    spec = write_spec(_slow_experiment("victim"))
    assert run_cli("run", str(spec), "--detach", workspace=ws).returncode == 0
    store = Store(ws)
    run = wait_for(
        lambda: (r := store.runs()) and r[0].get("epoch", 0) >= 2 and r[0], what="epoch 2"
    )
    assert run["status"] == "running"
    os.kill(run["pid"], signal.SIGKILL)

    def crashed():
        out = run_cli("ls", "--format", "json", workspace=ws)
        return json.loads(out.stdout)[0]["status"] == "crashed" and out

    listing = wait_for(crashed, timeout=20, what="crashed in kdtui ls")
    assert json.loads(listing.stdout)[0]["error"]

    assert "resuming 1 run" in run_cli("resume", "--all-crashed", workspace=ws).stdout
    wait_for(lambda: _one_run(store)["status"] == "done", timeout=120, what="resumed run done")
    run_dir = ws / run["run_id"]
    assert _epochs(run_dir) == [1, 2, 3, 4, 5, 6]
    assert "resumed after epoch" in (run_dir / "stdout.log").read_text()


def test_a_run_resumed_before_the_runner_reaped_its_killed_engine_trains_again(
    tmp_path, monkeypatch
):
    """On a loaded machine ``kdtui ls`` may find an engine dead before the runner looks,
    and the user resume the run: the runner's late reap of the killed engine must leave the
    new attempt alone (it called the queued run crashed again, and nothing trained it)."""
    from kdtui import launcher, procs, runner
    from kdtui.executors import local, reconcile
    from kdtui.spec import validate_spec

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(local, "ensure_runner", lambda store: False)  # this one is alive
    store = Store(tmp_path / "ws")
    (run_id,) = launcher.enqueue(store, validate_spec(tiny_experiment("r")))
    engine = subprocess.Popen(["sleep", "60"], start_new_session=True)  # stands in for one
    pass_ = runner.Runner(store)
    pass_.children[run_id] = runner.Child(engine, "cpu")
    started = {"pid": engine.pid, "pid_start": procs.start_time(engine.pid)}
    store.update(run_id, {"status": "running", "slot": "cpu", "host": pass_.host, **started})
    engine.kill()
    engine.wait()
    reconcile(store)  # kdtui ls, before the runner's next look
    assert store.get(run_id)["status"] == "crashed"
    assert launcher.requeue(store, [run_id]) == [run_id]  # kdtui resume
    spawned: list[str] = []
    monkeypatch.setattr(pass_, "spawn", lambda run, slot, cpu_slots: spawned.append(run["run_id"]))
    assert pass_.tick() and spawned == [run_id]
    assert store.get(run_id)["status"] == "queued" and list(pass_.children) == []


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    """Kill the engine mid-run, resume it, compare every epoch with a run never killed."""
    from kdtui.launcher import enqueue
    from kdtui.spec import validate_spec

    def make(ws: Path) -> Path:
        store = Store(ws)
        (run_id,) = enqueue(store, validate_spec(_slow_experiment("same", epochs=5)))
        return store.run_dir(run_id)

    def engine(run_dir: Path) -> subprocess.Popen:
        env = dict(os.environ, KDTUI_THREADS="1", CUDA_VISIBLE_DEVICES="")
        return subprocess.Popen([sys.executable, "-m", "kdtui.engine", str(run_dir)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip

    whole, broken = make(tmp_path / "a"), make(tmp_path / "b")
    uninterrupted, proc = engine(whole), engine(broken)  # side by side: one thread each
    wait_for(lambda: len(_epochs(broken)) >= 2, timeout=120, what="epoch 2")
    proc.kill()
    proc.wait()
    assert not any(e.get("type") == "end" for e in read_events(broken)), "finished before the kill"
    assert engine(broken).wait(120) == 0
    assert uninterrupted.wait(120) == 0

    def per_epoch(run_dir: Path) -> list[tuple]:
        return [(e["epoch"], e["acc"], e["nll"], e["train_loss"])
                for e in read_events(run_dir) if e.get("type") == "epoch"]  # fmt: skip

    a, b = per_epoch(whole), per_epoch(broken)
    assert [e[0] for e in b] == [1, 2, 3, 4, 5]
    for ea, eb in zip(a, b, strict=True):
        assert ea == pytest.approx(eb, rel=1e-5, abs=1e-6)


def test_detached_runs_survive_a_hangup_of_the_launching_shell(write_spec, cleanup_processes):
    ws = cleanup_processes
    spec = write_spec(_slow_experiment("survivor", epochs=4, seeds=[0, 1]))
    env = dict(os.environ, KDTUI_WORKSPACE=str(ws))
    cmd = f"{sys.executable} -m kdtui run {spec} --detach --jobs 2; sleep 60"
    shell = subprocess.Popen(["bash", "-c", cmd], start_new_session=True, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    store = Store(ws)
    wait_for(lambda: store.index_path.exists() and any(r["status"] == "running" for r in store.runs()),
             timeout=60, what="a running run")  # fmt: skip
    os.killpg(shell.pid, signal.SIGHUP)  # the SSH connection drops: the whole group gets SIGHUP
    shell.wait(10)
    wait_for(
        lambda: all(r["status"] == "done" for r in store.runs()), timeout=180, what="runs done"
    )


def test_stop_cancels_a_running_run_with_an_end_event(write_spec, cleanup_processes):
    ws = cleanup_processes
    spec = write_spec(_slow_experiment("stopme", epochs=50))
    run_cli("run", str(spec), "--detach", workspace=ws)
    store = Store(ws)
    run = wait_for(
        lambda: (r := store.runs()) and r[0].get("epoch", 0) >= 1 and r[0], what="epoch 1"
    )
    assert "cancelling 1 run" in run_cli("stop", run["run_id"], workspace=ws).stdout
    wait_for(lambda: _one_run(store)["status"] == "cancelled", timeout=30, what="cancelled")
    assert read_events(ws / run["run_id"])[-1]["status"] == "cancelled"


def test_stop_in_the_engines_first_seconds_ends_cancelled(write_spec, cleanup_processes):
    """Stopped while it still imports torch (no SIGTERM handler yet), a run was called
    crashed, and ``resume --all-crashed`` trained again what the user had stopped."""
    ws = cleanup_processes
    run_cli("run", str(write_spec(_slow_experiment("early", epochs=50))), "--detach", workspace=ws)
    store = Store(ws)
    run = wait_for(lambda: (r := store.runs()) and r[0].get("pid") and r[0], what="an engine")
    assert "cancelling 1 run" in run_cli("stop", run["run_id"], workspace=ws).stdout
    wait_for(lambda: _one_run(store)["status"] != "running", timeout=60, what="the end")
    assert _one_run(store)["status"] == "cancelled", _one_run(store)
    assert "nothing to resume" in run_cli("resume", "--all-crashed", workspace=ws).stdout


def test_truncated_index_is_rebuilt_by_the_next_ls(done_copy):
    ws = done_copy
    index = ws / "kdtui.json"
    raw = index.read_bytes()
    index.write_bytes(raw[: len(raw) // 2])
    result = run_cli("ls", "--format", "json", workspace=ws)
    runs = json.loads(result.stdout)
    assert {r["status"] for r in runs} == {"done"} and len(runs) == 2
    assert "rebuilt 2 runs" in result.stderr
    assert "rebuilt 2 runs" in run_cli("doctor", workspace=ws).stdout


def test_a_queue_whose_runner_was_killed_is_picked_up_by_the_next_ls(cleanup_processes):
    ws = cleanup_processes
    from kdtui import launcher
    from kdtui.executors.local import runner_alive
    from kdtui.spec import validate_spec

    store = Store(ws)
    ids = launcher.enqueue(store, validate_spec(tiny_experiment("stranded", seeds=[0, 1])))
    launcher.stop_runs(store, [ids[1]])  # cancelled: waits for nothing
    assert not runner_alive(store)  # as after a reboot: queued, no runner
    assert "restarted" not in run_cli("ls", workspace=ws).stderr  # just queued: its launcher's
    store.update(ids[0], {"created": time.time() - 60})
    result = run_cli("ls", workspace=ws)
    assert "restarted the queue runner: 1 run waited for it" in result.stderr
    wait_for(lambda: store.get(ids[0])["status"] == "done", timeout=120, what="the run done")
    assert "restarted" not in run_cli("ls", workspace=ws).stderr  # nothing waits now


def test_student_of_a_failed_teacher_fails_with_the_reason(write_spec, cleanup_processes, tmp_path):
    ws = cleanup_processes
    # the teacher diverges in its first epoch: a failure no spec check can foresee
    teacher = tiny_experiment("teacher", optim={"lr": 1e30})
    student = tiny_experiment(
        "student", teachers=[{"experiment": "teacher"}], loss={"kd": {"T": 4}}
    )
    result = run_cli("run", str(write_spec([teacher, student])), workspace=ws, timeout=120)
    assert result.returncode == 1
    runs = {r["name"]: r for r in Store(ws).runs()}
    assert runs["teacher"]["status"] == "failed" and "diverged" in runs["teacher"]["error"]
    assert runs["student"]["status"] == "failed"
    assert "teacher 'teacher' seed 0 is failed" in runs["student"]["error"]


def test_corrupt_teacher_checkpoint_fails_with_one_line(write_spec, cleanup_processes, tmp_path):
    ws = cleanup_processes
    ckpt = tmp_path / "teacher.pt"
    # torch.save's zip layout (or validation would refuse the file), with garbage inside
    with zipfile.ZipFile(ckpt, "w") as archive:
        archive.writestr("teacher/data.pkl", b"\x00garbage")
    student = tiny_experiment("student", loss={"kd": {"T": 4}}, teachers=[
        {"checkpoint": str(ckpt), "model": {"depth": 10, "width": 1, "view": "signal"}}])  # fmt: skip
    result = run_cli("run", str(write_spec(student)), workspace=ws, timeout=120)
    assert result.returncode == 1
    (run,) = Store(ws).runs()
    assert run["status"] == "failed" and "corrupt" in run["error"] and "\n" not in run["error"]
    assert "corrupt" in run_cli("ls", workspace=ws).stdout


def test_second_runner_leaves_politely(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    lock = open(ws / "runner.lock", "a+")  # noqa: SIM115
    import fcntl

    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    out = subprocess.run([sys.executable, "-m", "kdtui.runner", str(ws)], capture_output=True,
                         text=True, timeout=30)  # fmt: skip
    assert out.returncode == 0 and "another runner" in out.stdout
    lock.close()


def test_reproducibility_record(trained, done_copy):
    for run in Store(done_copy).runs():
        v = run["versions"]
        assert v["kdtui"] and v["python"] and v["torch"] and "device_name" in v
        assert run["command"][-1].endswith(run["run_id"]) and run["host"]
        assert trained[1] < run["started"] < run["ended"] < time.time()
