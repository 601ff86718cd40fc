"""Markdown notes ⇄ the store: result blocks, their averages, outside results, TODO sections.

A *result block* is a title (a list item, a heading, or the line right above a list) and a
list under it whose items are one number each, one per seed (some still blank), usually
ending in ``<label> :`` where the average goes. Notes are typed by hand and mix prose,
images and raw HTML lists, so the parser records the exact byte span of every value and
``fill`` rewrites those bytes only: the rest of the file comes back byte for byte.

Outside results live in the store as ordinary finished runs (source ``notes:<file>:<line>``
or ``record``), each with a run folder, so results tables and a rebuilt index see them like
any other run. Nothing here imports torch or typer.
"""

from __future__ import annotations

import bisect
import hashlib
import html
import json
import math
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kdtui.results import Stats, group_rows, scales
from kdtui.store import (
    Store,
    atomic_write,
    close_names,
    fold_event,
    initial_summary,
    names_key,
)

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

_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*%?", re.ASCII)
_MD_ITEM = re.compile(r"(?P<indent>[ \t]*)(?P<marker>[-*+]|\d{1,9}[.)])(?P<gap>[ \t]|$)")
_HEADING = re.compile(r" {0,3}(?P<hashes>#{1,6})(?:[ \t]+(?P<text>.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r" {0,3}(?:`{3,}|~{3,})")
_LIST_TAG = re.compile(r"<(?P<close>/?)(?P<tag>ul|ol|li)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_CHECKBOX = re.compile(r"\[(?P<mark>[ xX])\]\s*")


class NotesError(Exception):
    """A notes file that cannot be read or used as asked."""


def parse_number(text: str) -> float | None:
    """The number a notes author wrote ("68.2", "0.682", "68.2 %"), or None. Stricter than
    ``float``: "1_0", "nan" and "inf" are no accuracies anyone writes."""
    text = text.strip()
    return float(text.rstrip("% \t")) if _NUMBER.fullmatch(text) else None


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


# ---------------------------------------------------------------------- parsed structure


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


@dataclass
class _Item:
    line: int  # 0-based
    start: int  # char offsets of the item's content
    end: int
    html: bool
    gap: bool = True  # a markdown item with a space after its marker
    children: list[_List] = field(default_factory=list)
    after: int = 0  # where the item's own markup ends (HTML)

    def text(self, src: str) -> str:
        return _clean(src[self.start : self.end])


@dataclass
class _List:
    line: int  # 0-based line where the list starts
    items: list[_Item] = field(default_factory=list)


@dataclass
class _Frame:
    """An open HTML list while parsing: its open ``<li>`` and the last one closed."""

    list: _List
    open: _Item | None = None
    last: _Item | None = None


@dataclass
class Notes:
    """A parsed notes file: its result blocks and the result-like lists it skipped."""

    data: bytes
    blocks: list[Block]
    skipped: list[Skipped]
    _doc: _Doc

    def todo_section(self, heading: str) -> list[SectionItem]:
        """The list items under a heading (matched case-insensitively), nested as written."""
        return self._doc.todo_section(heading)


def _clean(raw: str) -> str:
    return html.unescape(_TAG.sub("", raw)).strip()


def heading_key(text: str) -> str:
    """A heading as ``--section`` matches it: no ``#`` marks, any case."""
    return text.strip().lstrip("#").strip().casefold()


# ---------------------------------------------------------------------- the parser


class _Doc:
    """The file split into lines, with headings, fences and every list (markdown or HTML)."""

    def __init__(self, data: bytes):
        try:
            self.src = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotesError(f"not UTF-8 text (byte {exc.start})") from None
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.byte_starts: list[int] = []
        pos, byte = 0, 0
        for chunk in self.src.split("\n"):
            self.starts.append(pos)
            self.ends.append(pos + len(chunk.rstrip("\r")))
            self.byte_starts.append(byte)
            pos += len(chunk) + 1
            byte += len(chunk.encode()) + 1
        if self.src.startswith("\ufeff"):  # a byte-order mark is not part of line 1's text
            self.starts[0], self.byte_starts[0] = 1, 3
        self.fenced = self._fences()
        self.headings: dict[int, tuple[int, str]] = {}
        for i in range(len(self.starts)):
            m = None if self.fenced[i] else _HEADING.fullmatch(self.line(i))
            if m:
                self.headings[i] = (len(m["hashes"]), _clean(m["text"] or ""))
        self.html_lines: set[int] = set()
        self.roots = self._html_lists() + self._markdown_lists()

    def line(self, i: int) -> str:
        return self.src[self.starts[i] : self.ends[i]]

    def line_of(self, pos: int) -> int:
        return bisect.bisect_right(self.starts, pos) - 1

    def to_bytes(self, pos: int) -> int:
        i = self.line_of(pos)
        return self.byte_starts[i] + len(self.src[self.starts[i] : pos].encode())

    def _fences(self) -> list[bool]:
        fenced, inside = [], None
        for i in range(len(self.starts)):
            m = _FENCE.match(self.line(i))
            if inside is None and m:
                inside = m.group().strip()[0]
                fenced.append(True)
            else:
                fenced.append(inside is not None)
                if inside and m and m.group().strip()[0] == inside:
                    inside = None
        return fenced

    def _html_lists(self) -> list[_List]:
        """HTML lists, tag by tag. A nested list may sit inside its ``<li>`` or, as notes
        often have it, right after the ``</li>``: either way it belongs to that item. An
        item's text ends at the next list tag or at the end of its line."""
        loose = _Frame(_List(line=-1))  # <li> items outside any <ul>/<ol>
        roots, stack = [loose.list], [loose]
        for m in _LIST_TAG.finditer(self.src):
            line = self.line_of(m.start())
            if self.fenced[line]:
                continue
            self.html_lines.add(line)
            top = stack[-1]
            if top.open is not None and top.open.end < 0:
                top.open.end = top.open.after = min(m.start(), self.ends[top.open.line])
            tag, close = m["tag"].lower(), bool(m["close"])
            if tag == "li" and not close:
                item = _Item(line, m.end(), -1, html=True)
                top.list.items.append(item)
                top.last, top.open = top.open or top.last, item
            elif tag == "li" and top.open is not None:
                top.open.after = m.end()
                top.last, top.open = top.open, None
            elif tag != "li" and not close:
                new = _List(line)
                owner = top.open
                if owner is None and top.last is not None:
                    between = _clean(self.src[top.last.after : m.start()])
                    owner = None if between else top.last
                (owner.children if owner else roots).append(new)
                stack.append(_Frame(new))
            elif tag != "li" and len(stack) > 1:
                stack.pop()
        for frame in stack:
            if frame.open is not None and frame.open.end < 0:
                frame.open.end = self.ends[frame.open.line]
        return [r for r in roots if r.items]

    def _markdown_lists(self) -> list[_List]:
        """Markdown bullet lists; an item nests under the nearest item indented less."""
        roots: list[_List] = []
        root: _List | None = None
        stack: list[tuple[int, _Item]] = []
        for i in range(len(self.starts)):
            text = self.line(i)
            m = None if (self.fenced[i] or i in self.html_lines) else _MD_ITEM.match(text)
            if m is None:
                indented = text[:1] in (" ", "\t")
                if text.strip() and not (indented and root is not None):
                    root, stack = None, []
                continue
            indent = len(m["indent"].expandtabs(4))
            item = _Item(i, self.starts[i] + m.end(), self.ends[i], html=False, gap=bool(m["gap"]))
            if root is None:
                root = _List(i)
                roots.append(root)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            if stack:
                parent = stack[-1][1]
                if not parent.children:
                    parent.children.append(_List(i))
                parent.children[-1].items.append(item)
            else:
                root.items.append(item)
            stack.append((indent, item))
        return roots

    # ------------------------------------------------------------------ result blocks

    def context_title(self, lst: _List) -> tuple[str, int] | None:
        """A top-level list's title: the heading or text line right above it, or the
        heading above the blank lines before it."""
        i = lst.line - 1
        if i >= 0 and self.line(i).strip() and i not in self.html_lines:
            if i in self.headings:
                return (self.headings[i][1], i) if self.headings[i][1] else None
            text = _clean(self.line(i))
            is_item = _MD_ITEM.match(self.line(i))
            if text and not text.startswith("![") and not is_item and not self.fenced[i]:
                return text, i
            return None
        while i >= 0 and not self.line(i).strip():
            i -= 1
        if i in self.headings and self.headings[i][1]:
            return self.headings[i][1], i
        return None

    def section_of(self, line: int) -> str | None:
        """The heading a title sits under (a heading title's parent heading)."""
        level = self.headings[line][0] if line in self.headings else 7
        for i in range(line - 1, -1, -1):
            if i in self.headings and self.headings[i][0] < level:
                return self.headings[i][1]
        return None

    def slot(self, start: int, end: int, *, keep_space: bool, pad: str) -> Slot:
        """The value region ``[start, end)`` stops at a tag or line end. An old value is
        replaced exactly; a new one goes after one space (``keep_space``) or ``pad``."""
        stop = start
        while stop < end and self.src[stop] not in "<\n":
            stop += 1
        region = self.src[start:stop]
        value = region.strip()
        if value:
            a = start + len(region) - len(region.lstrip())
            return Slot(self.to_bytes(a), self.to_bytes(a + len(value)))
        if region and keep_space:
            return Slot(self.to_bytes(start + 1), self.to_bytes(start + 1))
        return Slot(self.to_bytes(start), self.to_bytes(start), "" if region else pad)

    def classify(self, lst: _List, average: re.Pattern[str]) -> list[Item] | str | None:
        """The list's items as seeds and an average, or why it is not a result list (a
        string), or None for an ordinary list with neither numbers nor an average line."""
        out: list[Item] = []
        problem = None
        for k, it in enumerate(lst.items, 1):
            text, line = it.text(self.src), it.line + 1
            m = average.match(self.src, it.start, it.end)
            if it.children:
                problem = problem or f"item {k} has nested items: {text[:60]!r}"
            elif _NUMBER.fullmatch(text):
                slot = self.slot(it.start, it.end, keep_space=it.html, pad="")
                out.append(Item("number", line, text, slot))
            elif m:
                slot = self.slot(m.end(), it.end, keep_space=True, pad=" ")
                old = self.src[m.end() : it.end].split("<")[0]
                out.append(Item("average", line, _clean(old), slot))
            elif not text:
                pad = "" if it.gap else " "
                slot = self.slot(it.start, it.end, keep_space=it.html, pad=pad)
                out.append(Item("blank", line, "", slot))
            else:
                problem = problem or f"item {k} is not a number: {text[:60]!r}"
        kinds = [i.kind for i in out]
        if "number" not in kinds and "average" not in kinds:
            return None
        if problem:
            return problem
        if kinds.count("average") > 1:
            return "more than one average line"
        if "average" in kinds and kinds[-1] != "average":
            return "the average line is not the last item"
        return out

    def lists_with_titles(self) -> Iterable[tuple[_List, tuple[str, int] | None]]:
        """Every list in the file with its title: the owning item, or the context above."""
        todo: list[tuple[_List, tuple[str, int] | None]] = [
            (r, self.context_title(r) if r.line >= 0 else None) for r in self.roots
        ]
        while todo:
            lst, title = todo.pop()
            yield lst, title
            for it in lst.items:
                for child in it.children:
                    todo.append(
                        (child, (it.text(self.src), it.line) if it.text(self.src) else None)
                    )

    def results(self, labels: Iterable[str]) -> tuple[list[Block], list[Skipped]]:
        average = _average_pattern(labels)
        found: list[tuple[str, int, list[Item], _List]] = []
        skipped = []
        for lst, title in self.lists_with_titles():
            verdict = self.classify(lst, average)
            if verdict is None:
                continue
            if isinstance(verdict, str) or title is None:
                reason = verdict if isinstance(verdict, str) else "no title above the list"
                skipped.append(Skipped(lst.items[0].line + 1, title and title[0], reason))
                continue
            found.append((title[0], title[1], verdict, lst))
        found.sort(key=lambda f: f[1])
        names = self._names([(t, line) for t, line, _, _ in found])
        blocks = []
        for (title, line, items, lst), name in zip(found, names, strict=True):
            last = lst.items[-1].line
            span = (self.byte_starts[line], self.to_bytes(self.ends[last]))
            seeds = tuple(i for i in items if i.kind != "average")
            avg = next((i for i in items if i.kind == "average"), None)
            blocks.append(Block(name, title, line + 1, span, seeds, avg))
        return blocks, sorted(skipped, key=lambda s: s.line)

    def _names(self, titles: list[tuple[str, int]]) -> list[str]:
        """Group names: the title, or ``section / title`` (then ``#k``) where it repeats."""
        count = Counter(title for title, _ in titles)
        names = [
            f"{self.section_of(line) or '?'} / {title}" if count[title] > 1 else title
            for title, line in titles
        ]
        seen: Counter[str] = Counter()
        out = []
        for name in names:
            seen[name] += 1
            out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
        return out

    # ------------------------------------------------------------------ TODO sections

    def todo_section(self, heading: str) -> list[SectionItem]:
        wanted = heading_key(heading)
        hits = [i for i, (_, text) in self.headings.items() if heading_key(text) == wanted]
        if not hits:
            known = ", ".join(repr(t) for _, t in list(self.headings.values())[:10]) or "none"
            raise NotesError(f"no heading {heading!r} (headings: {known})")
        first = min(hits)
        level = self.headings[first][0]
        end = next(
            (i for i in sorted(self.headings) if i > first and self.headings[i][0] <= level),
            len(self.starts),
        )

        def convert(it: _Item) -> SectionItem | None:
            text = it.text(self.src)
            m = _CHECKBOX.match(text)
            children = tuple(
                t for lst in it.children for c in lst.items if (t := convert(c)) is not None
            )
            if m:
                text = text[m.end() :]
            if not text:
                return None
            return SectionItem(text, bool(m and m["mark"] in "xX"), it.line + 1, children)

        items = [it for r in self.roots for it in r.items if first < it.line < end]
        return [t for it in sorted(items, key=lambda i: i.line) if (t := convert(it))]


def _average_pattern(labels: Iterable[str]) -> re.Pattern[str]:
    """``<label> :`` at the start of an item, with optional emphasis or tags around the
    label (``**Mean**:``) and a few words after it (``Average acc (3 seeds) :``)."""
    alts = "|".join(
        re.escape(x)
        for x in sorted({x.strip() for x in labels if x.strip()}, key=len, reverse=True)
    )
    if not alts:
        raise NotesError("no average labels")
    markup = r"(?:<[^>]*>|[*_])*"
    return re.compile(
        rf"\s*{markup}\s*(?:{alts})[^:：\n<]{{0,30}}?{markup}\s*[:：](?:</[^>]*>|[*_])*",
        re.IGNORECASE,
    )


def parse(data: bytes, labels: Iterable[str] = DEFAULT_LABELS) -> Notes:
    """Result blocks of a notes file, with the byte spans of every value."""
    doc = _Doc(data)
    blocks, skipped = doc.results(labels)
    return Notes(data, blocks, skipped, doc)


def read_notes(path: Path, labels: Iterable[str] = DEFAULT_LABELS) -> Notes:
    """``parse`` of a file, with one-line errors for what a user can get wrong."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotesError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NotesError(f"{path}: is a folder, not a notes file") from None
    except OSError as exc:
        raise NotesError(f"{path}: {exc.strerror}") from None
    try:
        return parse(data, labels)
    except NotesError as exc:
        raise NotesError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------- fill


def format_average(values: list[float], precision: int = 4) -> str:
    """``mean ± std (n=k)`` with the sample std; a single value has no spread to show.
    A nan or inf is left out (``n`` counts the values used); with none left, ``–``."""
    s = Stats.of(values)
    if s.mean is None:
        return "–"
    if s.std is None:
        return f"{s.mean:.{precision}f} (n={s.n})"
    return f"{s.mean:.{precision}f} ± {s.std:.{precision}f} (n={s.n})"


@dataclass(frozen=True)
class Filled:
    """What ``fill`` did to one block."""

    block: Block
    seeds: tuple[tuple[int, str, str], ...]  # (seed index, value written, where it came from)
    average: str | None  # the average line's new value, or None when left alone
    note: str  # why a block was left alone, or ""
    changed: bool
    left_out: tuple[str, ...] = ()  # numbers as written that the average leaves out (inf)


def _fractions(values: list[float]) -> bool | None:
    """Whether accuracies are written as fractions (0.6821) rather than percentages."""
    return all(abs(v) <= 1 for v in values) if values else None


def _like_block(value: float, block: Block, precision: int) -> str:
    """A store value written the way the block writes its numbers: percentages stay
    percentages, fractions fractions, and a ``%`` sign where the others have one."""
    fractions = _fractions(block.numbers)
    if fractions is not None and fractions != _fractions([value]):
        value = value / 100 if fractions else value * 100
    written = [s.text for s in block.seeds if s.kind == "number"]
    percent = bool(written) and all(t.endswith("%") for t in written)
    return f"{value:.{precision}f}" + ("%" if percent else "")


def fill(
    notes: Notes,
    *,
    precision: int = 4,
    seed_values: Mapping[str, Mapping[int, tuple[float, str]]] | None = None,
) -> tuple[bytes, list[Filled]]:
    """The notes with blank seeds filled from ``seed_values`` (block name → seed index →
    (value, origin)) and every average line set to ``mean ± std (n=k)``. Only the value
    slots change; a block with no numbers is left alone, so is one without an average line."""
    edits: list[tuple[Slot, str]] = []
    report = []
    for block in notes.blocks:
        wanted = (seed_values or {}).get(block.name, {})
        written: list[tuple[int, str, str]] = []
        values = list(block.numbers)
        for k, seed in enumerate(block.seeds):
            # "nan" written into the notes would no longer parse as a number
            if seed.kind == "blank" and k in wanted and math.isfinite(wanted[k][0]):
                value, origin = wanted[k]
                text = _like_block(value, block, precision)
                written.append((k, text, origin))
                values.append(float(text.rstrip("%")))
                edits.append((seed.slot, text))
        note, avg = "", None
        if not values:
            note = "no numbers yet, left alone"
        elif not any(math.isfinite(v) for v in values):
            note = "no finite numbers, left alone"
        elif block.average is None:
            note = "no average line"
        else:
            avg = format_average(values, precision)
            if avg != block.average.text:
                edits.append((block.average.slot, avg))
        changed = bool(written) or (avg is not None and avg != block.average.text)
        left_out = tuple(
            s.text for s in block.seeds if s.value is not None and not math.isfinite(s.value)
        )
        report.append(Filled(block, tuple(written), avg, note, changed, left_out))
    data = notes.data
    for slot, text in sorted(edits, key=lambda e: e[0].start, reverse=True):
        data = data[: slot.start] + (slot.pad + text).encode() + data[slot.end :]
    return data, report


def load_mapping(path: Path) -> dict[str, str]:
    """A JSON object: block name in the notes → store group name or group key."""
    try:
        mapping = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotesError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise NotesError(f"{path}: not a JSON mapping ({exc})") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise NotesError(f'{path}: expected {{"block name": "group name or key", ...}}')
    return mapping


def values_from_store(
    store: Store,
    path: Path,
    notes: Notes,
    mapping: Mapping[str, str] | None = None,
    metric: Literal["best", "last"] = "best",
) -> tuple[dict[str, dict[int, tuple[float, str]]], list[str]]:
    """For each block with blank seeds, the finished runs of its group in the store, by
    seed (seed k fills blank item k). The group is the one named like the block (or given
    by ``mapping``); this file's own imported runs do not count. Returns the values and one
    line per problem: a block that could not be matched, a ``mapping`` entry naming no
    block of the notes or no group of the store, a nan or inf seed (left blank)."""
    everything = store.runs()
    own = _source_prefix(path)
    runs = [r for r in everything if not str(r.get("source", "")).startswith(own)]
    rows = group_rows(runs)
    by_run = {
        (r["group_key"], r.get("seed")): r["run_id"] for r in runs if r.get("status") == "done"
    }
    values: dict[str, dict[int, tuple[float, str]]] = {}
    problems = []
    # A typo in the mapping would otherwise only show as a blank that stays blank.
    known = {r.get("name") for r in everything} | {r.get("group_key") for r in everything}
    unknown = sorted({v for v in (mapping or {}).values() if v not in known})
    for target in unknown:
        problems.append(f"--map names group {target!r}, which is nowhere in the store")
    for name in sorted(set(mapping or {}) - {b.name for b in notes.blocks}):
        problems.append(f"--map names block {name!r}, which is not in the notes")
    for block in notes.blocks:
        if not block.blanks:
            continue
        target = (mapping or {}).get(block.name, block.name)
        keys = {r.get("group_key") for r in runs if r.get("name") == target}
        keys |= {r.get("group_key") for r in runs if r.get("group_key") == target}
        if len(keys) > 1:
            problems.append(
                f"line {block.line} {block.name}: {target!r} matches {len(keys)} groups ({', '.join(sorted(k[:12] for k in keys))}); pick one with --map"
            )
            continue
        row = next((r for r in rows if r.group_key in keys), None)
        if row is None:
            if block.name in (mapping or {}) and target not in unknown:
                problems.append(f"line {block.line} {block.name}: no group {target!r} in the store")
            continue
        by_seed = row.best_by_seed if metric == "best" else row.last_by_seed
        blank = {k for k, s in enumerate(block.seeds) if s.kind == "blank"}
        for seed in sorted(blank & {k for k, v in by_seed.items() if not math.isfinite(v)}):
            problems.append(
                f"line {block.line} {block.name}: seed {seed} is {by_seed[seed]} in the store, left blank"
            )
        values[block.name] = {
            seed: (value, by_run.get((row.group_key, seed), row.group_key))
            for seed, value in by_seed.items()
            if math.isfinite(value)
        }
    return values, problems


# ---------------------------------------------------------------------- outside results


def _source_prefix(path: Path) -> str:
    return f"notes:{path.resolve()}:"


def group_key_for(name: str) -> str:
    """The group of outside results with this name: stable across imports and machines."""
    return "notes-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def _slug(text: str, size: int) -> str:
    """A run-id-safe piece of a title (ASCII letters, digits, . _ + -)."""
    return re.sub(r"[^A-Za-z0-9._+]+", "-", text).strip("-._+")[:size].strip("-._+")


def _external_run(
    run_id: str,
    *,
    name: str,
    group_key: str,
    seed: int,
    value: float,
    source: str,
    created: float,
    label: str,
    loss: str = "–",
    dataset: str = EXTERNAL_DATASET,
    **extra: Any,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The frozen spec, end event and index summary of one outside result. The summary is
    built exactly as a rebuild of the index from the run folder would build it."""
    spec = {
        "run_id": run_id,
        "seed": seed,
        "group_key": group_key,
        "created": created,
        "label": label,
        "loss_label": loss,
        "needs": [],
        "source": source,
        "experiment": {"name": name, "epochs": None, "data": {"dataset": dataset}},
        "external": extra,
    }
    event = {
        "type": "end",
        "status": "done",
        "best_acc": value,
        "last_acc": value,
        "time": time.time(),
    }
    summary = initial_summary(spec)
    fold_event(summary, event)
    return spec, event, summary


def _write_runs(
    store: Store, runs: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]
) -> None:
    """Folders first (spec + the one end event), then the index: a crash in between leaves
    folders that ``kdtui doctor`` indexes."""
    for spec, event, _ in runs:
        run_dir = store.run_dir(spec["run_id"])
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "spec.json", json.dumps(spec, indent=2).encode())
        atomic_write(run_dir / "events.jsonl", json.dumps(event).encode() + b"\n")
    store.put_runs([summary for _, _, summary in runs])


@dataclass(frozen=True)
class Imported:
    added: int
    changed: int
    unchanged: int
    removed: int
    skipped: tuple[Skipped, ...] = ()  # numbers not imported, and why


def _written_as(value: Any, item: Item) -> bool:
    """Whether ``value`` is the number ``item`` holds, to the decimals written there."""
    if not isinstance(value, int | float) or item.value is None:
        return False
    digits = item.text.rstrip("% \t").partition(".")[2]
    return round(value, len(digits)) == item.value


def import_notes(store: Store, path: Path, notes: Notes) -> Imported:
    """Every number of every block becomes a finished run of the block's group. Run ids
    come from the file, the block name and the seed index, so importing again updates
    those runs, and runs of this file whose number is gone (blanked, block renamed) go.

    A number is skipped (and reported) when it is no accuracy (nan, inf, outside 0–100),
    or when the store already holds that seed of the group from elsewhere (a recorded
    value, a trained run, another file): importing it would count the seed twice. The
    value ``fill --from-store`` wrote there is that seed itself: counted unchanged."""
    prefix = _source_prefix(path)
    runs = store.runs()
    existing = {r["run_id"]: r for r in runs if str(r.get("source", "")).startswith(prefix)}
    elsewhere: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in sorted(runs, key=lambda r: r.get("created") or 0):  # the latest one is named
        if r.get("status") == "done" and r["run_id"] not in existing:
            elsewhere[(r.get("group_key"), r.get("seed"))] = r
    file_hash = hashlib.sha256(str(path.resolve()).encode())
    created = time.time()
    writes, wanted, unchanged = [], set(), 0
    skipped: list[Skipped] = []
    for block in notes.blocks:
        tag = file_hash.copy()
        tag.update(b"\0" + block.name.encode())
        stem = "-".join(p for p in ("notes", _slug(block.name, 40), tag.hexdigest()[:10]) if p)
        group_key = group_key_for(block.name)
        for seed, item in enumerate(block.seeds):
            if item.value is None:
                continue
            problem = accuracy_problem(item.value, item.text)
            if problem:
                skipped.append(Skipped(item.line, block.name, f"seed {seed}: {problem}"))
                continue
            other = elsewhere.get((group_key, seed))
            if other is not None and _written_as(other.get("best_acc"), item):
                unchanged += 1  # the value `fill --from-store` wrote here: nothing to say
                continue
            if other is not None:
                reason = (
                    f"seed {seed} of {block.name} is already in the store as run {other['run_id']}"
                )
                skipped.append(Skipped(item.line, None, reason))
                continue
            run_id = f"{stem}-s{seed}"
            wanted.add(run_id)
            old = existing.get(run_id)
            source = f"{prefix}{item.line}"
            created += 1e-6  # keeps the file's order when sorting by creation time
            if old and (old.get("best_acc"), old.get("source"), old.get("name")) == (
                item.value,
                source,
                block.name,
            ):
                unchanged += 1
                continue
            writes.append(
                _external_run(
                    run_id,
                    name=block.name,
                    group_key=group_key,
                    seed=seed,
                    value=item.value,
                    source=source,
                    created=old["created"] if old else created,
                    label=f"from {path.name}",
                    file=str(path.resolve()),
                    line=item.line,
                    text=item.text,
                )
            )
    _write_runs(store, writes)
    gone = sorted(set(existing) - wanted)
    if gone:
        store.delete_runs(gone)
        for run_id in gone:
            shutil.rmtree(store.run_dir(run_id), ignore_errors=True)
    added = sum(spec["run_id"] not in existing for spec, _, _ in writes)
    return Imported(added, len(writes) - added, unchanged, len(gone), tuple(skipped))


def record(
    store: Store,
    group: str,
    value: float,
    *,
    seed: int | None = None,
    note: str | None = None,
    force: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """Add one outside result by hand to the group named (or keyed) ``group``: an existing
    group keeps its labels; a new name starts an outside group like an imported block.
    Recording the same group and seed again replaces the value. Returns the run summary and
    the warnings a user should see: a new group whose name looks like an existing one (a
    typo?), a value put beside seeds that kdtui trained. A value that is no accuracy (nan,
    inf, outside 0–100), or on another scale (percent or fraction) than the group's unless
    ``force``, is refused with a NotesError."""
    problem = accuracy_problem(value)
    if problem:
        raise NotesError(problem)
    runs = store.runs()
    keys = sorted(
        {
            r["group_key"]
            for r in runs
            if group == r.get("name") or names_key(group, r.get("group_key") or "")
        }
    )
    if len(keys) > 1:
        raise NotesError(
            f"{group!r} names {len(keys)} groups ({', '.join(k[:12] for k in keys)}); give its group key instead"
        )
    key = keys[0] if keys else group_key_for(group)
    members = [r for r in runs if r.get("group_key") == key]
    warnings = []
    if not members and (close := close_names(group, runs)):
        warnings.append(f"{group!r} is a new group (close: {', '.join(close)})")
    if seed is None and any(r.get("source", "kdtui") == "kdtui" for r in members):
        warnings.append(f"{group!r} has runs trained by kdtui: this value joins their mean")
    if seed is None:
        used = {r.get("seed") for r in members}
        seed = next(s for s in range(len(used) + 1) if s not in used)
    replaced = [r for r in members if r.get("seed") == seed and r.get("source") == "record"]
    if replaced and replaced[0].get("best_acc") != value:
        warnings.append(
            f"seed {seed} was {replaced[0].get('best_acc')} (recorded before): replaced"
        )
    held = [r for r in members if r.get("seed") == seed and r.get("source") != "record"]
    if held:  # only a value recorded by hand is replaced by another
        raise NotesError(
            f"seed {seed} of {group!r} is run {held[0]['run_id']} "
            f"(from {held[0].get('source')}); record another seed"
        )
    theirs = scales(
        r["best_acc"]
        for r in members
        if r.get("status") == "done" and r.get("best_acc") is not None and r["seed"] != seed
    )
    mine = scales([value])
    if not force and mine and theirs and mine.isdisjoint(theirs):
        # 0.7 beside 70s would make the group's mean mean nothing
        kind, other = (
            ("fractions", value / 100) if "fraction" in theirs else ("percentages", value * 100)
        )
        raise NotesError(
            f"the other results of {group!r} are {kind}: write {other:g}, or --force for {value:g}"
        )
    like = max(members, key=lambda r: r.get("created", 0)) if members else {}
    name = like.get("name", group)
    run_id = "-".join(p for p in ("record", _slug(name, 40), key[-10:], f"s{seed}") if p)
    run = _external_run(
        run_id,
        name=name,
        group_key=key,
        seed=seed,
        value=value,
        source="record",
        created=time.time(),
        label=like.get("label") or "recorded by hand",
        loss=like.get("loss") or "–",
        dataset=like.get("dataset") or EXTERNAL_DATASET,
        note=note,
    )
    _write_runs(store, [run])
    return run[2], warnings


# ---------------------------------------------------------------------- TODO import


def import_todos(
    store: Store, path: Path, section: str, items: list[SectionItem]
) -> tuple[int, int]:
    """One TODO per top-level item of a notes section; nested items go into its text
    (``parent — child; child (grandchild)``), as the checklist is flat. Each TODO carries an
    ``import_key`` (file, section, item text), so importing again skips the items already
    there, even if they were ticked or edited in kdtui since. Returns (added, skipped)."""
    known = {t.get("import_key") for t in store.todos()}
    base = f"{path.resolve()}\0{heading_key(section)}"
    added = 0
    for item in items:
        key = hashlib.sha256(f"{base}\0{item.text}".encode()).hexdigest()[:16]
        if key in known:
            continue
        source = f"notes:{path.resolve()}:{item.line}"
        store.add_todo(_with_children(item), done=item.done, source=source, import_key=key)
        known.add(key)
        added += 1
    return added, len(items) - added


def _with_children(item: SectionItem, top: bool = True) -> str:
    """An item's text with its nested items folded in: ``a — b; c (d; e)``."""
    inner = "; ".join(_with_children(c, top=False) for c in item.children)
    if not inner:
        return item.text
    return f"{item.text} — {inner}" if top else f"{item.text} ({inner})"
