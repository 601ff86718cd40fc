"""The real ``kdtui`` in a real terminal (tmux), as a user over SSH would run it: the runs
of a prepared workspace are listed, the results show ``±``, ``q`` returns to the shell,
and a hung-up terminal (the SSH connection dropping) ends the app instead of leaving it
spinning. tmux runs on a private socket, so no other tmux server is touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tuikit import STALE_ENV, build_workspace

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed: the terminal test needs it"
)
KDTUI = Path(sys.executable).with_name("kdtui")


class Tmux:
    def __init__(self, tmp_path: Path):
        self.socket = f"kdtui-test-{os.getpid()}-{tmp_path.name}"

    def __call__(self, *args: str) -> str:
        cmd = ["tmux", "-L", self.socket, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "kd")

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never showed; the screen:\n{self.screen()}")


@pytest.fixture
def tmux(tmp_path: Path):
    build_workspace(tmp_path / "ws")
    t = Tmux(tmp_path)
    env = {"PS1": "READY$ ", "TERM": "xterm-256color", **STALE_ENV}
    exports = " ".join(f"{k}='{v}'" for k, v in env.items())
    t("new-session", "-d", "-s", "kd", "-x", "100", "-y", "30", "-c", str(tmp_path),
      f"env -i PATH='{os.environ['PATH']}' HOME='{tmp_path}' {exports} sh")  # fmt: skip
    yield t
    subprocess.run(["tmux", "-L", t.socket, "kill-server"], capture_output=True, timeout=10)


def test_runs_results_and_quit_in_a_real_terminal(tmux: Tmux) -> None:
    tmux.wait_for("READY$")
    tmux("send-keys", "-t", "kd", f"{KDTUI} -w ws", "Enter")
    screen = tmux.wait_for("two-teachers")
    for text in ("kd-gaf-to-signal", "signal-student", "gaf-teacher", "running", "1 running"):
        assert text in screen
    tmux("send-keys", "-t", "kd", "3")
    screen = tmux.wait_for("±")
    assert "86.90 ± 1.74" in screen and "85.56 ± 0.52*" in screen  # 2 of 3 seeds so far
    assert "kd-gaf-to-signal: 2 of 3 seeds finished" in screen
    tmux("send-keys", "-t", "kd", "q")
    tmux.wait_for("READY$")
    tmux("send-keys", "-t", "kd", "echo exit=$?", "Enter")
    screen = tmux.wait_for("exit=0")
    assert "gaf-teacher" not in screen  # the terminal is the shell's again


def test_a_hung_up_terminal_ends_the_app(tmux: Tmux, tmp_path: Path) -> None:
    pidfile = tmp_path / "kdtui.pid"
    # As under nohup: the shell ignores SIGHUP, and so would the app unless it handles it.
    tmux("send-keys", "-t", "kd", f"trap '' HUP; echo $$ > {pidfile}; exec {KDTUI} -w ws", "Enter")
    tmux.wait_for("two-teachers")
    pid = int(pidfile.read_text())
    subprocess.run(["tmux", "-L", tmux.socket, "kill-server"], capture_output=True, timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not running(pid):
            return
        time.sleep(0.1)
    os.kill(pid, 9)
    raise AssertionError("kdtui kept running after its terminal went away")


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
