"""Which graphics protocol pictures are drawn with, and that deciding it never delays the
app or leaves a question to the terminal for Textual's key reader to swallow.

The terminal questions are checked in a real pseudo-terminal: a child process imports
kdtui, draws a picture (or starts the whole app), and everything it writes is captured;
the test answers the questions (or not) as a terminal would.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from tuikit import STALE_ENV, build_workspace

from kdtui.widgets import picture

ROOT = Path(__file__).resolve().parent.parent
DA1 = b"\x1b[c"  # sixel: "which attributes?"
KITTY = b"\x1b_G"  # kitty's graphics query
CELL = b"\x1b[16t"  # cell size in pixels
QUESTIONS = (DA1, KITTY, CELL)
# Variables that name a terminal: cleared so that each case names its own.
TERMINAL_VARS = ("TMUX", "STY", "KITTY_WINDOW_ID", "KONSOLE_VERSION", "TERM_PROGRAM", "TERM")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TMUX": "/tmp/tmux-1000/default,1,0", "TERM": "tmux-256color"}, "halfcell"),
        ({"TMUX": "/tmp/t,1,0", "TERM": "xterm-kitty", "KITTY_WINDOW_ID": "1"}, "halfcell"),
        ({"STY": "1.pts-0.host", "TERM": "screen"}, "halfcell"),
        ({"TERM": "screen-256color"}, "halfcell"),
        ({"TERM": "xterm-kitty"}, "kitty"),  # as over SSH from kitty
        ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "3"}, "kitty"),
        ({"TERM": "xterm-ghostty"}, "kitty"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "ghostty"}, "kitty"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, "sixel"),
        ({"TERM": "xterm-256color", "KONSOLE_VERSION": "230805"}, "sixel"),
        ({"TERM": "xterm-256color", "KONSOLE_VERSION": "210802"}, "halfcell"),
        ({"TERM": "foot"}, "sixel"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "iTerm.app"}, "sixel"),
        ({"TERM": "linux"}, "halfcell"),
        ({"TERM": "dumb"}, "halfcell"),
        ({"TERM": "xterm-kitty", "KDTUI_PICTURES": "sixel"}, "sixel"),  # forced wins
        ({"TMUX": "/tmp/t,1,0", "KDTUI_PICTURES": "kitty"}, "kitty"),  # passthrough set up
        ({"TERM": "xterm-kitty", "KDTUI_PICTURES": "auto"}, "kitty"),
        ({"TERM": "xterm-256color"}, None),  # plain SSH, xterm, VS Code…: ask
        ({"TERM": "xterm-256color", "KDTUI_PICTURES": "nonsense"}, None),
        ({}, None),
    ],
)
def test_the_protocol_comes_from_the_environment_when_it_tells(
    env: Mapping[str, str], expected: str | None
) -> None:
    assert picture.protocol_from_env(env) == expected


def test_only_an_unknown_terminal_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(picture, "ask_terminal", lambda: asked.append("?") or "sixel")
    monkeypatch.setattr(picture, "_on_a_terminal", lambda: True)
    monkeypatch.setattr(picture, "_detection", None)
    monkeypatch.setattr(picture, "_answer", None)
    for name in (*TERMINAL_VARS, picture.ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TMUX", "/tmp/t,1,0")
    picture.prepare()
    assert asked == [] and picture.protocol() == "halfcell"
    monkeypatch.delenv("TMUX")
    monkeypatch.setenv("TERM", "xterm-256color")
    picture.prepare()
    assert asked == ["?"] and picture.protocol() == "sixel"
    picture.prepare()  # once is enough
    assert asked == ["?"]


# ---------------------------------------------------------------------- in a real pty


def run_in_pty(
    argv: list[str],
    env: Mapping[str, str],
    until: bytes,
    answers: Mapping[bytes, bytes] | None = None,
    cwd: Path = ROOT,
    size: tuple[int, int] | None = (24, 80),
    timeout: float = 60,
) -> bytes:
    """Everything ``argv`` writes to an 80×24 pseudo-terminal until ``until`` shows; each
    question in ``answers`` is answered when written (the others are left unanswered, as a
    terminal that ignores them; ``size``: rows and columns, None for a window of no size).
    Then the child is ended."""
    full = {k: v for k, v in os.environ.items() if k not in (*TERMINAL_VARS, picture.ENV)}
    full.update(STALE_ENV, COLUMNS="80", LINES="24", **env)
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.chdir(cwd)
        os.execve(argv[0], argv, full)
    if size is not None:  # set long before the child's Python has started
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    seen, pending = b"", dict(answers or {})
    deadline = time.monotonic() + timeout
    try:
        while until not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{until!r} never came; written:\n{seen[-2000:]!r}"
            if select.select([fd], [], [], left)[0]:
                try:
                    seen += os.read(fd, 65536)
                except OSError:  # the child is gone
                    raise AssertionError(f"exited before {until!r}:\n{seen[-2000:]!r}") from None
            for question in sorted((q for q in pending if q in seen), key=seen.index):
                os.write(fd, pending.pop(question))  # in order, as a terminal answers
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    return seen


DRAW = (
    "from PIL import Image; from kdtui.widgets import picture; picture.prepare(); "
    "shown = picture.picture(Image.new('RGB', (4, 4)), 8, 4); "
    "import textual_image.widget as w; "
    "kind = [k for k in ('HalfcellImage', 'SixelImage', 'TGPImage', 'UnicodeImage') "
    "if type(shown) is getattr(w, k)]; "
    "from textual_image._terminal import get_cell_size; cell = get_cell_size(); "
    "print('drawn with', *kind, picture.protocol(), f'cell={cell.width}x{cell.height}', "
    "'end', flush=True)"
)


def draw(
    env: Mapping[str, str],
    answers: Mapping[bytes, bytes] | None = None,
    size: tuple[int, int] | None = (24, 80),
) -> bytes:
    return run_in_pty([sys.executable, "-c", DRAW], env, b" end", answers, size=size)


def test_a_known_terminal_is_asked_nothing_even_by_textual_image() -> None:
    """Inside tmux the widget is built and textual-image imported without one question
    (importing it plainly asks three: it did before)."""
    seen = draw({"TMUX": "/tmp/t,1,0", "TERM": "tmux-256color"})
    assert b"drawn with HalfcellImage halfcell cell=10x20" in seen  # no pixel size: default
    assert not [q for q in QUESTIONS if q in seen], seen
    seen = draw({"TERM": "xterm-kitty"})
    assert b"drawn with TGPImage kitty" in seen
    assert not [q for q in QUESTIONS if q in seen], seen


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({DA1: b"\x1b[?62;4;22c"}, b"SixelImage sixel cell=10x20"),  # xterm -ti vt340
        ({DA1: b"\x1b[?62;22c", KITTY: b"\x1b_Gi=1;OK\x1b\\"}, b"TGPImage kitty"),
        # WezTerm: both, sixel preferred
        ({KITTY: b"\x1b_Gi=1;OK\x1b\\", DA1: b"\x1b[?65;4;6;22c"}, b"SixelImage sixel"),
        ({DA1: b"\x1b[?62;22c"}, b"HalfcellImage halfcell"),  # GNOME Terminal, VS Code
        ({CELL: b"\x1b[6;17;8t", DA1: b"\x1b[?62;4c"}, b"SixelImage sixel cell=8x17"),
        ({KITTY: b"\x1b_Gi=1;ENOENT:no\x1b\\", DA1: b"\x1b[?62c"}, b"HalfcellImage"),
        ({}, b"HalfcellImage halfcell cell=10x20"),  # answers nothing
    ],
)
def test_an_unknown_terminal_is_asked_as_textual_image_asks(
    answers: Mapping[bytes, bytes], expected: bytes
) -> None:
    seen = draw({"TERM": "xterm-256color"}, answers)
    assert b"drawn with " + expected in seen
    assert b"Traceback" not in seen  # textual-image's warning of no answer is not printed
    assert DA1 in seen and CELL in seen  # the pty has no pixel size: 16t asked


def test_a_window_of_no_size_is_no_traceback() -> None:
    """textual-image divides by the window's columns: a pty whose size was never set (0 ×
    0) made the question thread die with a ZeroDivisionError printed on the screen."""
    seen = draw({"TERM": "xterm-256color"}, {DA1: b"\x1b[?62;4;22c"}, size=None)
    assert b"Traceback" not in seen and b"Error" not in seen, seen
    assert b"drawn with SixelImage sixel" in seen  # the other questions still asked


def test_the_app_under_tmux_writes_no_question_to_the_terminal(tmp_path: Path) -> None:
    """The real app, started in a pseudo-terminal that says it is inside tmux, draws its
    first frame without a graphics question; an unknown terminal is asked, before."""
    build_workspace(tmp_path / "ws")
    kdtui = [sys.executable, "-m", "kdtui", "-w", "ws"]
    env = {"TMUX": "/tmp/t,1,0", "TERM": "tmux-256color", "PYTHONPATH": str(ROOT)}
    seen = run_in_pty(kdtui, env, b"two-teachers", cwd=tmp_path)
    assert not [q for q in QUESTIONS if q in seen], seen[:400]
    env = {"TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
    seen = run_in_pty(kdtui, env, b"two-teachers", cwd=tmp_path)
    asked = seen.index(DA1)
    assert asked < seen.index(b"two-teachers")
    assert asked < seen.index(b"\x1b[?1049h")  # before Textual takes the screen
