"""Markdown (and the HTML lists notes mix in) as a structure: lines with their character
and byte offsets, code fences, headings, and every list with its nesting.

Only what result blocks and TODO sections need is parsed, but exactly: a nested HTML list
may sit inside its ``<li>`` or right after the ``</li>``, markdown items nest by indent, and
fenced code is never read as lists or headings.
"""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from kdtui.notes.model import NotesError

_MD_ITEM = re.compile(r"(?P<indent>[ \t]*)(?P<marker>[-*+]|\d{1,9}[.)])(?P<gap>[ \t]|$)")
_HEADING = re.compile(r" {0,3}(?P<hashes>#{1,6})(?:[ \t]+(?P<text>.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r" {0,3}(?:`{3,}|~{3,})")
_LIST_TAG = re.compile(r"<(?P<close>/?)(?P<tag>ul|ol|li)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


@dataclass
class ListItem:
    """One list item: where its text is, and the lists nested under it."""

    line: int  # 0-based
    start: int  # char offsets of the item's content
    end: int
    html: bool
    gap: bool = True  # a markdown item with a space after its marker
    children: list[MdList] = field(default_factory=list)
    after: int = 0  # where the item's own markup ends (HTML)

    def text(self, src: str) -> str:
        return clean(src[self.start : self.end])


@dataclass
class MdList:
    """A markdown or HTML list, its items in order."""

    line: int  # 0-based line where the list starts
    items: list[ListItem] = field(default_factory=list)


@dataclass
class _Frame:
    """An open HTML list while parsing: its open ``<li>`` and the last one closed."""

    list: MdList
    open: ListItem | None = None
    last: ListItem | None = None


def clean(raw: str) -> str:
    """An item's or a line's text: tags dropped, entities decoded, spaces trimmed."""
    return html.unescape(_TAG.sub("", raw)).strip()


class Doc:
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
                self.headings[i] = (len(m["hashes"]), clean(m["text"] or ""))
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

    def _html_lists(self) -> list[MdList]:
        """HTML lists, tag by tag. A nested list may sit inside its ``<li>`` or, as notes
        often have it, right after the ``</li>``: either way it belongs to that item. An
        item's text ends at the next list tag or at the end of its line."""
        loose = _Frame(MdList(line=-1))  # <li> items outside any <ul>/<ol>
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
                item = ListItem(line, m.end(), -1, html=True)
                top.list.items.append(item)
                top.last, top.open = top.open or top.last, item
            elif tag == "li" and top.open is not None:
                top.open.after = m.end()
                top.last, top.open = top.open, None
            elif tag != "li" and not close:
                new = MdList(line)
                owner = top.open
                if owner is None and top.last is not None:
                    between = clean(self.src[top.last.after : m.start()])
                    owner = None if between else top.last
                (owner.children if owner else roots).append(new)
                stack.append(_Frame(new))
            elif tag != "li" and len(stack) > 1:
                stack.pop()
        for frame in stack:
            if frame.open is not None and frame.open.end < 0:
                frame.open.end = self.ends[frame.open.line]
        return [r for r in roots if r.items]

    def _markdown_lists(self) -> list[MdList]:
        """Markdown bullet lists; an item nests under the nearest item indented less."""
        roots: list[MdList] = []
        root: MdList | None = None
        stack: list[tuple[int, ListItem]] = []
        for i in range(len(self.starts)):
            text = self.line(i)
            m = None if (self.fenced[i] or i in self.html_lines) else _MD_ITEM.match(text)
            if m is None:
                indented = text[:1] in (" ", "\t")
                if text.strip() and not (indented and root is not None):
                    root, stack = None, []
                continue
            indent = len(m["indent"].expandtabs(4))
            item = ListItem(
                i, self.starts[i] + m.end(), self.ends[i], html=False, gap=bool(m["gap"])
            )
            if root is None:
                root = MdList(i)
                roots.append(root)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            if stack:
                parent = stack[-1][1]
                if not parent.children:
                    parent.children.append(MdList(i))
                parent.children[-1].items.append(item)
            else:
                root.items.append(item)
            stack.append((indent, item))
        return roots

    # ------------------------------------------------------------------ titles

    def context_title(self, lst: MdList) -> tuple[str, int] | None:
        """A top-level list's title: the heading or text line right above it, or the
        heading above the blank lines before it."""
        i = lst.line - 1
        if i >= 0 and self.line(i).strip() and i not in self.html_lines:
            if i in self.headings:
                return (self.headings[i][1], i) if self.headings[i][1] else None
            text = clean(self.line(i))
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

    def lists_with_titles(self) -> Iterable[tuple[MdList, tuple[str, int] | None]]:
        """Every list in the file with its title: the owning item, or the context above."""
        todo: list[tuple[MdList, tuple[str, int] | None]] = [
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
