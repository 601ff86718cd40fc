"""How fast the app answers, on an idle box and on a box its own engines load.

    .venv/bin/python bench/tui_startup.py [--runs 5000] [--repeat 3] [--load engines|hogs]
                                          [--unloaded-only | --loaded-only] [--app DIR] [--json]
                                          [--terminal unknown|tmux]
    .venv/bin/python bench/run.py --only tui     # the same figures among the others

A workspace of N finished runs (bench/fake_workspace.py: index and run folders, no
training) is opened by the real ``kdtui`` in a pseudo-terminal of 80×24, as over SSH, and
timed from outside, as a user would feel it:

- ``tui_first_frame_s``: spawning ``kdtui`` until the newest run's row is drawn (the runs
  table populated, not just an empty screen); goal ≤ 1 s.
- ``tui_compose_open_s``: key ``2`` (the first time: the composer is built) until its form
  is drawn; goal ≤ 0.5 s.
- ``tui_switch_s``: the median over keys ``1``-``4`` pressed in turn (runs, results, TODO,
  and back to an already opened composer) from the key to the new screen's own content
  (its summary line, its form) being drawn; ``tui_switch_max_s`` the slowest; goal ≤ 0.3 s.
- ``tui_cursor_s``: a cursor move in the runs table, key to the end of its redraw.
- the same with ``_loaded``: two engines train next to the app, the way the queue runner
  runs them with ``--jobs 2`` (``python -m kdtui.engine RUN_DIR``, own session, the
  engine's own thread and nice settings; a WRN16-1 student on synthetic-har's raw signal,
  500 steps), and they are runs of the workspace the app shows, so that its index changes
  at every epoch as a live workspace's does. ``--load hogs`` uses two busy Python loops at
  normal priority instead (another user's jobs: harsher, as the app has no priority over
  them).

Each key's figures also come in CPU seconds of the app's event loop (``_cpu_s``), which
unlike wall time hardly depend on what else the machine runs; ``--trace`` prints every
key. The pseudo-terminal answers no queries, as a terminal that ignores them. Which
terminal it says it is (``--terminal``) decides whether the app asks about terminal
graphics (kdtui.widgets.picture): ``unknown`` (the default: ``TERM=xterm-256color`` and
nothing else, as over plain SSH) is asked, and the questions wait for their timeouts
there; ``tmux`` (``TMUX`` set, ``TERM=tmux-256color``, as inside tmux) is asked nothing.

The engines are started from this checkout; ``--app DIR`` runs the app from another
checkout (``--app /tmp/kd-before`` measured the code before the fixes) with the same load.
Nothing is asserted: the figures are printed (or one JSON object with ``--json``).

To measure again on a calm machine: ``uptime`` should show a load near 0 before starting
(the loaded figures add their own load of 2); run ``python bench/tui_startup.py`` (about
3 minutes on 2 cores; ``--app DIR`` for another checkout, run in turns with this one) and
copy the figures into BENCHMARKS.md, "The app on a loaded box", with the load averages
printed (``tui_loadavg``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fake_workspace import make_workspace  # noqa: E402
from load import cpu_hogs  # noqa: E402

# Text each screen draws only once its content is there (not just its header).
SCREENS = {
    "1": ("runs", b"sorted by"),
    "2": ("compose", b"my-experiment"),
    "3": ("results", b"sample std over seeds"),
    "4": ("todo", b"nothing to do yet"),
}
# Keys pressed after the first frame: compose first (its opening), then every screen in
# turn, twice, so each switch (compose again included) is timed more than once.
KEYS = "2" + "3412" * 2 + "3"
# --quick (the test suite's bench): each screen once, back on the runs, whose q quits.
QUICK_KEYS = "2341"
LOAD_RUN = "load-engine"
LOAD_EPOCHS = 10_000  # far more than a bench lasts: the engines are stopped at the end


# What the pseudo-terminal says it is, in the environment (all else naming one is cleared).
TERMINALS = {
    "unknown": {"TERM": "xterm-256color"},
    "tmux": {"TERM": "tmux-256color", "TMUX": "/tmp/tmux-1000/default,1,0", "TERM_PROGRAM": "tmux"},
}
TERMINAL_VARS = ("TMUX", "STY", "KITTY_WINDOW_ID", "KONSOLE_VERSION", "TERM_PROGRAM", "TERM",
                 "KDTUI_PICTURES")  # fmt: skip


class Terminal:
    """The real ``kdtui`` on a pseudo-terminal of a fixed size. Started from a folder
    outside the checkout, so that ``PYTHONPATH=app`` decides which kdtui runs. ``quiet``:
    the seconds of silence that tell the app is done drawing, before a key is pressed."""

    def __init__(
        self,
        workspace: Path,
        app: Path | None = None,
        cols: int = 80,
        rows: int = 24,
        terminal: str = "unknown",
        quiet: float = 0.3,
    ):
        self.quiet = quiet
        env = {k: v for k, v in os.environ.items() if k not in TERMINAL_VARS}
        env.update(TERMINALS[terminal], COLUMNS=str(cols), LINES=str(rows))
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as installed
        if app is not None:
            env["PYTHONPATH"] = str(app)
        self.started = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes kdtui
            os.chdir(workspace.parent)
            argv = [sys.executable, "-m", "kdtui", "-w", str(workspace)]
            os.execve(sys.executable, argv, env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.seen = b""

    def cpu_seconds(self, loop_only: bool = False) -> float:
        """CPU time (user + system) the app has used so far: unlike wall time, it does not
        grow when other processes load the machine. ``loop_only``: its main thread's, the
        event loop's (what keys wait for), without the workers'."""
        stat = f"/proc/{self.pid}/task/{self.pid}/stat" if loop_only else f"/proc/{self.pid}/stat"
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _read(self, timeout: float) -> bool:
        if not select.select([self.fd], [], [], timeout)[0]:
            return False
        try:
            self.seen += os.read(self.fd, 65536)
        except OSError:  # the app is gone
            raise RuntimeError(f"kdtui exited; it last wrote:\n{self.seen[-2000:]!r}") from None
        return True

    def read_until(self, needle: bytes, timeout: float = 60) -> float:
        """Seconds since spawning when ``needle`` first appeared in the output."""
        deadline = time.perf_counter() + timeout
        while needle not in self.seen:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(needle)
            self._read(left)
        return time.perf_counter() - self.started

    def drain(self, quiet: float | None = None, most: float = 5.0) -> None:
        """Read until the app has been silent for ``quiet`` seconds (the terminal's by
        default), or ``most`` passed."""
        deadline = time.perf_counter() + most
        while self._read(self.quiet if quiet is None else quiet) and time.perf_counter() < deadline:
            pass

    def press(self, key: bytes, needle: bytes, timeout: float = 60) -> tuple[float, ...]:
        """Once the app is quiet, seconds from writing ``key`` until ``needle`` is drawn
        (only what is drawn after the key counts), and the CPU seconds the app and its
        event loop used meanwhile."""
        self.drain()
        self.seen = b""
        cpu, loop = self.cpu_seconds(), self.cpu_seconds(loop_only=True)
        t0 = time.perf_counter()
        os.write(self.fd, key)
        deadline = t0 + timeout
        while needle not in self.seen:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"{needle!r} after {key!r}")
            self._read(left)
        seconds = time.perf_counter() - t0
        return seconds, self.cpu_seconds() - cpu, self.cpu_seconds(loop_only=True) - loop

    def key_latency(self, key: bytes, timeout: float = 10) -> tuple[float, float]:
        """Seconds from writing ``key`` to the first and to the last byte of the redraw
        it causes (the last: followed by 50 ms of quiet)."""
        self.drain()
        t0 = time.perf_counter()
        os.write(self.fd, key)
        if not self._read(timeout):
            raise TimeoutError(key)
        first = last = time.perf_counter()
        while self._read(0.05):
            last = time.perf_counter()
        return first - t0, last - t0

    def close(self) -> None:
        """Quit (``q`` from a table screen), or kill the app if it does not go."""
        with contextlib.suppress(OSError):
            os.write(self.fd, b"1")  # back to the runs, whose q quits
            self.drain(most=3)
            os.write(self.fd, b"q")
        deadline = time.time() + 10
        while time.time() < deadline:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            with contextlib.suppress(OSError, RuntimeError):
                self.drain(0.1, most=1)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


# ---------------------------------------------------------------------- load


@contextlib.contextmanager
def runner_held(ws: Path) -> Iterator[None]:
    """Hold the workspace's runner lock: no queue runner starts (the app would revive one
    for queued runs), the bench starts the engines itself."""
    with open(ws / "runner.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _load_experiment(quick: bool = False) -> dict[str, Any]:
    """A WRN16-1 student on the raw signal of synthetic-har windows (500 steps, 7 classes),
    trained for longer than any bench lasts (``quick``: a few short windows, for the tests:
    epochs of a fraction of a second, as soon as torch is loaded)."""
    data = {"dataset": "synthetic-har", "n_train": 1050, "n_test": 350, "length": 500}
    if quick:
        data.update(n_train=32, n_test=8, length=64)
    return {"name": LOAD_RUN, "data": data, "student": {"depth": 16, "width": 1,
            "view": "signal"}, "schedule": {"kind": "constant"}, "epochs": LOAD_EPOCHS,
            "batch_size": 64, "seeds": [0, 1]}  # fmt: skip


@contextlib.contextmanager
def engines(ws: Path, n: int = 2, timeout: float = 300, quick: bool = False) -> Iterator[None]:
    """``n`` engines training runs of ``ws`` as the queue runner starts them with
    ``--jobs n`` (own session, KDTUI_PARALLEL=n, no GPU); yields once each has finished an
    epoch (imports and data behind them), stops them at the end. ``quick``: yields as soon
    as they are started (their imports load the machine as much as training does) and
    checks at the end that each did train an epoch, so that the test suite waits for the
    engines' imports only once, while the app is measured beside them."""
    from kdtui.launcher import enqueue
    from kdtui.spec import validate_spec
    from kdtui.store import Store, read_events

    store = Store(ws)
    experiment = _load_experiment(quick) | {"seeds": list(range(n))}  # none left queued
    run_ids = enqueue(store, validate_spec(experiment, base_dir=ws))
    env = dict(os.environ, PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="", KDTUI_PARALLEL=str(n))
    for name in ("KDTUI_THREADS", "KDTUI_NICE", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH"):
        env.pop(name, None)
    if quick:  # at the priority of the rest: a niced engine waits for the app and the box
        env["KDTUI_NICE"] = "0"
    procs = []
    try:
        for run_id in run_ids:
            with open(store.run_dir(run_id) / "stdout.log", "ab") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "kdtui.engine", str(store.run_dir(run_id))],
                    env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip
        deadline = time.monotonic() + timeout

        def trained() -> None:
            for run_id, proc in zip(run_ids, procs, strict=True):
                while not any(e["type"] == "epoch" for e in read_events(store.run_dir(run_id))):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log = (store.run_dir(run_id) / "stdout.log").read_text()[-800:]
                        raise RuntimeError(f"load engine did not train an epoch:\n{log}")
                    time.sleep(0.1 if quick else 0.5)

        if not quick:
            trained()
        yield
        if quick:
            trained()
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---------------------------------------------------------------------- measuring


