"""Pictures in the terminal: arrays (attention maps, GAF images) coloured into images, and
the widget that shows them — with real pixels where the terminal speaks a graphics
protocol (kitty's, sixel), in coloured half-block cells otherwise (tmux, plain SSH).

The drawing is textual-image's: its ``Image`` widget picks the protocol. It learns which
one by asking the terminal, and that answer can only be read before Textual starts
reading the keyboard: ``start_detection`` asks in a thread while the app's modules load
(``kdtui`` calls it before importing the app) and ``prepare`` waits for the answer just
before the app starts. ``KDTUI_PICTURES`` = ``halfcell``, ``sixel`` or ``kitty`` forces a
protocol when a terminal answers wrongly (tests force ``halfcell``).

The colouring (``heat_image``) uses matplotlib's colormaps: call it in a worker thread.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image as PILImage
    from textual.widget import Widget

ENV = "KDTUI_PICTURES"
MODES = ("auto", "halfcell", "sixel", "kitty")
#: Height, in pixels, of the strip that shows a 1-D map (a signal model's attention).
STRIP_ROWS = 8

_detection: threading.Thread | None = None


def mode() -> str:
    """The protocol asked for in ``KDTUI_PICTURES`` (``auto``: the terminal's own)."""
    asked = os.environ.get(ENV, "auto").strip().lower()
    return asked if asked in MODES else "auto"


def _ask_terminal() -> None:
    import textual_image.widget  # noqa: F401  (importing it asks the terminal, once)


def start_detection() -> None:
    """Ask the terminal which graphics protocol it speaks, in a thread, so that the answer
    (up to a few tenths of a second where nothing answers) overlaps the app's imports."""
    global _detection
    if _detection is not None or "textual_image.widget" in sys.modules:
        return
    tty = all(s is not None and s.isatty() for s in (sys.__stdin__, sys.__stdout__))
    if not tty:
        return  # nothing to ask: the import is quick and quiet, whenever it happens
    _detection = threading.Thread(target=_ask_terminal, name="kdtui-pictures", daemon=True)
    _detection.start()


def prepare() -> None:
    """Wait for the terminal's answer (asking now if nobody asked): call before the app
    starts, since Textual's keyboard reader would swallow the answer."""
    start_detection()
    if _detection is not None:
        _detection.join()


def picture(image: PILImage, width: int, height: int) -> Widget:
    """A widget showing ``image`` stretched to ``width`` × ``height`` cells."""
    from textual_image import widget

    kind = {
        "halfcell": widget.HalfcellImage,
        "sixel": widget.SixelImage,
        "kitty": widget.TGPImage,
    }.get(mode(), widget.Image)
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
