"""Text formats that the command line and the app share: accuracies, ages, epochs, counts,
and lists of whole numbers typed by hand. Plain functions, no terminal library, so both
``kdtui ls`` and the app's tables show the same text for the same run."""

from __future__ import annotations

import time
from typing import Any


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 run``, ``2 runs``; ``many`` for irregular plurals."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def fmt_acc(value: Any) -> str:
    """An accuracy as shown in tables; what is not a number (a hand-edited index) as is."""
    if value is None:
        return "–"
    return f"{value:.2f}" if isinstance(value, int | float) else str(value)


def fmt_metric(key: str, value: Any) -> str:
    """A summary field as ``kdtui show`` prints it: accuracies as in the tables, NLL and ECE
    to 3 decimals as in the epoch table (a float32 metric's 71.42857360839844 is noise)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if key == "acc" or key.endswith("_acc"):
        return fmt_acc(value)
    if key in ("nll", "ece", "train_loss"):
        return f"{value:.3f}"
    return str(value)


def fmt_elapsed(seconds: float | None) -> str:
    """A duration as ``H:MM:SS`` (Rich's elapsed column's form); unknown as ``-:--:--``."""
    if seconds is None:
        return "-:--:--"
    s = max(0, int(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def fmt_epoch(run: dict[str, Any]) -> str:
    """Training progress, ``3/30``; an outside result (notes, record) trained nowhere: –."""
    if run.get("source", "kdtui") != "kdtui":
        return "–"
    return f"{run.get('epoch') or 0}/{run.get('epochs') or '?'}"


def fmt_age(ts: float | None, now: float | None = None) -> str:
    """Time since ``ts``, e.g. ``5m``; ``now`` lets the TUI freeze the clock in screenshots."""
    if not ts:
        return "–"
    s = max(0, (time.time() if now is None else now) - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit}"
    return f"{s:.0f}s"


def parse_ints(text: str) -> list[Any]:
    """``"0, 1 2"`` → ``[0, 1, 2]``; what is not a number is passed on as text, so the spec
    validator names the field and the bad value."""
    items = [t for t in text.replace(",", " ").split() if t]
    return [int(t) if t.lstrip("-").isdigit() else t for t in items]
