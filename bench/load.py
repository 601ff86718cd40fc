"""Load for the benchmarks that measure kdtui on a busy box."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator


@contextlib.contextmanager
def cpu_hogs(n: int = 2) -> Iterator[None]:
    """``n`` busy processes (a pure-Python loop each), each in its own session like another
    user's job, at normal priority; they run a second before and all through the block."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                             start_new_session=True) for _ in range(n)]  # fmt: skip
    try:
        time.sleep(1.0)
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
