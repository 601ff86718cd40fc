"""kdtui benchmarks: every figure measured side by side in one process run.

    python bench/run.py [--quick] [--json] [--verbose] [--only tui]

Figures (ratios are "baseline ÷ kdtui" where bigger is better, except the overhead ratio):

- engine_overhead_ratio  N epochs through the kdtui engine (events, checkpoints, eval,
                         metrics included) ÷ the same N epochs in a minimal hand-written loop
                         (same model, data, batch size, optimiser, evaluation); goal ≤ 1.05
- teacher_cache_speedup  training time without ÷ with the frozen-teacher cache, WRN28-3 GAF
                         teacher → WRN16-1 signal student, KD; goal ≥ 3
- view_cache_speedup     preparing a GAF dataset the first time ÷ the second (disk cache); ≥ 20
- store_ls_5k_s          `kdtui ls` on a generated workspace of 5,000 runs × 200 epochs; < 0.5
- enqueue_2k_s           `kdtui run --detach` of a spec with 2,000 seeds (no runner); ≤ 10
- lock_hold_max_s        the longest single hold of the index lock during that launch; ≤ 0.5
- stop_2k_s              `kdtui stop --all` of those 2,000 queued runs; ≤ 10
- store_ls_10k_s         `kdtui ls` on a generated workspace of 10,000 runs; ≤ 0.5
- store_table_10k_s      `kdtui table` on it; ≤ 0.5
- tui_first_frame_s      start of `kdtui` (80×24 pseudo-terminal) to its runs screen drawn, on a
                         workspace of 5,000 runs; ≤ 1 (bench/tui_startup.py: all the app's)
- tui_compose_open_s     key 2 to the composer's form drawn, the first time; ≤ 0.5
- tui_switch_s           keys 1-4 to the new screen's content drawn (median); ≤ 0.3
- ..._loaded             the same next to two engines training runs of that workspace
- import_cli_s           `python -c "import kdtui.cli"`; < 0.3
- gpu_samples_per_s      student training throughput on CUDA (only when a GPU is present)
- loaded_epoch_ratio     epoch of a WRN16-1 signal student next to two busy processes ÷
                         the same epoch alone (engine at their priority); goal ≤ 2.5
- engine_start_s         engine process start → first training batch, caches warm; ≤ 3
                         (engine_start_cpu_s: the CPU seconds the engine spent meanwhile)
- kd_over_plain_epoch_ratio  KD epoch with cached teacher outputs ÷ plain epoch; ≤ 1.1
                         (kd_over_plain_epoch_cpu_ratio: the same in CPU seconds; ≤ 1.1)
- analysis_save_overhead  a run's time ÷ its time less writing its analysis data
                         (RUN/analysis/*.npz at every new best epoch and the last); ≤ 1.03

Timings are medians over repeats, with the compared variants interleaved (A B A B ...), so
that a machine slowing down mid-run does not favour either side. `--quick` shrinks sizes
for the test suite: its figures show the machinery works, not the speed (one timed repeat,
no warm-up, a few dozen runs per workspace, a batch of short windows per engine run, one
torch thread in this process: ``quick_threads`` says why). What each part of the bench
took is reported too (``bench_seconds`` in the JSON, the last line of the text; each part
on stderr as it ends with ``--verbose``, with its CPU seconds), so that a slow quick run
shows where its time went.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fake_workspace import make_workspace  # noqa: E402
from load import cpu_hogs  # noqa: E402


def median_time(fn: Callable[[], Any], repeats: int, warm: bool = False) -> float:
    """The median seconds of ``repeats`` calls, after one untimed call if ``warm`` (the file
    cache filled: what a user's second start meets)."""
    if warm:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(
    a: Callable[[], float], b: Callable[[], float], repeats: int
) -> tuple[float, float]:
    """Medians of two measurements taken in turns; each callable returns its own seconds."""
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(a())
        tb.append(b())
    return statistics.median(ta), statistics.median(tb)


def kdtui_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kdtui", *args]


# ---------------------------------------------------------------------- startup and scale


def bench_import_cli(repeats: int, warm: bool = True) -> float:
    cmd = [sys.executable, "-c", "import kdtui.cli"]
    return median_time(lambda: subprocess.run(cmd, check=True), repeats, warm)


def bench_store_ls(workspace: Path, repeats: int, warm: bool = True) -> float:
    cmd = kdtui_cmd("ls", "--workspace", str(workspace))
    return median_time(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL),
                       repeats, warm)  # fmt: skip


