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
- otherwise by asking the terminal, as textual-image does (cell size, sixel in the DA1
  answer, then kitty's query; 0.1 s timeouts), in a thread started while the app's
  modules load (``start_detection``; ``prepare`` waits for it before Textual reads the
  keyboard, which would swallow the answers). Only the questions run there, through
  textual-image's own terminal helpers (``textual_image._terminal``): importing textual-
  image's renderables would also import numpy and PIL, competing with the app's imports.

textual-image decides its protocol when ``textual_image.renderable`` is first imported,
asking the terminal right then if ``sys.__stdout__`` is a terminal, and
``textual_image.widget`` asks for the cell size on import. Asked after Textual starts, the
answers would reach Textual's key reader as keystrokes (and the questions are not
needed). So the widget module is imported on the first picture (``_widget_module``) with
the cell size already cached (``get_cell_size``'s documented one-time cache, seeded from
the window-size ioctl when nobody asked) and ``sys.__stdout__`` swapped for a non-terminal
for the length of the import: textual-image then skips its questions (its auto choice
becomes the plain-text one, which is never used: ``picture`` names its class). The swap
happens before any picture exists, so no image output can go astray; it is the one switch
textual-image reads, and needs no copy or patch of its code.

The colouring (``heat_image``) uses matplotlib's colormaps: call it in a worker thread.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
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
#: Seconds to wait for each answer, as textual-image waits.
ANSWER_TIMEOUT = 0.1
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


def _ask(question: str, start: str, end: str) -> str:
    """The terminal's answer to ``question`` (from ``start`` to ``end``), "" if none came
    within ANSWER_TIMEOUT (textual-image's helper: cbreak mode, read with a timeout)."""
    from textual_image._terminal import TerminalError, capture_terminal_response

    assert sys.__stdout__ is not None  # checked by _on_a_terminal
    try:
        with capture_terminal_response(start, end, ANSWER_TIMEOUT) as response:
            sys.__stdout__.write(question)
            sys.__stdout__.flush()
    except (TerminalError, TimeoutError, OSError):
        return ""
    return str(response.sequence)[len(start) : -len(end)]


def ask_terminal() -> str:
    """Ask the terminal, as textual-image would on import: its cell size in pixels
    (cached for the pictures), then sixel (a 4 among the DA1 attributes: preferred, as
    WezTerm and Konsole also answer kitty's query but draw only sixel right), then kitty's
    graphics protocol (a query for a 1-pixel image answered OK); half-blocks otherwise."""
    from textual_image._terminal import TerminalError, get_cell_size

    # textual-image logs a warning with a traceback when the size goes unanswered: with no
    # handler anywhere, Python would print it on the terminal (a library's own NullHandler)
    logging.getLogger("textual_image").addHandler(logging.NullHandler())
    # the window-size ioctl, else ESC[16t; a window of no size divides by zero in there
    with contextlib.suppress(TerminalError, OSError, ZeroDivisionError):
        get_cell_size()  # failed: the default size, when pictures are drawn
    if "4" in _ask("\x1b[c", "\x1b[?", "c").split(";"):
        return "sixel"
    query = f"\x1b_Gi={randint(1, 2**32)},s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
    if _ask(query, "\x1b_G", "\x1b\\").rsplit(";", 1)[-1] == "OK":
        return "kitty"
    return "halfcell"


def _detect() -> None:
    global _answer
    try:
        _answer = ask_terminal()
    except Exception:  # a question that fails means no pixels, never a traceback
        _answer = "halfcell"


def start_detection() -> None:
    """Ask the terminal which graphics protocol it speaks, in a thread, so that the answer
    (a few tenths of a second where nothing answers) overlaps the app's imports; nothing
    is asked when the environment tells, or off a terminal."""
    global _detection
    if _detection is not None or _answer is not None or protocol_from_env() is not None:
        return
    if not _on_a_terminal() or "textual_image.renderable" in sys.modules:
        return  # nothing to ask, or textual-image has already asked
    _detection = threading.Thread(target=_detect, name="kdtui-pictures", daemon=True)
    _detection.start()


def prepare() -> None:
    """Wait for the terminal's answer (asking now if nobody asked): call before the app
    starts, since Textual's keyboard reader would swallow the answer."""
    start_detection()
    if _detection is not None:
        _detection.join()


def _seed_cell_size() -> None:
    """Cache the cell size where nobody asked the terminal: from the window-size ioctl,
    else textual-serve's variables, else textual-image's default (a VT340's 10 × 20)."""
    from textual_image._terminal import CellSize, get_cell_size, get_tiocgwinsz

    if hasattr(get_cell_size, "_result"):
        return
    width = height = 0
    if sys.__stdout__ is not None and sys.__stdout__.isatty():
        with contextlib.suppress(OSError):
            rows, columns, pixels_wide, pixels_high = get_tiocgwinsz()
            if rows and columns:
                width, height = pixels_wide // columns, pixels_high // rows
    if not (width and height):
        w, h = os.environ.get("TEXTUAL_CELL_WIDTH", ""), os.environ.get("TEXTUAL_CELL_HEIGHT", "")
        width, height = (int(w), int(h)) if w.isdigit() and h.isdigit() else (10, 20)
    get_cell_size._result = CellSize(width, height)  # type: ignore[attr-defined]


def _widget_module() -> ModuleType:
    """``textual_image.widget``, imported without a question to the terminal (see the
    module's docstring)."""
    done = sys.modules.get("textual_image.widget")
    if done is not None:
        return done
    with _import_lock:
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
