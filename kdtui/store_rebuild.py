"""Rebuilding the run index from what outlives it: the run folders (each summary folded
from its spec and events) and the TODO list's own copy (``todos.json``), or, when that is
gone too, the TODOs still readable in the damaged index.

``kdtui.store`` decides when (a lost or unreadable index, ``kdtui doctor``) and holds the
lock; this module reads the folders and files and says what it found, so that the slow
part — every event of every run — can run before the lock is taken.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from kdtui.events import RUN_ID_PATTERN, fold_lines, initial_summary
from kdtui.safefs import read_bytes_nofollow
from kdtui.storage import (
    INDEX,
    IndexCorrupt,
    IndexMissing,
    Tables,
    WriteFailed,
    apply_line,
    describe_os_error,
    valid_doc,
)


def summaries_from_folders(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every run folder's summary, folded from its spec and events; and one line per
    folder that is no run (unreadable spec, a run id that is not the folder's name)."""
    out, skipped = [], []
    for spec_path in sorted(root.glob("*/spec.json")):
        folder = spec_path.parent.name
        try:
            summary = initial_summary(json.loads(read_bytes_nofollow(spec_path)))
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            skipped.append(f"{folder} (spec.json: {type(exc).__name__})")
            continue
        run_id = summary["run_id"]
        if not isinstance(run_id, str) or run_id != folder or not RUN_ID_PATTERN.match(run_id):
            skipped.append(f"{folder} (spec.json names run {str(run_id)[:40]!r})")
            continue
        try:
            raw = read_bytes_nofollow(spec_path.parent / "events.jsonl")
        except OSError:
            raw = b""
        summary["events_at"] = fold_lines(summary, raw)
        out.append(summary)
    return out, skipped


def todos_from_copy(copy: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The TODOs of the copy ``todos.json``, and why it could not be read (None: it
    could, or there is none)."""
    try:
        todos = json.loads(copy.read_bytes())["todos"]
        return [t for t in todos if valid_doc("todos", t.get("id"), t)], None
    except FileNotFoundError:
        return [], None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [], f"{copy.name}: {exc}"


def salvage(index: Path, journal: Path) -> Tables | None:
    """What can still be read of a damaged index's TODOs (when its copy is gone too)."""
    try:
        data = json.loads(index.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    todos = data.get("todos") if isinstance(data, dict) else None
    if not isinstance(todos, dict):
        return None
    tables: Tables = {"runs": {}, "todos": {}}
    tables["todos"] = {k: v for k, v in todos.items() if valid_doc("todos", k, v)}
    with contextlib.suppress(OSError):
        for line in journal.read_bytes().splitlines():
            apply_line(tables, line)
    tables["runs"] = {}
    return tables


def set_aside(index: Path, journal: Path) -> Tables | None:
    """Move an unreadable index and its journal to ``*.corrupt-<time>`` (kept for a look,
    never read again), after salvaging what of its TODOs can still be read. Raises
    WriteFailed when they cannot be moved."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    found: Tables | None = None
    try:
        found = salvage(index, journal)
        for path in (index, journal):
            if path.exists():
                os.replace(path, path.with_name(f"{path.name}.corrupt-{stamp}"))
    except OSError as err:
        raise WriteFailed(describe_os_error(err, "moving")) from None
    return found


def rebuilt(
    found: tuple[list[dict[str, Any]], list[str]],
    todos_copy: Path,
    exc: IndexCorrupt,
    salvaged: Tables | None = None,
) -> tuple[Tables, str]:
    """The index rebuilt from the run folders' summaries (``found``, from
    ``summaries_from_folders``) and the TODO copy (or, failing that, the TODOs salvaged
    from the damaged index), and what to tell the user."""
    runs, skipped = found
    todos, problem = todos_from_copy(todos_copy)
    source = todos_copy.name
    if not todos and salvaged and salvaged.get("todos"):
        todos, source = list(salvaged["todos"].values()), f"the damaged {INDEX}"
    kept = f" and {len(todos)} todo(s) from {source}" if todos else ""
    if problem and not todos:
        kept = f"; the todo list is lost ({problem})"
    what = "missing" if isinstance(exc, IndexMissing) else f"unreadable ({exc})"
    notice = (
        f"the index was {what}; moved it to {INDEX}.corrupt-* and rebuilt "
        f"{len(runs)} runs from their folders{kept}"
        if not isinstance(exc, IndexMissing)
        else f"the index was missing; rebuilt {len(runs)} runs from their folders{kept}"
    )
    if skipped:
        notice += f" (skipped {len(skipped)} bad folder(s): {'; '.join(skipped[:3])})"
    tables: Tables = {"runs": {d["run_id"]: d for d in runs}, "todos": {}}
    tables["todos"] = {t["id"]: t for t in todos if valid_doc("todos", t.get("id"), t)}
    return tables, notice


def rebuild_report(before: set[str], after: set[str], skipped: list[str]) -> str:
    """What ``kdtui doctor`` says of a rebuild: the runs it found, against the index."""
    report = (
        f"rebuilt {len(after)} runs from their folders "
        f"(missing from the index: {len(after - before)}; "
        f"in the index without a folder: {len(before - after)})"
    )
    if skipped:
        report += f"; left out {len(skipped)} bad folder(s): {'; '.join(skipped)}"
    return report