def bench_app(quick: bool, repeats: int, work: Path) -> dict[str, Any]:
    """The app's first frame, composer opening and screen switches, alone and next to two
    training engines (bench/tui_startup.py, whose docstring says how)."""
    from tui_startup import bench_tui

    return bench_tui(work / "app", runs=30 if quick else 5000, repeats=repeats, quick=quick)


# ---------------------------------------------------------------------- the store at scale


@contextlib.contextmanager
def runner_held(ws: Path) -> Iterator[None]:
    """Hold the workspace's runner lock, so that no queue runner starts: the store figures
    time the store, not training."""
    ws.mkdir(parents=True, exist_ok=True)
    with open(ws / "runner.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class LockProbe:
    """The longest wait for the index lock (``.kdtui.lock``), taken and released again and
    again from a thread while the workload runs: what a training that wants to write its
    epoch would wait, so the longest single hold of the lock, seen from outside."""

    def __init__(self, ws: Path):
        self.path, self.longest = ws / ".kdtui.lock", 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with open(self.path, "a+") as fh:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                fcntl.flock(fh, fcntl.LOCK_EX)
                self.longest = max(self.longest, time.perf_counter() - t0)
                fcntl.flock(fh, fcntl.LOCK_UN)
                time.sleep(0.0005)

    def __enter__(self) -> LockProbe:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bench_store_launch(work: Path, runs: int) -> dict[str, float]:
    """``kdtui run --detach`` of a spec with ``runs`` seeds (validation, folders, index),
    the longest hold of the index lock meanwhile, then ``kdtui stop --all`` of them."""
    ws = work / "launch"
    spec = work / "launch-spec.json"
    experiment = {"name": "many", "data": {"dataset": "synthetic-har"},
                  "student": {"depth": 10, "width": 1, "view": "signal"},
                  "epochs": 1, "seeds": list(range(runs))}  # fmt: skip
    spec.write_text(json.dumps(experiment))
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    with runner_held(ws):
        with LockProbe(ws) as probe:
            t0 = time.perf_counter()
            subprocess.run(kdtui_cmd("run", str(spec), "--detach", "-w", str(ws)), **quiet)
            enqueue = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run(kdtui_cmd("stop", "--all", "-w", str(ws)), **quiet)
        stop = time.perf_counter() - t0
    return {"enqueue_2k_s": enqueue, "stop_2k_s": stop, "lock_hold_max_s": probe.longest}


def bench_store_scale(quick: bool, repeats: int, work: Path) -> dict[str, float]:
    """The store at a study's size: a launch of 2,000 runs and its longest lock hold, their
    stop, then `ls` and `table` on a workspace of 10,000 finished runs whose index has a
    journal of recent changes (as between two folds). ``--quick``: 20 and 60 runs, one
    read each, not warmed."""
    work.mkdir(parents=True, exist_ok=True)
    figures = bench_store_launch(work, 20 if quick else 2000)
    runs = 60 if quick else 10000
    ws = make_workspace(work / "ws10k", runs=runs, epochs=5 if quick else 20, recent=runs // 20)
    reads = repeats if quick else repeats + 2
    figures["store_ls_10k_s"] = bench_store_read(ws, "ls", reads, warm=not quick)
    figures["store_table_10k_s"] = bench_store_read(ws, "table", reads, warm=not quick)
    return figures


def bench_store_read(workspace: Path, command: str, repeats: int, warm: bool = True) -> float:
    """``kdtui ls`` or ``kdtui table`` as a subprocess, with bytecode caching as installed
    (PYTHONDONTWRITEBYTECODE unset): what a user waits for."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmd = kdtui_cmd(command, "--workspace", str(workspace))
    return median_time(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                                              env=env), repeats, warm)  # fmt: skip


# ---------------------------------------------------------------------- views


def bench_view_cache(quick: bool, repeats: int) -> dict[str, float]:
    """Preparing a GAF view the way the engine does (``cached_view`` then ``view_tensor`` on
    the CPU): the first time computes and writes the cache, the second maps the file.
    ``--quick``: 40 windows of 64 steps, 16×16 images."""
    import torch

    from kdtui.engine.data import make_synthetic_har
    from kdtui.engine.trainer import view_tensor
    from kdtui.engine.views import cached_view

    windows = (
        {"n_train": 32, "n_test": 8, "length": 64} if quick else {"n_train": 2100, "n_test": 700}
    )
    arrays = make_synthetic_har(**windows)
    view = {"kind": "gaf", "method": "summation", "image_size": 16 if quick else 64}
    cpu = torch.device("cpu")
    first, second = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:

            def prepare() -> float:
                t0 = time.perf_counter()
                for split, X in (("train", arrays.X_train), ("test", arrays.X_test)):
                    arr = cached_view(X, view, data_key=arrays.key, split=split,
                                      cache_dir=Path(cache), log=lambda _: None)  # fmt: skip
                    view_tensor(arr, cpu)
                return time.perf_counter() - t0

            first.append(prepare())
            second.append(prepare())
    f, s = statistics.median(first), statistics.median(second)
    return {"view_first_s": f, "view_cached_s": s, "view_cache_speedup": f / s}


# ---------------------------------------------------------------------- the engine


def _run_dir(ws: Path, experiment: dict[str, Any]) -> Path:
    from kdtui.launcher import enqueue
    from kdtui.spec import validate_spec
    from kdtui.store import Store

    store = Store(ws)
    (run_id,) = enqueue(store, validate_spec(experiment, base_dir=ws))
    return store.run_dir(run_id)


def _engine_seconds(run_dir: Path) -> float:
    """Wall time of a finished run's training, from its own events (start → end)."""
    from kdtui.store import read_events

    events = read_events(run_dir)
    start = next(e["time"] for e in events if e["type"] == "start")
    end = next(e["time"] for e in events if e["type"] == "end")
    return end - start


def run_engine(run_dir: Path) -> float:
    import contextlib
    import io

    from kdtui.engine.trainer import Engine

    with contextlib.redirect_stdout(io.StringIO()):
        code = Engine(run_dir).main()
    if code != 0:
        raise RuntimeError(f"engine failed: {(run_dir / 'events.jsonl').read_text()[-500:]}")
    return _engine_seconds(run_dir)


def hand_written_loop(experiment: dict[str, Any]) -> float:
    """What a researcher would write by hand: the same data, model, optimiser, schedule and
    per-epoch evaluation, nothing else (no events, no checkpoints, no metrics beyond acc)."""
    import torch
    import torch.nn.functional as F

    from kdtui.engine.data import make_synthetic_har
    from kdtui.engine.models import WideResNet

    d = experiment["data"]
    arrays = make_synthetic_har(**{k: v for k, v in d.items() if k != "dataset"})
    t0 = time.perf_counter()
    torch.manual_seed(0)
    x, y = torch.from_numpy(arrays.X_train.copy()), torch.from_numpy(arrays.y_train)
    xt, yt = torch.from_numpy(arrays.X_test.copy()), torch.from_numpy(arrays.y_test)
    s = experiment["student"]
    model = WideResNet(s["depth"], s["width"], arrays.num_classes, arrays.in_channels, dim=1)
    o = experiment["optim"]
    opt = torch.optim.SGD(model.parameters(), lr=o["lr"], momentum=0.9, weight_decay=1e-4)
    epochs, bs = experiment["epochs"], experiment["batch_size"]
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=1e-4)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), bs):
            idx = perm[i : i + bs]
            loss = F.cross_entropy(model(x[idx]).logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(xt[i : i + 256]).logits for i in range(0, len(xt), 256)])
            (logits.argmax(1) == yt).float().mean().item()
    return time.perf_counter() - t0


