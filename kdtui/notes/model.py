"""The notes' vocabulary: what a result block is made of, and the numbers in it.

Shared by the parser, fill and the outside results; imports nothing of the package.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from kdtui.results import scales

DEFAULT_LABELS = (
    "Average",
    "Avg",
    "Mean",
    "평균",
    "平均",
    "平均值",
    "Moyenne",
    "Media",
    "Promedio",
    "Mittelwert",
    "Durchschnitt",
    "Среднее",
)
EXTERNAL_DATASET = "external"

#: A number as notes authors write one: "68.2", ".682", "6.8e1", "68.2 %".
NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*%?", re.ASCII)


class NotesError(Exception):
    """A notes file that cannot be read or used as asked."""


def parse_number(text: str) -> float | None:
    """The number a notes author wrote ("68.2", "0.682", "68.2 %"), or None. Stricter than
    ``float``: "1_0", "nan" and "inf" are no accuracies anyone writes."""
    text = text.strip()
    return float(text.rstrip("% \t")) if NUMBER.fullmatch(text) else None


def accuracy_problem(value: float, text: str | None = None) -> str | None:
    """Why ``value`` cannot be stored as an accuracy (None when it can): a nan or inf
    (``1e400`` overflows) would poison every statistic of its group, and a value outside
    [0, 100] is no accuracy, whether written in % or as a fraction."""
    shown = text if text is not None else f"{value:g}"
    if not math.isfinite(value):
        return f"{shown} is not a finite number"
    if not 0 <= value <= 100:
        return f"{shown} is not an accuracy (0 to 100, in % or as a fraction)"
    return None


@dataclass(frozen=True)
class Slot:
    """Where a value sits in the file, or goes: ``[start, end)`` in bytes holds the old value
    (empty when there is none), and ``pad`` is written before a value put in an empty slot."""

    start: int
    end: int
    pad: str = ""


@dataclass(frozen=True)
class Item:
    """One item of a result list: a seed (number or blank) or the average line."""

    kind: Literal["number", "blank", "average"]
    line: int  # 1-based
    text: str  # the number as written, or the average line's old value ("" if none)
    slot: Slot

    @property
    def value(self) -> float | None:
        return parse_number(self.text) if self.kind == "number" else None


@dataclass(frozen=True)
class Block:
    """A configuration's results as written in the notes."""

    name: str  # the title; qualified by its section when the title repeats in the file
    title: str
    line: int  # 1-based line of the title
    span: tuple[int, int]  # bytes from the title's line to the end of the last item's line
    seeds: tuple[Item, ...]  # in order; a seed's index is its position here
    average: Item | None

    @property
    def numbers(self) -> list[float]:
        return [s.value for s in self.seeds if s.value is not None]

    @property
    def blanks(self) -> int:
        return sum(s.kind == "blank" for s in self.seeds)

    @property
    def mixed_scale(self) -> str | None:
        """Why the numbers look like fractions and percentages side by side (0.69 next to
        68.2), which would make their average mean nothing; None when they agree."""
        first = {}  # the first item written on each scale
        for s in self.seeds:
            if s.value is not None:
                for scale in scales([s.value]):
                    first.setdefault(scale, s.text)
        if len(first) == 2:
            return (
                f"{first['fraction']} next to {first['percent']}: fractions and percentages mixed?"
            )
        return None


@dataclass(frozen=True)
class Skipped:
    """A list that looked like results but is not a result block, and why."""

    line: int
    title: str | None
    reason: str


@dataclass(frozen=True)
class SectionItem:
    text: str
    done: bool
    line: int
    children: tuple[SectionItem, ...] = ()


def heading_key(text: str) -> str:
    """A heading as ``--section`` matches it: no ``#`` marks, any case."""
    return text.strip().lstrip("#").strip().casefold()
