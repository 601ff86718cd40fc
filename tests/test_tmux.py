"""The real ``kdtui`` in a real terminal (tmux), as a user over SSH would run it: the runs
of a prepared workspace are listed, the results show ``±``, ``q`` returns to the shell,
and a hung-up terminal (the SSH connection dropping) ends the app instead of leaving it
spinning. tmux runs on a private socket, so no other tmux server is touched."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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
        return self.wait_until(lambda screen: text in screen, timeout, f"{text!r} never showed")

    def wait_until(
        self, done: Callable[[str], bool], timeout: float = 20, what: str = "never done"
    ) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if done(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{what}; the screen:\n{self.screen()}")


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
    # the rows come with the first frame, the header's counts with the first poll after it
    texts = ("two-teachers", "kd-gaf-to-signal", "signal-student", "gaf-teacher", "1 running")
    tmux.wait_until(
        lambda screen: all(t in screen for t in texts), what=f"{texts} never all showed"
    )
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


@contextlib.contextmanager
def busy_processes(n: int, seconds: float = 120) -> Iterator[None]:
    """``n`` busy Python loops at normal priority, each in its own session (another user's
    jobs, or engines training), ending by themselves after ``seconds`` if the test cannot
    stop them, and killed when the block ends."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
             for _ in range(n)]  # fmt: skip
    try:
        time.sleep(0.5)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def type_keys(tmux: Tmux, keys: list[str], gap: float = 0.02) -> None:
    """Each key on its own, ``gap`` seconds after the last, as fast as a quick typist."""
    for key in keys:
        if len(key) == 1:
            tmux("send-keys", "-t", "kd", "-l", key)
        else:
            tmux("send-keys", "-t", "kd", key)
        time.sleep(gap)


def rows(screen: str) -> list[str]:
    """The TODO list's rows (ticked or not)."""
    lines = screen.splitlines()
    return [
        line for line in lines if line.lstrip()[:2] in ("☐ ", "✓ ") and "linked group" not in line
    ]


def test_keys_after_tab_land_in_the_next_field_on_a_loaded_box(tmux: Tmux) -> None:
    """Typed 20 ms apart with two or more busy processes per core: what follows a Tab
    goes into the next field, never the one just left (the Tab used to reach the app's
    focus change only after bubbling up from the field, while the keys typed meanwhile
    were already handed to the field that still had the focus)."""
    tmux.wait_for("READY$")
    tmux("send-keys", "-t", "kd", f"{KDTUI} -w ws", "Enter")
    tmux.wait_for("two-teachers")
    with busy_processes(min(16, 2 * (os.cpu_count() or 1))):
        tmux("send-keys", "-t", "kd", "4")
        tmux.wait_for("compare AT and SP")
        for n, (item, group, seeds) in enumerate(
            [("wrn16 sweep", "kd-sweep", "5"), ("at vs sp", "at-sp-kd", "4")]
        ):
            tmux("send-keys", "-t", "kd", "a")
            tmux.wait_for("seeds to finish")
            type_keys(tmux, [*item, "Tab", *group, "Tab", *seeds, "Enter"])
            screen = tmux.wait_until(lambda s: "Add an item" not in s or "✗" in s, 60)
            assert "Add an item" not in screen, f"item {n} refused:\n{screen}"
            listed = 4 + n  # the demo's three, those added before, this one
            screen = tmux.wait_until(lambda s, k=listed: len(rows(s)) == k, 60, "not listed")
            row = rows(screen)[-1]
            assert item in row and f"0/{seeds}" in row, f"item {n}: {row!r}\n{screen}"
        for key, text in [("2", "my-experiment"), ("3", "sample std"), ("2", "my-experiment"),
                          ("3", "sample std"), ("1", "sorted by"), ("4", "kd-sweep")]:  # fmt: skip
            tmux("send-keys", "-t", "kd", key)
            tmux.wait_for(text, timeout=60)  # each screen is drawn, with no key after it


def test_keys_read_together_act_in_the_order_typed(tmux: Tmux) -> None:
    """Several keys in one send-keys reach the app in one read, as keys typed fast or over
    a laggy SSH link do: a bound key (Backspace, Home, Enter) acts before the key typed
    after it. Textual's field typed the character first and ran the bound key after it
    (Backspace then 7 left the old value, the 7 typed and deleted), and the keys after
    Enter in a filter went into the filter."""
    tmux.wait_for("READY$")
    tmux("send-keys", "-t", "kd", f"{KDTUI} -w ws", "Enter")
    tmux.wait_for("two-teachers")
    tmux("send-keys", "-t", "kd", "/")
    tmux("send-keys", "-t", "kd", "-l", "gax")
    tmux.wait_until(lambda s: s.splitlines()[1].startswith("gax "), 10, "the filter typed")
    tmux("send-keys", "-t", "kd", "BSpace", "f", "Enter", "f")  # f in the table: a status
    screen = tmux.wait_until(lambda s: "queued" in s.splitlines()[1], 10, "no status chosen")
    assert screen.splitlines()[1].startswith("gaf "), screen
    tmux("send-keys", "-t", "kd", "2")
    tmux.wait_for("runs at a time 1")
    tmux("send-keys", "-t", "kd", "BTab", "BTab")  # the runs at a time field, the last but one
    tmux.wait_until(lambda s: "1234 screens" not in s, 10, "the field never focused")
    tmux("send-keys", "-t", "kd", "End", "BSpace", "7")
    tmux.wait_for("runs at a time 7 ", timeout=10)
    tmux("send-keys", "-t", "kd", "Home", "3")
    tmux.wait_for("runs at a time 37 ", timeout=10)