#: The synthetic-har windows of the in-process engine figures in ``--quick``: one batch of
#: short windows, enough to run every step of an epoch.
QUICK_DATA = {"n_train": 64, "n_test": 16, "length": 64}


def bench_engine_overhead(quick: bool, repeats: int, work: Path) -> dict[str, float]:
    """The engine's run ÷ a hand-written loop, both in this process (``--quick``: one
    epoch of QUICK_DATA)."""
    windows = QUICK_DATA if quick else {"n_train": 1050, "n_test": 350, "length": 500}
    experiment = {
        "name": "overhead", "data": {"dataset": "synthetic-har", **windows},
        "student": {"depth": 16, "width": 1, "view": "signal"},
        "optim": {"lr": 0.05}, "schedule": {"kind": "cosine", "min_lr": 1e-4},
        "epochs": 1 if quick else 5, "batch_size": 64, "seeds": [0],
    }  # fmt: skip
    counter = iter(range(1000))
    engine_s, hand_s = interleaved(
        lambda: run_engine(_run_dir(work / f"overhead-{next(counter)}", experiment)),
        lambda: hand_written_loop(experiment),
        repeats,
    )
    return {"engine_s": engine_s, "hand_loop_s": hand_s, "engine_overhead_ratio": engine_s / hand_s}


