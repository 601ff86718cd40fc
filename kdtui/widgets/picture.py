"""Pictures in the terminal: arrays (attention maps, GAF images) coloured into images, and
the widget that shows them — with real pixels where the terminal speaks a graphics
protocol (kitty's, sixel), in coloured half-block cells otherwise (tmux, plain SSH).

The drawing is textual-image's; which protocol it draws with is decided here, without
delaying the app's first frame:

- from the environment when it tells (``protocol_from_env``): ``KDTUI_PICTURES`` =
  ``halfcell``, ``sixel`` or ``kitty`` forces one (tests force ``halfcell``); inside tmux
  or screen, half-blocks (tmux swallows graphics unless passthrough is set up); kitty and
  ghostty, kitty's protocol; WezTerm, Konsole, foot and iTerm2, sixel (textual-image's
  own notes: WezTerm and Konsole answer kitty's query but show only sixel right); the
  Linux console and ``dumb``, half-blocks. Nothing is asked then.
- otherwise by asking the terminal what textual-image would ask (the cell size where the
  window-size ioctl has none, kitty's graphics query, DA1 for sixel), all in one write
  with DA1 last (``ask_terminal``): one round trip, or one 0.1 s timeout where nothing
  answers, against one per question in textual-image. The questions run in a thread
  started while the app's modules load (``start_detection``; ``prepare`` waits for it
  before Textual reads the keyboard, which would swallow the answers), with textual-
  image's cbreak helper and without its renderables, whose import pulls in numpy and PIL.

textual-image decides its protocol when ``textual_image.renderable`` is first imported,
asking the terminal right then if ``sys.__stdout__`` is a terminal, and
``textual_image.widget`` asks for the cell size on import. Asked after Textual starts, the
answers would reach Textual's key reader as keystrokes (and the questions are not
needed). So the widget module is imported on the first picture (``_widget_module``) with
the cell size already in ``get_cell_size``'s one-time cache (its ``_result``, filled from
the answer, the ioctl or the default) and ``sys.__stdout__`` swapped for a non-terminal
for the length of the import: textual-image then skips its questions (its auto choice
becomes the plain-text one, which is never used: ``picture`` names its class). The swap
happens before any picture exists, so no image output can go astray; it is the one switch
textual-image reads, and needs no copy or patch of its code.

The colouring (``heat_image``) uses matplotlib's colormaps: call it in a worker thread.
"""

from __future__ import annotations

import io
import os
import re
import select
import sys
import threading
import time
from collections.abc import Mapping
from random import randint
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image as PILImage
    from textual.widget import Widget

ENV = "KDTUI_PICTURES"
MODES = ("auto", "halfcell", "sixel", "kitty")
#: Height, in pixels, of the strip that shows a 1-D map (a signal model's attention).
STRIP_ROWS = 8
#: Seconds to wait for the terminal's answers (textual-image waits as long for each).
ANSWER_TIMEOUT = 0.1
#: The answers: DA1's attributes, kitty's OK, the cell size (ESC[6;height;widtht).
DA1_ANSWER = re.compile(rb"\x1b\[\?([\d;]*)c")
KITTY_ANSWER = re.compile(rb"\x1b_G[^\x1b]*;OK\x1b\\")
CELL_ANSWER = re.compile(rb"\x1b\[6;(\d+);(\d+)t")
#: Terminals known by ``TERM_PROGRAM`` (not forwarded over SSH: asked there).
PROGRAMS = {
    "tmux": "halfcell",
    "ghostty": "kitty",
    "wezterm": "sixel",
    "iterm.app": "sixel",
    "apple_terminal": "halfcell",
}
#: Terminals known by ``TERM`` (forwarded over SSH), by prefix.
TERMS = {
    "xterm-kitty": "kitty",
    "xterm-ghostty": "kitty",
    "wezterm": "sixel",
    "foot": "sixel",
    "linux": "halfcell",
    "dumb": "halfcell",
}
#: Konsole's ``KONSOLE_VERSION`` from which it draws sixel (22.04); before, nothing works.
KONSOLE_SIXEL = 220400

_detection: threading.Thread | None = None
_answer: str | None = None  # the terminal's answer, once asked
_import_lock = threading.Lock()


