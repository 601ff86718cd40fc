"""Time to first frame and key-press latency of the TUI on a large workspace.

    .venv/bin/python bench/tui_startup.py [--runs 5000] [--repeat 3]

Generates a workspace of N finished runs (bench/fake_workspace.py: index, run folders, no
training), starts the real ``kdtui`` in a pseudo-terminal (80×24, as over SSH), and
measures, from the moment of spawning:

- first frame: until the newest run's row has been drawn (the runs table is populated,
  not just the empty screen), in wall time and in CPU time of the app (the latter does
  not depend on what else the machine is doing);
- key latency: from writing a key to the first and the last byte of the redraw it
  causes, for cursor moves, re-sorting all rows, and typing into the filter.

Nothing is asserted; the figures are printed (the issue asks for < 1 s to first frame).
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
import statistics
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

from fake_workspace import make_workspace

ROOT = Path(__file__).resolve().parent.parent


class Terminal:
    """The real ``kdtui`` on a pseudo-terminal of a fixed size."""

    def __init__(self, workspace: Path, cols: int = 80, rows: int = 24):
        self.started = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes kdtui
            env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
            os.execve(str(ROOT / ".venv/bin/kdtui"), ["kdtui", "-w", str(workspace)], env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.seen = b""

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the app has used so far: unlike wall time, it does not
        grow when other processes load the machine."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def read_until(self, needle: bytes, timeout: float = 30) -> float:
        """Seconds since spawning when ``needle`` first appeared in the output."""
        deadline = time.perf_counter() + timeout
        while needle not in self.seen:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(needle)
            if select.select([self.fd], [], [], left)[0]:
                self.seen += os.read(self.fd, 65536)
        return time.perf_counter() - self.started

    def drain(self, quiet: float = 0.3) -> None:
        """Read until the app has been silent for ``quiet`` seconds."""
        while select.select([self.fd], [], [], quiet)[0]:
            self.seen += os.read(self.fd, 65536)

    def key_latency(self, key: bytes, timeout: float = 10) -> tuple[float, float]:
        """Seconds from writing ``key`` to the first and to the last byte of the redraw
        it causes (the last: followed by 50 ms of quiet)."""
        self.drain()
        t0 = time.perf_counter()
        os.write(self.fd, key)
        if not select.select([self.fd], [], [], timeout)[0]:
            raise TimeoutError(key)
        first = last = time.perf_counter()
        self.seen += os.read(self.fd, 65536)
        while select.select([self.fd], [], [], 0.05)[0]:
            self.seen += os.read(self.fd, 65536)
            last = time.perf_counter()
        return first - t0, last - t0

    def close(self) -> None:
        os.write(self.fd, b"q")
        deadline = time.time() + 10
        while time.time() < deadline:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            with contextlib.suppress(OSError):
                self.drain(0.1)
        os.close(self.fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kdtui-bench-"))
    try:
        make_workspace(tmp / "ws", args.runs, epochs=3)
        runs = json.loads((tmp / "ws" / "kdtui.json").read_text())["runs"].values()
        newest = max(runs, key=lambda r: r["created"])["name"]  # the first row shown
        print(f"workspace: {args.runs} runs (bench/fake_workspace.py)")
        firsts, cpus, keys = [], [], {"down": [], "sort (o)": [], "filter typing": []}
        for _ in range(args.repeat):
            term = Terminal(tmp / "ws")
            firsts.append(term.read_until(newest.encode()))
            cpus.append(term.cpu_seconds())
            for _ in range(20):
                keys["down"].append(term.key_latency(b"\x1b[B"))
            for _ in range(5):
                keys["sort (o)"].append(term.key_latency(b"o"))
            term.key_latency(b"/")
            for ch in b"group-01":
                keys["filter typing"].append(term.key_latency(bytes([ch])))
            term.close()
        print(
            f"first frame with the runs listed: median {statistics.median(firsts):.2f} s "
            f"(all: {', '.join(f'{t:.2f}' for t in firsts)}); CPU time used by then: "
            f"median {statistics.median(cpus):.2f} s; load average {os.getloadavg()[0]:.1f}"
        )
        for what, times in keys.items():
            first = sorted(t[0] * 1000 for t in times)
            done = sorted(t[1] * 1000 for t in times)
            print(
                f"key {what:<14} first byte: median {statistics.median(first):4.0f} ms, "
                f"max {first[-1]:4.0f} ms; redraw done: median {statistics.median(done):4.0f} ms, "
                f"max {done[-1]:4.0f} ms"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
