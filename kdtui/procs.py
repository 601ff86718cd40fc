"""Process identity: a pid is only "our process" if its start time matches too."""

from __future__ import annotations


def start_time(pid: int) -> float | None:
    """The process's start time (seconds since the epoch), or None if there is none."""
    import psutil  # only when a pid is checked: `kdtui ls` of ended runs never pays for it

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def is_alive(pid: int, recorded_start: float | None) -> bool:
    """True if ``pid`` runs and is the process that was recorded (same start time).
    Without a recorded start time, a live pid is taken at its word. Zombies count as
    gone: they have exited and only wait for their parent to reap them."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
    return recorded_start is None or abs(started - recorded_start) < 0.05
