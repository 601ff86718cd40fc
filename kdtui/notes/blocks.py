"""Result blocks found in a parsed notes file: the lists of one number per seed under a
title, the byte slot of every value (so that ``fill`` rewrites those bytes only), and the
result-like lists that are not blocks, with the reason."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kdtui.notes.markdown import Doc, MdList, clean
from kdtui.notes.model import (
    DEFAULT_LABELS,
    NUMBER,
    Block,
    Item,
    NotesError,
    SectionItem,
    Skipped,
    Slot,
)
from kdtui.notes.todos import section_items


@dataclass
class Notes:
    """A parsed notes file: its result blocks and the result-like lists it skipped."""

    data: bytes
    blocks: list[Block]
    skipped: list[Skipped]
    _doc: Doc

    def todo_section(self, heading: str) -> list[SectionItem]:
        """The list items under a heading (matched case-insensitively), nested as written."""
        return section_items(self._doc, heading)


def parse(data: bytes, labels: Iterable[str] = DEFAULT_LABELS) -> Notes:
    """Result blocks of a notes file, with the byte spans of every value."""
    doc = Doc(data)
    blocks, skipped = _results(doc, labels)
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


def _results(doc: Doc, labels: Iterable[str]) -> tuple[list[Block], list[Skipped]]:
    """Every titled result list as a block, in file order and uniquely named, and the
    result-like lists that are not blocks, with why."""
    average = _average_pattern(labels)
    found: list[tuple[str, int, list[Item], MdList]] = []
    skipped = []
    for lst, title in doc.lists_with_titles():
        verdict = _classify(doc, lst, average)
        if verdict is None:
            continue
        if isinstance(verdict, str) or title is None:
            reason = verdict if isinstance(verdict, str) else "no title above the list"
            skipped.append(Skipped(lst.items[0].line + 1, title and title[0], reason))
            continue
        found.append((title[0], title[1], verdict, lst))
    found.sort(key=lambda f: f[1])
    names = _names(doc, [(t, line) for t, line, _, _ in found])
    blocks = []
    for (title, line, items, lst), name in zip(found, names, strict=True):
        last = lst.items[-1].line
        span = (doc.byte_starts[line], doc.to_bytes(doc.ends[last]))
        seeds = tuple(i for i in items if i.kind != "average")
        avg = next((i for i in items if i.kind == "average"), None)
        blocks.append(Block(name, title, line + 1, span, seeds, avg))
    return blocks, sorted(skipped, key=lambda s: s.line)


def _names(doc: Doc, titles: list[tuple[str, int]]) -> list[str]:
    """Group names: the title, or ``section / title`` (then ``#k``) where it repeats."""
    count = Counter(title for title, _ in titles)
    names = [
        f"{doc.section_of(line) or '?'} / {title}" if count[title] > 1 else title
        for title, line in titles
    ]
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return out


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


def _classify(doc: Doc, lst: MdList, average: re.Pattern[str]) -> list[Item] | str | None:
    """The list's items as seeds and an average, or why it is not a result list (a
    string), or None for an ordinary list with neither numbers nor an average line."""
    out: list[Item] = []
    problem = None
    for k, it in enumerate(lst.items, 1):
        text, line = it.text(doc.src), it.line + 1
        m = average.match(doc.src, it.start, it.end)
        if it.children:
            problem = problem or f"item {k} has nested items: {text[:60]!r}"
        elif NUMBER.fullmatch(text):
            slot = _slot(doc, it.start, it.end, keep_space=it.html, pad="")
            out.append(Item("number", line, text, slot))
        elif m:
            slot = _slot(doc, m.end(), it.end, keep_space=True, pad=" ")
            old = doc.src[m.end() : it.end].split("<")[0]
            out.append(Item("average", line, clean(old), slot))
        elif not text:
            pad = "" if it.gap else " "
            slot = _slot(doc, it.start, it.end, keep_space=it.html, pad=pad)
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


def _slot(doc: Doc, start: int, end: int, *, keep_space: bool, pad: str) -> Slot:
    """The value region ``[start, end)`` stops at a tag or line end. An old value is
    replaced exactly; a new one goes after one space (``keep_space``) or ``pad``."""
    stop = start
    while stop < end and doc.src[stop] not in "<\n":
        stop += 1
    region = doc.src[start:stop]
    value = region.strip()
    if value:
        a = start + len(region) - len(region.lstrip())
        return Slot(doc.to_bytes(a), doc.to_bytes(a + len(value)))
    if region and keep_space:
        return Slot(doc.to_bytes(start + 1), doc.to_bytes(start + 1))
    return Slot(doc.to_bytes(start), doc.to_bytes(start), "" if region else pad)