def newest_name(ws: Path) -> str:
    runs = json.loads((ws / "kdtui.json").read_text())["runs"].values()
    return max(runs, key=lambda r: r["created"])["name"]  # the first row shown


def measure(
    ws: Path,
    repeats: int,
    app: Path | None = None,
    trace: bool = False,
    terminal: str = "unknown",
    keys: str = KEYS,
    cursor_moves: int = 5,
    quiet: float = 0.3,
) -> dict[str, float]:
    """First frame, compose opening (``keys`` begins with 2) and screen switches (the other
    keys), medians over ``repeats`` starts; each also in CPU seconds (the first frame: the
    app's; a key: its event loop's, while the key was waited for), which unlike wall time
    do not grow with the machine's load; ``trace`` prints every key's times; ``quiet``: the
    Terminal's."""
    firsts, cpus, cursor = [], [], []
    opens: list[tuple[float, float]] = []  # (wall, CPU) seconds
    switches: list[tuple[float, float]] = []
    newest = newest_name(ws).encode()
    for _ in range(repeats):
        term = Terminal(ws, app, terminal=terminal, quiet=quiet)
        try:
            firsts.append(term.read_until(newest))
            cpus.append(term.cpu_seconds())
            for _ in range(cursor_moves):  # a cursor move: the redraw of two rows
                cursor.append(term.key_latency(b"\x1b[B")[1])
            opened = False
            for key in keys:
                seconds, cpu, loop = term.press(key.encode(), SCREENS[key][1])
                (switches if opened or key != "2" else opens).append((seconds, loop))
                if trace:
                    print(f"    key {key} → {SCREENS[key][0]:<8} {seconds:6.3f} s, CPU "
                          f"{cpu:6.3f} s, event loop {loop:6.3f} s", file=sys.stderr)  # fmt: skip
                opened = opened or key == "2"
        finally:
            term.close()
    return {
        "tui_first_frame_s": statistics.median(firsts),
        "tui_first_frame_cpu_s": statistics.median(cpus),
        "tui_compose_open_s": statistics.median(t for t, _ in opens),
        "tui_compose_open_cpu_s": statistics.median(c for _, c in opens),
        "tui_switch_s": statistics.median(t for t, _ in switches),
        "tui_switch_max_s": max(t for t, _ in switches),
        "tui_switch_cpu_s": statistics.median(c for _, c in switches),
        "tui_cursor_s": statistics.median(cursor),
    }


