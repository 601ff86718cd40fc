"""Markdown notes ⇄ the store: result blocks, their averages, outside results, TODO sections.

A *result block* is a title (a list item, a heading, or the line right above a list) and a
list under it whose items are one number each, one per seed (some still blank), usually
ending in ``<label> :`` where the average goes. Notes are typed by hand and mix prose,
images and raw HTML lists, so the parser records the exact byte span of every value and
``fill`` rewrites those bytes only: the rest of the file comes back byte for byte.

One module per part, each importing only those before it:

- ``model``     the vocabulary: blocks, items, slots, numbers, ``NotesError``
- ``markdown``  the file as lines, fences, headings and nested lists (markdown and HTML)
- ``todos``     the checklist under a heading, and its import as TODO items
- ``blocks``    result blocks found in those lists: ``parse``, ``read_notes``
- ``outside``   outside results as finished runs: ``import_notes``, ``record``
- ``fill``      blank seeds from the store and the average lines: ``fill``

Nothing here imports torch or typer.
"""

from kdtui.notes.blocks import Notes, parse, read_notes
from kdtui.notes.fill import (
    Filled,
    Unmatched,
    fill,
    format_average,
    load_mapping,
    match_store,
    values_from_store,
)
from kdtui.notes.model import (
    DEFAULT_LABELS,
    EXTERNAL_DATASET,
    Block,
    Item,
    NotesError,
    SectionItem,
    Skipped,
    Slot,
    accuracy_problem,
    heading_key,
    parse_number,
)
from kdtui.notes.outside import Imported, group_key_for, import_notes, record
from kdtui.notes.todos import import_todos

__all__ = [
    "DEFAULT_LABELS",
    "EXTERNAL_DATASET",
    "Block",
    "Filled",
    "Imported",
    "Item",
    "Notes",
    "NotesError",
    "SectionItem",
    "Skipped",
    "Slot",
    "Unmatched",
    "accuracy_problem",
    "fill",
    "format_average",
    "group_key_for",
    "heading_key",
    "import_notes",
    "import_todos",
    "load_mapping",
    "match_store",
    "parse",
    "parse_number",
    "read_notes",
    "record",
    "values_from_store",
]