def mode(env: Mapping[str, str] | None = None) -> str:
    """The protocol asked for in ``KDTUI_PICTURES`` (``auto``: the terminal's own)."""
    asked = (os.environ if env is None else env).get(ENV, "auto").strip().lower()
    return asked if asked in MODES else "auto"


def protocol_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The protocol the environment tells (``halfcell``, ``sixel`` or ``kitty``), or None
    when only the terminal can say. tmux and screen come first: a kitty window's
    variables are still set inside a tmux running in it."""
    env = os.environ if env is None else env
    if mode(env) != "auto":
        return mode(env)
    term = env.get("TERM", "").lower()
    if env.get("TMUX") or env.get("STY") or term.startswith(("tmux", "screen")):
        return "halfcell"
    if env.get("KITTY_WINDOW_ID"):
        return "kitty"
    konsole = env.get("KONSOLE_VERSION", "")
    if konsole.isdigit():
        return "sixel" if int(konsole) >= KONSOLE_SIXEL else "halfcell"
    program = PROGRAMS.get(env.get("TERM_PROGRAM", "").lower())
    if program:
        return program
    return next((kind for prefix, kind in TERMS.items() if term.startswith(prefix)), None)


def _on_a_terminal() -> bool:
    return all(s is not None and s.isatty() for s in (sys.__stdin__, sys.__stdout__))


def protocol() -> str:
    """The protocol pictures are drawn with: the environment's, else the terminal's
    answer, else half-blocks on a terminal that was not asked (never asked here: Textual
    may be reading the keyboard) and textual-image's plain-text pictures off a terminal."""
    known = protocol_from_env() or _answer
    if known:
        return known
    return "halfcell" if _on_a_terminal() else "unicode"


def _cell_size_from_ioctl() -> tuple[int, int] | None:
    """The cell size in pixels from the window-size ioctl, None where it has none (a pty
    of no pixel size, tmux without it)."""
    from textual_image._terminal import get_tiocgwinsz

    if sys.__stdout__ is None or not sys.__stdout__.isatty():
        return None
    try:
        rows, columns, pixels_wide, pixels_high = get_tiocgwinsz()
    except OSError:
        return None
    if not (rows and columns and pixels_wide and pixels_high):
        return None
    return pixels_wide // columns, pixels_high // rows


def _seed_cell_size(answered: tuple[int, int] | None = None) -> None:
    """Fill textual-image's one-time cache of the cell size (``get_cell_size``, which would
    otherwise ask the terminal while Textual reads the keyboard): the terminal's answer,
    else the window-size ioctl, else textual-serve's variables, else textual-image's
    default (a VT340's 10 × 20) — its own order, without its question."""
    from textual_image._terminal import CellSize, get_cell_size

    if hasattr(get_cell_size, "_result"):
        return
    size = answered or _cell_size_from_ioctl()
    if size is None:
        w, h = os.environ.get("TEXTUAL_CELL_WIDTH", ""), os.environ.get("TEXTUAL_CELL_HEIGHT", "")
        size = (int(w), int(h)) if w.isdigit() and h.isdigit() and int(w) and int(h) else (10, 20)
    get_cell_size._result = CellSize(*size)  # type: ignore[attr-defined]


def ask_terminal() -> str:
    """Ask the terminal what textual-image would ask on import, in one write: the cell
    size in pixels (only where the ioctl has none), kitty's graphics query (a 1-pixel
    image, answered OK where supported) and DA1 last. Every terminal answers DA1, and
    answers come in order: once its answer is in, the others are too, so a terminal that
    answers costs one round trip and one that ignores everything one ANSWER_TIMEOUT
    (textual-image asks one question at a time, a timeout each). Sixel (a 4 among the DA1
    attributes) is preferred to kitty's, as in textual-image: WezTerm and Konsole answer
    kitty's query but draw only sixel right; half-blocks when neither is there."""
    from textual_image._terminal import capture_mode  # cbreak: answers read, not echoed

    assert sys.__stdin__ is not None and sys.__stdout__ is not None  # _on_a_terminal
    known_size = _cell_size_from_ioctl()
    kitty = f"\x1b_Gi={randint(1, 2**31)},s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
    questions = ("" if known_size else "\x1b[16t") + kitty + "\x1b[c"
    stdin = sys.__stdin__.fileno()
    got = b""
    with capture_mode():
        sys.__stdout__.write(questions)
        sys.__stdout__.flush()
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while not DA1_ANSWER.search(got):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([stdin], [], [], left)[0]:
                break
            byte = os.read(stdin, 1)  # one at a time: no key typed after the answers is taken
            if not byte:
                break
            got += byte
    cell = CELL_ANSWER.search(got)
    _seed_cell_size(
        (int(cell[2]), int(cell[1])) if cell and int(cell[1]) and int(cell[2]) else None
    )
    da1 = DA1_ANSWER.search(got)
    if da1 and b"4" in da1[1].split(b";"):
        return "sixel"
    if KITTY_ANSWER.search(got):
        return "kitty"
    return "halfcell"


