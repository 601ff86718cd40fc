"""TODO sections of notes: the checklist under a heading, and its import into the store's
TODO list (flat, nested items folded into their parent's text)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from kdtui.notes.markdown import Doc, ListItem
from kdtui.notes.model import NotesError, SectionItem, heading_key
from kdtui.store import Store

_CHECKBOX = re.compile(r"\[(?P<mark>[ xX])\]\s*")


def section_items(doc: Doc, heading: str) -> list[SectionItem]:
    """The list items under ``heading`` (matched case-insensitively, the first such heading,
    down to the next heading of its level or above), nested as written; ``[x]`` ticks."""
    wanted = heading_key(heading)
    hits = [i for i, (_, text) in doc.headings.items() if heading_key(text) == wanted]
    if not hits:
        known = ", ".join(repr(t) for _, t in list(doc.headings.values())[:10]) or "none"
        raise NotesError(f"no heading {heading!r} (headings: {known})")
    first = min(hits)
    level = doc.headings[first][0]
    end = next(
        (i for i in sorted(doc.headings) if i > first and doc.headings[i][0] <= level),
        len(doc.starts),
    )

    def convert(it: ListItem) -> SectionItem | None:
        text = it.text(doc.src)
        m = _CHECKBOX.match(text)
        children = tuple(
            t for lst in it.children for c in lst.items if (t := convert(c)) is not None
        )
        if m:
            text = text[m.end() :]
        if not text:
            return None
        return SectionItem(text, bool(m and m["mark"] in "xX"), it.line + 1, children)

    items = [it for r in doc.roots for it in r.items if first < it.line < end]
    return [t for it in sorted(items, key=lambda i: i.line) if (t := convert(it))]


def import_todos(
    store: Store, path: Path, section: str, items: list[SectionItem]
) -> tuple[int, int]:
    """One TODO per top-level item of a notes section; nested items go into its text
    (``parent — child; child (grandchild)``), as the checklist is flat. Each TODO carries an
    ``import_key`` (file, section, item text), so importing again skips the items already
    there, even if they were ticked or edited in kdtui since. Returns (added, skipped)."""
    with store.batch():  # one write; what is imported already is decided under the lock
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