def bench_teacher_cache(quick: bool, repeats: int, work: Path) -> dict[str, float]:
    """Same KD run with the teacher's outputs cached or recomputed each batch. The teacher
    is a randomly initialised WRN28-3 checkpoint: its accuracy does not matter for timing.
    ``--quick``: a WRN10-1 teacher on 16×16 images, one epoch of QUICK_DATA."""
    import torch

    from kdtui.engine.data import make_synthetic_har
    from kdtui.engine.models import WideResNet

    windows = QUICK_DATA if quick else {"n_train": 512, "n_test": 200, "length": 500}
    data = {"dataset": "synthetic-har", **windows}
    arrays = make_synthetic_har(**{k: v for k, v in data.items() if k != "dataset"})
    depth, width, size = (10, 1, 16) if quick else (28, 3, 32)
    teacher = {"depth": depth, "width": width, "view": {"kind": "gaf", "image_size": size}}
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "teacher.pt"
    model = WideResNet(depth, width, arrays.num_classes, arrays.in_channels, dim=2)
    torch.save({"model": model.state_dict()}, ckpt)

    def experiment(cache: bool) -> dict[str, Any]:
        return {
            "name": f"cache-{cache}", "data": data,
            "student": {"depth": 16, "width": 1, "view": "signal"},
            "teachers": [{"checkpoint": str(ckpt), "model": teacher}],
            "loss": {"ce": 0.3, "kd": {"T": 4, "weight": 0.7}}, "teacher_cache": cache,
            "epochs": 1 if quick else 5, "batch_size": 64, "seeds": [0],
        }  # fmt: skip

    counter = iter(range(1000))
    off, on = interleaved(
        lambda: run_engine(_run_dir(work / f"off-{next(counter)}", experiment(False))),
        lambda: run_engine(_run_dir(work / f"on-{next(counter)}", experiment(True))),
        repeats,
    )
    return {"teacher_uncached_s": off, "teacher_cached_s": on, "teacher_cache_speedup": off / on}


def bench_analysis_overhead(quick: bool, repeats: int, work: Path) -> dict[str, float]:
    """A WRN16-1 signal run, start to end, and the time it spent writing what ``kdtui
    analyze`` reads (the archives are written at each new best epoch, which early in
    training is most epochs: the worst case). The overhead is the run's time ÷ its time
    less the saves, within the same run: two separate runs on a shared machine differ by
    more than the saves cost (measured: ×0.6 to ×2.5 between identical runs at load 10).
    ``--quick``: two epochs of QUICK_DATA (a best epoch, then the last)."""
    from kdtui.engine import inspect

    windows = QUICK_DATA if quick else {"n_train": 1050, "n_test": 350, "length": 500}
    experiment = {
        "name": "analysis", "data": {"dataset": "synthetic-har", **windows},
        "student": {"depth": 16, "width": 1, "view": "signal"},
        "epochs": 2 if quick else 5, "batch_size": 64, "seeds": [0],
    }  # fmt: skip
    save = inspect.Keeper.save
    saves: list[float] = []

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return save(*args, **kwargs)
        finally:
            saves.append(time.perf_counter() - t0)

    ratios, per_save = [], []
    inspect.Keeper.save = timed  # type: ignore[method-assign]
    try:
        for i in range(repeats):
            saves.clear()
            run_dir = _run_dir(work / f"run-{i}", experiment)
            seconds = run_engine(run_dir)
            if not (run_dir / "analysis" / "last.npz").is_file():
                raise RuntimeError("the run kept no analysis data")
            ratios.append(seconds / (seconds - sum(saves)))
            per_save.extend(saves)
    finally:
        inspect.Keeper.save = save  # type: ignore[method-assign]
    return {"analysis_save_overhead": statistics.median(ratios),
            "analysis_save_ms": statistics.median(per_save) * 1000}  # fmt: skip


