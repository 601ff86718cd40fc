"""How an engine shares the machine: its torch threads, its CPU priority, its watchdog.

Decided in the engine process before torch is imported, because the OpenMP and MKL
runtimes read their settings once, when they load. Torch-free and standard-library only,
so the queue runner can use it too (it passes how many engines run side by side).

- Threads: the cores this process may use (its CPU affinity) ÷ the engines the runner runs
  side by side, and never more than the cores that are free right now; one inter-op
  thread; idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``,
  ``KMP_BLOCKTIME=0``), so that threads of several engines do not burn each other's time.
  Oversubscribed spinning threads made a one-epoch probe 20–40× slower on a loaded box.
- Priority: ``nice`` +10 by default, below the app and the shell, so that typing stays
  fast while engines train. An engine started in its own session (as the runner starts it)
  is alone in its scheduler autogroup, where a plain nice changes nothing against other
  sessions: the autogroup's nice is set too.
- Settings: ``threads``, ``nice`` and ``watchdog`` in the experiment spec win over the same
  keys in the workspace's ``runner.json``, which win over ``KDTUI_THREADS`` (Slurm's
  cpus-per-task, tests), ``KDTUI_NICE`` and the defaults.

A niced engine in its own autogroup gets about a tenth of a core's weight against each busy
process of another session: it waits while other work keeps the cores busy, by design.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: How many engines the runner runs side by side on this machine (set by the runner).
PARALLEL_ENV = "KDTUI_PARALLEL"
#: An explicit thread count for the engine (Slurm's cpus-per-task; tests).
THREADS_ENV = "KDTUI_THREADS"
#: A nice increment for every engine without one in its spec or runner.json (a test
#: suite's 0, so that its engines keep pace with it on a loaded machine).
NICE_ENV = "KDTUI_NICE"
#: The workspace's runner settings (jobs, gpus, per_gpu; threads, nice, watchdog).
RUNNER_CONFIG = "runner.json"
DEFAULT_NICE = 10
SETTINGS = ("threads", "nice", "watchdog")

#: What the OpenMP / MKL / OpenBLAS runtimes read when they load.
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Sharing:
    """The engine's share of the machine, and why (for its log)."""

    threads: int
    nice: int
    why: str


def usable_cores() -> int:
    """The cores this process may run on (its affinity: taskset, cgroups, Slurm)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def busy_cores(window_s: float = 0.1) -> float | None:
    """How many of this process's cores other work keeps busy, measured over ``window_s``
    from ``/proc/stat`` (the load average lags by a minute: too slow for a process that
    starts next to two busy ones); None where there is no ``/proc/stat``."""
    try:
        cpus = {f"cpu{i}" for i in os.sched_getaffinity(0)}
    except (AttributeError, OSError):
        cpus = None

    def sample() -> tuple[float, float]:
        busy = total = 0.0
        with open("/proc/stat") as fh:
            for line in fh:
                name, *fields = line.split()
                if not name.startswith("cpu") or name == "cpu" or (cpus and name not in cpus):
                    continue
                ticks = [float(x) for x in fields[:8]]
                idle = ticks[3] + ticks[4]  # idle + iowait
                busy += sum(ticks) - idle
                total += sum(ticks)
        return busy, total

    try:
        b0, t0 = sample()
        time.sleep(window_s)
        b1, t1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    n = len(cpus) if cpus else usable_cores()
    return n * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def read_settings(run_dir: Path) -> dict[str, Any]:
    """``threads``, ``nice`` and ``watchdog`` for the run in ``run_dir``: the workspace's
    ``runner.json`` overlaid with the run's frozen spec (a key set to null counts as
    unset). Unreadable files count as empty: these settings never stop a run."""
    out: dict[str, Any] = {}
    for path, pick in (
        (run_dir.parent / RUNNER_CONFIG, lambda d: d),
        (run_dir / "spec.json", lambda d: d.get("experiment") or {}),
    ):
        try:
            data = pick(json.loads(path.read_text()))
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(data, dict):
            out.update({k: data[k] for k in SETTINGS if data.get(k) is not None})
    return out


def choose(
    settings: Mapping[str, Any],
    env: Mapping[str, str],
    cores: int,
    busy: float | None,
) -> Sharing:
    """Threads and nice from the settings, the environment, the usable ``cores`` and how
    many of them are ``busy`` with other work (None: unknown)."""
    nice = _int(settings.get("nice"), _int(env.get(NICE_ENV), DEFAULT_NICE))
    asked = settings.get("threads") or _int(env.get(THREADS_ENV), 0)
    if asked:
        threads = max(1, min(int(asked), cores))
        return Sharing(threads, nice, f"{threads} asked for ({cores} cores usable)")
    parallel = max(1, _int(env.get(PARALLEL_ENV), 1))
    share = max(1, cores // parallel)
    why = f"{cores} cores ÷ {parallel} run{'s' * (parallel != 1)}"
    if busy is None:
        return Sharing(share, nice, why)
    free = max(1, math.floor(cores - busy + 0.5))
    threads = min(share, free)
    return Sharing(threads, nice, f"{why}, {busy:.1f} busy with other work")


def apply(sharing: Sharing, env: MutableMapping[str, str] = os.environ) -> None:
    """Thread settings into ``env`` for the runtimes that load after this (torch's
    OpenMP and MKL), and this process's priority."""
    for var in _THREAD_VARS:
        env[var] = str(sharing.threads)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("KMP_BLOCKTIME", "0")
    env[THREADS_ENV] = str(sharing.threads)  # what the trainer hands torch.set_num_threads
    if sharing.nice > 0:
        lower_priority(sharing.nice)


def lower_priority(increment: int) -> None:
    """``nice`` this process by ``increment``, and its autogroup when it leads its own
    session (never a shell's: the autogroup is the whole session's)."""
    try:
        os.nice(increment)
    except OSError:
        return
    if os.getsid(0) != os.getpid():
        return
    try:
        with open("/proc/self/autogroup", "w") as fh:
            fh.write(str(min(19, increment)))
    except OSError:
        pass  # no autogroups here (or not ours to change): the plain nice is all there is


def share_machine(run_dir: Path) -> Sharing:
    """Choose and apply the engine's share of the machine; to be called before torch loads."""
    settings = read_settings(run_dir)
    explicit = settings.get("threads") or os.environ.get(THREADS_ENV)
    busy = None if explicit else busy_cores()
    sharing = choose(settings, os.environ, usable_cores(), busy)
    apply(sharing)
    return sharing


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default