def bench_tui(
    work: Path,
    runs: int = 5000,
    repeats: int = 3,
    *,
    load: str = "engines",
    unloaded: bool = True,
    loaded: bool = True,
    app: Path | None = None,
    trace: bool = False,
    quick: bool = False,
    terminal: str = "unknown",
) -> dict[str, Any]:
    """The figures unloaded, then loaded (keys suffixed ``_loaded``), with the load average
    seen at the end of each part, in a pseudo-terminal that says it is ``terminal`` (a
    key of TERMINALS). A first start, not counted, warms the file cache. ``quick`` (the
    test suite's run, which shows that each figure is measured, not how fast): no warm-up
    start, each screen's key once (QUICK_KEYS), one cursor move, 0.1 s of silence before a
    key (the screens' texts differ, so a late redraw cannot pass for the next screen),
    one engine as the load (the same code path as two, half the CPU), training a few short
    windows at nice 0, not waited for (``engines``)."""
    ws = make_workspace(work / "tui-ws", runs=runs, epochs=3)
    figures: dict[str, Any] = {}
    keys = {"keys": QUICK_KEYS, "cursor_moves": 1, "quiet": 0.1} if quick else {}
    with runner_held(ws):
        if not quick:
            term = Terminal(ws, app, terminal=terminal)
            term.read_until(newest_name(ws).encode())
            term.close()
        if unloaded:
            figures.update(measure(ws, repeats, app, trace, terminal, **keys))
            figures["tui_loadavg"] = os.getloadavg()[0]
        if loaded:
            with engines(ws, 1 if quick else 2, quick=quick) if load == "engines" else cpu_hogs():
                part = measure(ws, repeats, app, trace, terminal, **keys)
                part["tui_loadavg"] = os.getloadavg()[0]
            figures.update({f"{k}_loaded": v for k, v in part.items()})
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--load", choices=("engines", "hogs"), default="engines")
    parser.add_argument("--app", type=Path, help="run the app from this checkout")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--trace", action="store_true", help="every key's times, on stderr")
    parser.add_argument("--terminal", choices=tuple(TERMINALS), default="unknown",
                        help="what the pseudo-terminal says it is (tmux: asked nothing)")  # fmt: skip
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--unloaded-only", action="store_true")
    only.add_argument("--loaded-only", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kdtui-bench-"))
    try:
        figures = bench_tui(work, args.runs, args.repeat, load=args.load, app=args.app,
                            unloaded=not args.loaded_only, loaded=not args.unloaded_only,
                            trace=args.trace, terminal=args.terminal)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures |= {"runs": args.runs, "load": args.load, "app": str(args.app or ROOT),
                "terminal": args.terminal}  # fmt: skip
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    for name, value in figures.items():
        print(f"  {name:<30} {value:.3f}" if isinstance(value, float) else f"  {name:<30} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