def bench_gpu(quick: bool, work: Path) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"gpu_samples_per_s": None, "gpu": "no CUDA device: not measured"}
    n_train = 2100 if quick else 21000
    experiment = {
        "name": "gpu", "data": {"dataset": "synthetic-har", "n_train": n_train, "n_test": 700},
        "student": {"depth": 16, "width": 1, "view": "signal"},
        "epochs": 3, "batch_size": 128, "seeds": [0], "device": "cuda",
    }  # fmt: skip
    run_dir = _run_dir(work / "gpu", experiment)
    run_engine(run_dir)
    from kdtui.store import read_events

    epochs = [e for e in read_events(run_dir) if e["type"] == "epoch"][1:]  # skip warm-up
    per_epoch = statistics.median(e["seconds"] for e in epochs)
    return {"gpu_samples_per_s": n_train / per_epoch, "gpu": torch.cuda.get_device_name()}


# ---------------------------------------------------------------------- sharing the CPU


def _signal_student(name: str, quick: bool, epochs: int, **over: Any) -> dict[str, Any]:
    """A WRN16-1 student on the raw signal of synthetic-har windows (500 steps), one seed."""
    data = {"dataset": "synthetic-har", "n_train": 256 if quick else 1050,
            "n_test": 64 if quick else 350, "length": 128 if quick else 500}  # fmt: skip
    return {"name": name, "data": data, "student": {"depth": 16, "width": 1, "view": "signal"},
            "schedule": {"kind": "constant"}, "epochs": epochs, "batch_size": 64,
            "seeds": [0]} | over  # fmt: skip


def engine_process(
    run_dir: Path, how: tuple[str, ...] = ("-m", "kdtui.engine"), stdout: int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """``python -m kdtui.engine RUN_DIR`` (or ``python *how RUN_DIR``) started as the queue
    runner starts it: its own session, no GPU, one CPU run at a time; bytecode cached as
    installed."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="", KDTUI_PARALLEL="1")
    for name in ("KDTUI_THREADS", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return subprocess.Popen([sys.executable, *how, str(run_dir)], env=env,
                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def _epochs(run_dir: Path) -> list[dict[str, Any]]:
    from kdtui.store import read_events

    return [e for e in read_events(run_dir) if e["type"] == "epoch"]


def run_engine_process(run_dir: Path) -> float:
    """Train ``run_dir`` in an engine process; the median epoch time after the first."""
    proc = engine_process(run_dir)
    if proc.wait() != 0:
        raise RuntimeError(f"engine failed: {(run_dir / 'stdout.log').read_text()[-500:]}")
    return statistics.median(e["seconds"] for e in _epochs(run_dir)[1:])


def _at_nice(ws: Path, nice: int = 0, **settings: Any) -> Path:
    """A workspace whose engines run at ``nice`` (and the other ``settings``: runner.json)."""
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "runner.json").write_text(json.dumps({"nice": nice, **settings}))
    return ws


def bench_loaded_epoch(quick: bool, repeats: int, work: Path) -> dict[str, float]:
    """Epoch time of a WRN16-1 signal student next to two busy processes ÷ the same epoch
    alone, each engine started as the runner starts it. The engine runs at the busy
    processes' priority here (``nice`` 0 in the workspace's runner.json), so the ratio
    measures how it shares the cores — its threads and how they wait — and not its lower
    priority, which by design yields to busy work (``loaded_epoch_ratio_niced``: the same
    at the default nice, for information; not in ``--quick``: a niced engine beside busy
    loops starves by design, tens of seconds of the test suite to show it). ``--quick``
    times one epoch after the first instead of the median of two."""

    def once(hogs: int, nice: int) -> float:
        ws = _at_nice(work / f"loaded-nice{nice}", nice)
        run_dir = _run_dir(ws, _signal_student("loaded", quick, epochs=2 if quick else 3))
        with cpu_hogs(hogs):
            return run_engine_process(run_dir)

    alone, loaded = interleaved(lambda: once(0, 0), lambda: once(2, 0), repeats)
    figures = {"epoch_alone_s": alone, "epoch_loaded_s": loaded,
               "loaded_epoch_ratio": loaded / alone}  # fmt: skip
    if not quick:
        figures["loaded_epoch_ratio_niced"] = once(2, 10) / alone
    return figures


def _gaf_teacher(work: Path, quick: bool) -> dict[str, Any]:
    """A randomly initialised WRN16-1 GAF teacher checkpoint (its accuracy does not matter
    for timing), as a teacher entry of a spec."""
    import torch

    from kdtui.engine.models import WideResNet

    size = 32 if quick else 64
    ckpt = work / "gaf-teacher.pt"
    if not ckpt.exists():
        work.mkdir(parents=True, exist_ok=True)
        torch.save({"model": WideResNet(16, 1, 7, 3, dim=2).state_dict()}, ckpt)
    model = {"depth": 16, "width": 1, "view": {"kind": "gaf", "image_size": size}}
    return {"checkpoint": str(ckpt), "model": model}


def _npz_windows(work: Path, quick: bool) -> dict[str, Any]:
    """The synthetic-har windows saved as a user's ``.npz`` (the lab's own data comes so),
    as the data entry of a spec."""
    import numpy as np

    from kdtui.engine.data import make_synthetic_har

    path = work / "windows.npz"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        size = {"n_train": 256, "n_test": 64, "length": 128} if quick else {"n_train": 1050}
        a = make_synthetic_har(**size)
        np.savez(path, X_train=a.X_train, y_train=a.y_train, X_test=a.X_test, y_test=a.y_test)
    return {"dataset": "npz", "path": str(path)}


#: What ``python -m kdtui.engine RUN_DIR`` runs (kdtui/engine/__main__.py: the engine's share
#: of the machine chosen before torch loads, then the trainer's main), stopped as the first
#: training batch begins: prints the wall clock and the CPU seconds the process has used.
_TO_FIRST_BATCH = """
import json, os, sys, time
from pathlib import Path
from kdtui.threads import share_machine
sharing = share_machine(Path(sys.argv[1]))
from kdtui.engine import trainer
def first_batch(*_):
    print(json.dumps({"time": time.time(), "cpu": time.process_time()}), flush=True)
    os._exit(0)