def _detect() -> None:
    global _answer
    try:
        _answer = ask_terminal()
    except Exception:  # questions that fail mean no pixels, never a traceback
        _answer = "halfcell"


def start_detection() -> None:
    """Ask the terminal which graphics protocol it speaks, in a thread, so that the answer
    (a few tenths of a second where nothing answers) overlaps the app's imports; nothing
    is asked when the environment tells, or off a terminal."""
    global _detection
    if _detection is not None or _answer is not None or protocol_from_env() is not None:
        return
    if not _on_a_terminal():
        return  # nothing to ask
    _detection = threading.Thread(target=_detect, name="kdtui-pictures", daemon=True)
    _detection.start()


def prepare() -> None:
    """Wait for the terminal's answer (asking now if nobody asked): call before the app
    starts, since Textual's keyboard reader would swallow the answer."""
    start_detection()
    if _detection is not None:
        _detection.join()


def _widget_module() -> ModuleType:
    """``textual_image.widget``, imported without a question to the terminal (see the
    module's docstring)."""
    with _import_lock:  # the module is in sys.modules before its import has finished
        done = sys.modules.get("textual_image.widget")
        if done is not None:
            return done
        import numpy  # noqa: F401  (the heavy imports outside the swap: it lasts only for
        import PIL.Image  # noqa: F401  textual-image's own modules)

        _seed_cell_size()
        real = sys.__stdout__
        sys.__stdout__ = io.StringIO()  # not a terminal: textual-image asks nothing
        try:
            import textual_image.widget as widget
        finally:
            sys.__stdout__ = real
    return widget


def picture(image: PILImage, width: int, height: int) -> Widget:
    """A widget showing ``image`` stretched to ``width`` × ``height`` cells."""
    widget = _widget_module()
    kind = {
        "halfcell": widget.HalfcellImage,
        "sixel": widget.SixelImage,
        "kitty": widget.TGPImage,
    }.get(protocol(), widget.UnicodeImage)
    shown = kind(image)
    shown.styles.width = width
    shown.styles.height = height
    return shown


def heat_image(values: np.ndarray, cmap: str, *, flip: bool = False) -> PILImage:
    """A 2-D array as an RGB image, coloured by ``cmap`` from its own minimum to maximum
    (as matplotlib's imshow does); a 1-D array as a strip of STRIP_ROWS pixels; ``flip``
    puts row 0 at the bottom (GAF images are drawn with their origin there)."""
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image

    a = np.asarray(values, dtype=np.float32)
    if a.ndim == 1:
        a = np.repeat(a[None, :], STRIP_ROWS, axis=0)
    if flip:
        a = a[::-1]
    finite = np.isfinite(a)
    lo, hi = (float(a[finite].min()), float(a[finite].max())) if finite.any() else (0.0, 0.0)
    scaled = np.where(finite, (a - lo) / (hi - lo), 0.0) if hi > lo else np.zeros_like(a)
    rgb = colormaps[cmap](scaled, bytes=True)[..., :3]
    return Image.fromarray(np.ascontiguousarray(rgb))


def rgb_image(values: np.ndarray) -> PILImage:
    """A dataset image (C=3, H, W), uint8 or 0-255 floats, as it is."""
    import numpy as np
    from PIL import Image

    a = np.clip(np.asarray(values, dtype=np.float32), 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(a.transpose(1, 2, 0)))


def stack(tiles: list[PILImage]) -> PILImage:
    """Tiles one under the other, each resized to the first one's size."""
    from PIL import Image

    width, height = tiles[0].size
    out = Image.new("RGB", (width, height * len(tiles)))
    for i, tile in enumerate(tiles):
        if tile.size != (width, height):
            tile = tile.resize((width, height), Image.Resampling.NEAREST)
        out.paste(tile, (0, i * height))
    return out
