"""Matrices as coloured grids of text (Rich ``Text``): a confusion matrix with its counts,
each cell's background the share of its row, and the difference of two confusion
matrices on a diverging scale.

The colours come from matplotlib's colormaps (imported here, lazily): build these in a
worker thread, never in the app's event loop. Empty cells stay uncoloured (a dim dot), so
that a dark terminal is not lit up by a grid of zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

CELL = 5  # characters per cell: four digits and a space
LABEL = 11  # characters of the row labels (class names), a space included
SEQUENTIAL = "Blues"
DIVERGING = "RdBu"
#: Most classes drawn as a grid (13 fit in 80 columns, more scroll sideways); beyond, the
#: grid would be thousands of cells: ``confusion_digest`` lists what matters instead.
MAX_GRID = 30
#: The lightest part of the sequential map is near white: a cell holding anything starts
#: this far into it, so that a small share still shows on a dark background.
FLOOR = 0.2


def abbreviate(name: str, width: int) -> str:
    """``name`` in at most ``width`` characters (cut, with an ellipsis when cut)."""
    return name if len(name) <= width else name[: max(width - 1, 0)] + "…"


def _hex(rgba: Sequence[float]) -> str:
    r, g, b = (round(255 * c) for c in rgba[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def _on(rgba: Sequence[float]) -> str:
    """The text colour that reads on this background (by its luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def short_names(classes: list[str]) -> tuple[list[str], list[str]]:
    """Column and row labels: the names cut to a cell where that keeps them apart, else
    class numbers over the columns and the rows prefixed with them (``class_1``, ...)."""
    cut = [name[: CELL - 1] for name in classes]
    if len(set(cut)) == len(cut):
        return cut, [abbreviate(name, LABEL - 1) for name in classes]
    rows = [abbreviate(f"{i} {name}", LABEL - 1) for i, name in enumerate(classes)]
    return [str(i) for i in range(len(classes))], rows


def _header(columns: list[str], extra: str) -> Text:
    text = Text(" " * LABEL, style="bold")
    for name in columns:
        text.append(f"{name:>{CELL - 1}} ", style="bold")
    text.append(extra, style="bold")
    return text


def confusion_grid(
    counts: list[list[int]], normalised: list[list[float]], classes: list[str]
) -> Text:
    """Rows the true classes, columns the predicted ones: each cell's count on the colour
    of its share of the row; then each class's accuracy (its recall) and how many it has."""
    from matplotlib import colormaps

    cmap = colormaps[SEQUENTIAL]
    columns, rows = short_names(classes)
    text = _header(columns, "   acc    n")
    for i, name in enumerate(rows):
        text.append("\n")
        text.append(f"{name:<{LABEL}}")
        for j, (count, share) in enumerate(zip(counts[i], normalised[i], strict=True)):
            cell = f"{count:>{CELL - 1}} "
            if count:
                rgba = cmap(FLOOR + (1 - FLOOR) * share)
                bold = " bold" if i == j else ""  # the diagonal: the right answers
                text.append(cell, style=f"{_on(rgba)}{bold} on {_hex(rgba)}")
            else:
                text.append(f"{'·':>{CELL - 1}} ", style="dim")
        n = sum(counts[i])
        recall = counts[i][i] / n * 100 if n else None
        text.append(f"{recall:>5.1f}%" if recall is not None else "     –")
        text.append(f" {n:>4}", style="dim")
    text.no_wrap = True
    return text


def confusion_digest(counts: list[list[int]], classes: list[str], top: int = 8) -> Text:
    """For many classes: the most frequent confusions (true → predicted, with their share
    of the true class) and the classes with the lowest accuracy."""
    k = len(classes)
    totals = [sum(row) for row in counts]
    pairs = sorted(
        ((counts[i][j], i, j) for i in range(k) for j in range(k) if i != j and counts[i][j]),
        reverse=True,
    )[:top]
    text = Text(f"{k} classes: too many for a grid here (kdtui analyze draws the matrix)\n")
    text.append("most confused, true → predicted:", style="bold")
    for n, i, j in pairs:
        text.append(f"\n  {abbreviate(classes[i], 20)} → {abbreviate(classes[j], 20)}  {n}")
        text.append(f" ({n / totals[i] * 100:.0f}% of its samples)", style="dim")
    if not pairs:
        text.append("\n  none: every sample is right")
    worst = sorted((counts[i][i] / totals[i], i) for i in range(k) if totals[i])[:top]
    text.append("\nlowest accuracy: ", style="bold")
    text.append(", ".join(f"{abbreviate(classes[i], 20)} {r * 100:.0f}%" for r, i in worst))
    return text


def difference_grid(
    a_counts: list[list[int]],
    b_counts: list[list[int]],
    a_normalised: list[list[float]],
    b_normalised: list[list[float]],
    classes: list[str],
) -> tuple[Text, float]:
    """B − A cell by cell: the difference of counts, coloured by the difference of the
    rows' shares on a diverging scale (blue: B has more, red: B has fewer) that spans
    ± the largest difference; returns the grid and that span (a fraction of a row). The
    change of each class's accuracy is the diagonal's (in the screen's per-class table)."""
    from matplotlib import colormaps

    cmap = colormaps[DIVERGING]
    k = len(classes)
    diffs = [[b_normalised[i][j] - a_normalised[i][j] for j in range(k)] for i in range(k)]
    span = max((abs(d) for row in diffs for d in row), default=0.0)
    columns, rows = short_names(classes)
    text = _header(columns, "")
    for i, name in enumerate(rows):
        text.append("\n")
        text.append(f"{name:<{LABEL}}")
        for j in range(k):
            delta = b_counts[i][j] - a_counts[i][j]
            if delta == 0 and diffs[i][j] == 0:
                text.append(f"{'·':>{CELL - 1}} ", style="dim")
                continue
            rgba = cmap(0.5 + 0.5 * diffs[i][j] / span) if span else cmap(0.5)
            style = f"{_on(rgba)} on {_hex(rgba)}" + (" bold" if i == j else "")
            text.append(f"{delta:>+{CELL - 1}d} ", style=style)
    text.no_wrap = True  # in a table cell too: its columns keep their leading spaces
    return text, span