trainer.Engine.train_step = first_batch
sys.exit(trainer.main(sys.argv[1:], sharing=sharing))
"""


@contextlib.contextmanager
def set_up_here(ws: Path, *experiments: dict[str, Any]) -> Iterator[list[tuple[Any, Any]]]:
    """A run of each experiment in ``ws``, set up in this process as its engine sets it up
    (data, views, teachers and their cached outputs, student), its log silenced: pairs of
    (``Engine``, ``Training``) whose epochs ``Engine.run_epoch`` trains; their heartbeats
    stop at the end, and this process's torch threads are as they were."""
    import io

    import torch

    from kdtui.engine.trainer import Engine, Heartbeat

    runs, heartbeats, threads = [], [], torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for experiment in experiments:
                engine = Engine(_run_dir(ws, experiment))
                heartbeats.append(Heartbeat(engine.run_dir / "heartbeat"))
                runs.append((engine, engine.set_up(heartbeats[-1])))
            yield runs
    finally:
        torch.set_num_threads(threads)
        for heartbeat in heartbeats:
            heartbeat.stop()


def engine_to_first_batch(run_dir: Path) -> tuple[float, float, str]:
    """Wall seconds from starting an engine process on ``run_dir`` to its first training
    batch, the CPU seconds it used meanwhile (what a loaded machine changes least), and its
    log."""
    t0 = time.time()
    proc = engine_process(run_dir, ("-c", _TO_FIRST_BATCH), stdout=subprocess.PIPE)
    out = proc.communicate()[0].decode()
    if proc.returncode != 0:
        raise RuntimeError(f"engine failed: {out[-500:]}")
    *log, last = out.strip().splitlines()
    first = json.loads(last)
    return first["time"] - t0, first["cpu"], "\n".join(log)


def bench_engine_start(quick: bool, repeats: int, work: Path) -> dict[str, float]:
    """Seconds from starting an engine process to its first training batch, for a KD
    student on a user's ``.npz`` windows whose GAF teacher view and teacher outputs are
    cached already (a first start of the same configuration filled the caches): imports,
    data, teacher, caches, model. The engine runs as ``python -m kdtui.engine`` does and is
    stopped there (``_TO_FIRST_BATCH``), at the priority of the rest of the machine (nice
    0): a niced engine waits for busy work. On the CPU, where the caches are filled too
    (their keys hold the precision, which a GPU would change)."""
    ws = _at_nice(work / "start")
    experiment = _signal_student("start", quick, epochs=1, teachers=[_gaf_teacher(work, quick)],
                                 loss={"ce": 0.3, "kd": {"T": 4, "weight": 0.7}},
                                 data=_npz_windows(work, quick), device="cpu")  # fmt: skip
    with set_up_here(ws, experiment):  # fills the view and teacher caches
        pass
    starts = [engine_to_first_batch(_run_dir(ws, experiment)) for _ in range(repeats)]
    if missed := next((log for *_, log in starts if "computed" in log), None):
        raise RuntimeError(f"a cache was computed again, not loaded:\n{missed}")
    return {"engine_start_s": statistics.median(wall for wall, *_ in starts),
            "engine_start_cpu_s": statistics.median(cpu for _, cpu, _ in starts)}  # fmt: skip


def bench_kd_over_plain(quick: bool, repeats: int, work: Path) -> dict[str, float]:
    """An epoch of a KD student with its teacher's outputs cached ÷ the same student's
    plain epoch (CE only): what distillation costs once the teacher has run. Both runs are
    set up in this process and train on one thread, their epochs (train, evaluate,
    checkpoint, record, as the engine runs them) taken side by side after a first one each,
    in turns that neither side always leads (KD plain, plain KD, ...), so that other work on
    the machine weighs on both alike: the ratios are medians over those pairs of epochs, of
    the wall and of the CPU seconds (what a loaded machine changes least). On the CPU."""
    import torch

    ws = work / "kd"
    teacher = _gaf_teacher(work, quick)
    epochs = 1 + (2 if quick else 2 * repeats + 1)
    kd = _signal_student("kd", quick, epochs=epochs, teachers=[teacher], device="cpu",
                         loss={"ce": 0.3, "kd": {"T": 4, "weight": 0.7}})  # fmt: skip
    plain = _signal_student("plain", quick, epochs=epochs, device="cpu")
    seconds: list[list[tuple[float, float]]] = [[], []]
    with set_up_here(ws, kd, plain) as runs:
        if not runs[0][1].cached:
            raise RuntimeError("the KD run did not cache its teacher's outputs")
        torch.set_num_threads(1)
        for epoch in range(1, epochs + 1):
            for side in (0, 1) if epoch % 2 else (1, 0):
                engine, training = runs[side]
                w0, c0 = time.perf_counter(), time.process_time()
                engine.run_epoch(training, epoch)
                if epoch > 1:  # the first epochs warm up
                    seconds[side].append((time.perf_counter() - w0, time.process_time() - c0))
    pairs = list(zip(*seconds, strict=True))  # (KD, plain) epochs taken side by side
    figures = {}
    for i, unit in enumerate(("s", "cpu_s")):  # wall, then CPU seconds
        figures[f"epoch_kd_cached_{unit}"] = statistics.median(k[i] for k, _ in pairs)
        figures[f"epoch_plain_{unit}"] = statistics.median(p[i] for _, p in pairs)
    for i, name in enumerate(("kd_over_plain_epoch_ratio", "kd_over_plain_epoch_cpu_ratio")):
        figures[name] = statistics.median(k[i] / p[i] for k, p in pairs)
    return figures


# ---------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }  # fmt: skip


GOALS = {
    "engine_overhead_ratio": ("<=", 1.05), "teacher_cache_speedup": (">=", 3),
    "view_cache_speedup": (">=", 20), "store_ls_5k_s": ("<", 0.5),
    "tui_first_frame_s": ("<=", 1.0), "import_cli_s": ("<", 0.3),
    "tui_compose_open_s": ("<=", 0.5), "tui_switch_s": ("<=", 0.3),
    "tui_first_frame_s_loaded": ("<=", 1.0), "tui_compose_open_s_loaded": ("<=", 0.5),
    "tui_switch_s_loaded": ("<=", 0.3),
    "loaded_epoch_ratio": ("<=", 2.5), "engine_start_s": ("<=", 3.0),
    "kd_over_plain_epoch_ratio": ("<=", 1.1), "kd_over_plain_epoch_cpu_ratio": ("<=", 1.1),
    "analysis_save_overhead": ("<=", 1.03),
    "enqueue_2k_s": ("<=", 10.0), "lock_hold_max_s": ("<=", 0.5), "stop_2k_s": ("<=", 10.0),
    "store_ls_10k_s": ("<=", 0.5), "store_table_10k_s": ("<=", 0.5),
}  # fmt: skip


#: --quick's thread settings for this process (its in-process engine figures), set before
#: torch loads: the OpenMP and MKL runtimes read them once, when they load.
QUICK_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
                 "KMP_BLOCKTIME": "0"}  # fmt: skip


def quick_threads() -> None:
    """One torch thread that sleeps when idle, for this process in ``--quick``. The test
    suite runs the quick bench on a shared box of two cores, where the default threads
    (one per core, spinning while they wait) raced the suite's other processes: the same
    quick figure took 2.5 s in one run and 17-20 s in another. The quick figures only show
    that each code path runs, so one thread costs them nothing. The full bench keeps
    torch's defaults: it is meant for a calm machine, where a spinning thread takes no one's
    core, its in-process figures compare two variants under the same threads, and the
    figures in BENCHMARKS.md were measured so. Engine processes started by the bench choose
    their own threads either way (kdtui.threads overrides these variables)."""
    if "torch" in sys.modules:
        raise RuntimeError("torch loaded before the bench chose its threads")
    os.environ.update(QUICK_THREADS)


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that ended (the bench's subprocesses
    and engines): unlike wall time, what a part costs whatever else the machine runs."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> int:
    parser = argparse.ArgumentParser(description="kdtui benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, for the test suite")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", choices=["tui"], help="only the app's figures (2-3 minutes)")
    parser.add_argument("--verbose", action="store_true",
                        help="each part's seconds on stderr as it ends")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        quick_threads()
    q, repeats = args.quick, 1 if args.quick else 3
    figures: dict[str, Any] = {"quick": q}
    seconds: dict[str, float] = {}  # what each part of the bench took, start to end

    def part(name: str, measure: Callable[[], dict[str, Any]]) -> None:
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        figures.update(measure())
        seconds[name] = round(time.perf_counter() - t0, 2)
        if args.verbose:
            cpu = cpu_seconds() - cpu0
            print(f"{name:<16} {seconds[name]:7.2f} s, CPU {cpu:6.2f} s", file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="kdtui-bench-"))
    try:
        if args.only == "tui":
            part("app", lambda: bench_app(q, repeats, work))
        else:
            part("import_cli", lambda: {"import_cli_s": bench_import_cli(1 if q else 7, not q)})
            part("store_ls", lambda: {"store_ls_5k_s": bench_store_ls(
                make_workspace(work / "ws", runs=30 if q else 5000, epochs=5 if q else 200),
                repeats if q else repeats + 2, warm=not q)})  # fmt: skip
            part("app", lambda: bench_app(q, repeats, work))
            part("store_scale", lambda: bench_store_scale(q, repeats, work / "scale"))
            part("view_cache", lambda: bench_view_cache(q, repeats))
            part("engine_overhead", lambda: bench_engine_overhead(q, repeats, work / "engine"))
            part("teacher_cache", lambda: bench_teacher_cache(q, repeats, work / "teacher"))
            part("gpu", lambda: bench_gpu(q, work / "gpu"))
            part("loaded_epoch", lambda: bench_loaded_epoch(q, repeats, work / "loaded"))
            part("engine_start", lambda: bench_engine_start(q, repeats, work / "start"))
            part("kd_over_plain", lambda: bench_kd_over_plain(q, repeats, work / "kd"))
            part("analysis", lambda: bench_analysis_overhead(q, repeats, work / "analysis"))
        figures["machine"] = machine()
        figures["bench_seconds"] = seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report(figures, args.json)


def report(figures: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(figures, indent=1))
        return 0
    print(
        f"kdtui bench {'(quick: sizes too small for real figures) ' if figures['quick'] else ''}on {figures['machine']}"
    )  # noqa: E501
    for name, value in figures.items():
        if name in ("machine", "quick", "bench_seconds"):
            continue
        goal = GOALS.get(name)
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"  {name:<24} {text:>12}   {'goal ' + ' '.join(map(str, goal)) if goal else ''}")
    took = ", ".join(f"{name} {s:.1f}" for name, s in figures["bench_seconds"].items())
    print(f"  seconds per part: {took}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
