"""The run store: an index of run summaries plus one folder per run.

Layout (under the workspace, ``./runs`` by default)::

    kdtui.json              TinyDB: tables ``runs`` (one summary per run) and ``todos``
    kdtui.journal           changes since kdtui.json was last written (``kdtui.storage``)
    todos.json              a copy of the TODO list, written with every change to it
    <run_id>/spec.json      the frozen run spec (experiment + seed + what it needs)
    <run_id>/events.jsonl   append-only events: start, epoch, end, error
    <run_id>/stdout.log     the engine's output
    <run_id>/heartbeat      {"time", "epoch"}, rewritten every few seconds by the engine
    <run_id>/ckpt/          last.pt (resume), best.pt, and their JSON sidecars
    cache/                  computed views, shared by all runs

The run folders are the truth; the index is a summary of them that can always be rebuilt
(``rebuild``; an unreadable or missing index is rebuilt by the next reader), and the TODO
list, which has no folders, comes back from its copy — never from an empty index.

Every write is a **batch** (``Store.batch``): under the workspace lock, read the index as
it is, decide, and append the changes as one journal line (``kdtui.storage``: O(size of
the change), folded into kdtui.json outside the lock now and then). So queueing or
stopping N runs is one write; the lock is held for the decision and the write only —
folders are written before it is taken; every read-modify-write (a status change, the next
free seed of ``record``, a TODO edit) is decided under it. Readers take no lock and read
only what was appended since their last read.

An engine appends its events first and folds them into its summary after; when the index
is busy or cannot be written it keeps training, and the summary catches up with the events
file at the next write of that run (``events_at`` is how far it has read). A write that
cannot be made (a full disk, a read-only workspace) raises WriteFailed, one line naming
the file and the cause, and leaves the index as it was.

Built on three modules below it: ``kdtui.storage`` (the index files, the lock),
``kdtui.events`` (a run's events file and the summary folded from it) and
``kdtui.store_rebuild`` (an index rebuilt from the run folders and the TODO copy); the
names of those that callers need are passed on from here.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from kdtui.events import (
    RUN_ID_PATTERN,
    append_event,
    append_lines,
    fold_event,
    fold_lines,
    initial_summary,
    read_events,
)
from kdtui.safefs import SymlinkRefused, open_nofollow, read_bytes_nofollow
from kdtui.storage import (
    INDEX,
    JOURNAL,
    KEYS,
    LOCK,
    TODOS_COPY,
    Index,
    IndexCorrupt,
    StoreError,
    Tables,
    WriteFailed,
    atomic_write,
    describe_os_error,
    fsync_dir,
)
from kdtui.store_rebuild import (
    rebuild_report,
    rebuilt,
    set_aside,
    summaries_from_folders,
    todos_from_copy,
)

# The store's API, with what it passes on from the modules it is built on (importers
# take these from here, whichever module defines them).
__all__ = [
    "ACTIVE",
    "DEFER_AFTER_S",
    "HEARTBEAT_EVERY_S",
    "PARALLEL_WRITES",
    "RUN_ID_PATTERN",
    "STATUSES",
    "TERMINAL",
    "TRASH",
    "Batch",
    "Store",
    "StoreError",
    "WriteFailed",
    "append_event",
    "atomic_write",
    "close_names",
    "default_workspace",
    "describe_os_error",
    "fold_event",
    "initial_summary",
    "names_key",
    "new_run_id",
    "read_events",
]

STATUSES = ("queued", "running", "done", "failed", "crashed", "cancelled")
TERMINAL = frozenset({"done", "failed", "crashed", "cancelled"})
ACTIVE = frozenset({"queued", "running"})
TRASH = "trash"  # where `kdtui rm` puts run folders
HEARTBEAT_EVERY_S = 10.0


def default_workspace() -> Path:
    return Path(os.environ.get("KDTUI_WORKSPACE", "runs"))


def new_run_id(name: str, seed: int) -> str:
    return f"{name[:80]}-s{seed}-{secrets.token_hex(3)}"


#: How long an engine waits for a busy index before leaving its summary to catch up later.
DEFER_AFTER_S = 2.0
#: Threads that write run folders or fsync events files at once (fsyncs overlap well).
PARALLEL_WRITES = 16


def _created_order(run: dict[str, Any]) -> tuple[Any, str]:
    return (run.get("created") or 0, run["run_id"])


def _todo_order(todo: dict[str, Any]) -> tuple[Any, str]:
    return (todo.get("order", 0), todo["id"])


def _in_parallel(work: Callable[[int], None], n: int) -> None:
    """``work(0..n-1)`` on a few threads: the writes are fsync-bound, and fsyncs of
    different files overlap (a launch of 2,000 runs writes 2,000 specs). The first error
    is raised once every call has returned."""
    if n <= 4:
        for i in range(n):
            work(i)
        return
    from concurrent.futures import ThreadPoolExecutor  # only writers pay for the import

    with ThreadPoolExecutor(min(PARALLEL_WRITES, n)) as pool:
        for future in [pool.submit(work, i) for i in range(n)]:
            future.result()


class Batch:
    """Changes made under the workspace lock, written as one journal line when the batch
    ends (``Store.batch``). Reads see the index as it is under the lock plus this batch's
    own changes."""

    def __init__(self, tables: Tables):
        self._tables = tables  # stable: nobody else writes while the lock is held
        self.changes: Tables = {name: {} for name in KEYS}
        #: Events to append at commit, by run: in parallel, as the last step before the
        #: journal line (creating 2,000 events files one after another takes seconds).
        self.events: dict[str, list[dict[str, Any]]] = {}

    def docs(self, table: str) -> dict[str, dict[str, Any]]:
        out = dict(self._tables.get(table, {}))
        for doc_id, doc in self.changes[table].items():
            if doc is None:
                out.pop(doc_id, None)
            else:
                out[doc_id] = doc
        return out

    def doc(self, table: str, doc_id: str) -> dict[str, Any] | None:
        """A copy of one document, to change and ``put`` back."""
        changes = self.changes[table]
        doc = changes[doc_id] if doc_id in changes else self._tables.get(table, {}).get(doc_id)
        return dict(doc) if doc is not None else None

    def put(self, table: str, doc: dict[str, Any]) -> None:
        self.changes[table][doc[KEYS[table]]] = doc

    def delete(self, table: str, doc_id: str) -> None:
        self.changes[table][doc_id] = None


class Store:
    """All reads and writes of a workspace's index and run folders.

    Reads take no lock and are cached (``kdtui.storage``). Every write is a batch
    (``batch``): the lock, the current index, the decision, one journal line. Folders are
    prepared before the lock is taken. A write that cannot be made (a full disk, a
    read-only workspace) raises WriteFailed with one line naming the file and the cause."""

    def __init__(self, root: Path | str | None = None, lock_timeout_s: float = 30.0):
        self.root = Path(root) if root is not None else default_workspace()
        self.index_path = self.root / INDEX
        self.journal_path = self.root / JOURNAL
        self.lock_path = self.root / LOCK
        self.todos_backup = self.root / TODOS_COPY
        self.cache_dir = self.root / "cache"
        self.notices: list[str] = []  # what a recovery did, for the CLI/TUI to show
        self._index = Index(self.root, lock_timeout_s)
        self._local = threading.local()  # this thread's open batch
        self._fallback: tuple[Any, Tables] | None = None  # a rebuild that could not be saved

    @property
    def lock_timeout_s(self) -> float:
        return self._index.lock_timeout_s

    @lock_timeout_s.setter
    def lock_timeout_s(self, value: float) -> None:
        self._index.lock_timeout_s = value

    # ------------------------------------------------------------------ low level

    def run_dir(self, run_id: str) -> Path:
        if not RUN_ID_PATTERN.match(run_id):
            raise StoreError(f"not a run id: {run_id!r}")
        return self.root / run_id

    def stamp(self) -> tuple[Any, ...]:
        """Changes whenever the index does: a poll re-reads only then."""
        return self._index.stamp()

    def load(self) -> None:
        """Read the index now: a lost or damaged one is rebuilt here (and said in
        ``notices``), not in the middle of a command; later reads start from this one."""
        self._docs("runs")

    def _open_batch(self) -> Batch | None:
        return getattr(self._local, "batch", None)

    @contextlib.contextmanager
    def batch(self, timeout_s: float | None = None) -> Iterator[Batch]:
        """Read-modify-write under the workspace lock, written as ONE journal line when the
        block ends (nothing at all if it raises). Inside the block this store's reads see
        the batch and its writes join it (a nested ``batch`` is the same one), so a caller
        makes any number of changes — queue or stop N runs, choose the next free seed and
        take it — in one locked step. Keep the block to deciding and writing: prepare
        folders and files before it."""
        current = self._open_batch()
        if current is not None:
            yield current
            return
        with self._index.locked(timeout_s):
            batch = Batch(self._read_locked())
            self._restore_todos(batch)
            self._local.batch = batch
            try:
                yield batch
            finally:
                self._local.batch = None
            self._commit(batch)
        self._index.fold_if_due()

    def _commit(self, batch: Batch) -> None:
        """The TODO copy first (runs can be rebuilt from their folders, TODOs only from
        it), the batch's events (the truth), then the journal line."""
        old_copy = None
        if batch.changes["todos"]:
            todos = sorted(batch.docs("todos").values(), key=_todo_order)
            with contextlib.suppress(OSError):
                old_copy = self.todos_backup.read_bytes()
            try:
                atomic_write(self.todos_backup, json.dumps({"todos": todos}).encode())
            except OSError as exc:
                raise WriteFailed(describe_os_error(exc, "writing")) from None
        try:
            self._append_events(batch)
            self._index.commit(batch.changes)
        except (OSError, WriteFailed) as exc:
            if old_copy is not None:  # the TODO copy must not run ahead of the index
                with contextlib.suppress(OSError):
                    atomic_write(self.todos_backup, old_copy)
            if isinstance(exc, OSError):
                raise WriteFailed(describe_os_error(exc, "writing")) from None
            raise

    def _append_events(self, batch: Batch) -> None:
        """Append the batch's events to their runs' files (lock held), in parallel; a
        summary that had read its file to the end skips its own new lines. A run whose
        events file is a symbolic link (a planted folder) is left as it was, and said."""
        items = list(batch.events.items())
        spans: list[tuple[int, int] | None] = [None] * len(items)

        def append(i: int) -> None:
            run_id, events = items[i]
            lines = [json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in events]
            with contextlib.suppress(SymlinkRefused):
                spans[i] = append_lines(self.run_dir(run_id) / "events.jsonl", lines)

        _in_parallel(append, len(items))
        for (run_id, _), span in zip(items, spans, strict=True):
            if span is None:
                batch.changes["runs"].pop(run_id, None)
                self.notices.append(
                    f"{run_id}: events.jsonl is a symbolic link, not followed; left as it was"
                )
                continue
            doc = batch.changes["runs"].get(run_id)
            if doc is not None and doc.get("events_at") == span[0]:
                doc["events_at"] = span[1]

    def _read_locked(self) -> Tables:
        """The index under the lock, rebuilt first if it is unreadable or gone, created if
        the workspace is new (a later folder without an index then always means a lost
        index)."""
        try:
            view = self._index.read()
        except IndexCorrupt as exc:
            self._recover_locked(exc)
            view = self._index.read()
        if view.base_key is None:
            self._index.replace_all(view.tables)
            view = self._index.read()
        return view.tables

    def _recovered(self, exc: IndexCorrupt) -> Tables:
        """An unreadable index, rebuilt under the lock for a reader (never called holding
        the cache's mutex: a writer holding the lock needs it). When the rebuild cannot be
        saved (a read-only workspace, a full disk) readers still get it, from memory."""
        stamp = self.stamp()
        if self._fallback is not None and self._fallback[0] == stamp:
            return self._fallback[1]
        try:
            with self._index.locked():
                return self._read_locked()
        except WriteFailed as why:
            tables, notice = self._rebuilt(exc)
            self.notices.append(f"{notice}; not saved ({why})")
            self._fallback = (stamp, tables)
            return tables

    def _docs(self, table: str) -> dict[str, dict[str, Any]]:
        """One table's {id: document} for a reader (inside a batch: the batch's)."""
        batch = self._open_batch()
        if batch is not None:
            return batch.docs(table)
        try:
            return self._index.docs(table)
        except IndexCorrupt as exc:
            tables = self._recovered(exc)
        with self._index._mutex:  # the recovered tables may be the live cache
            return dict(tables[table])

    # ------------------------------------------------------------------ runs

    def runs(self) -> list[dict[str, Any]]:
        """Every run summary (copies), oldest first."""
        return [dict(d) for d in self.summaries()]

    def summaries(self) -> list[dict[str, Any]]:
        """Every run summary, oldest first, shared with the cache: to read, never to
        change. Copying 10,000 summaries was a third of what `kdtui ls` took to read them;
        a reader that only looks (ls, table, a filter before a write) takes these."""
        if self._open_batch() is None:
            with contextlib.suppress(IndexCorrupt):  # rebuilt by _docs below
                return self._index.sorted_docs("runs", _created_order)
        return sorted(self._docs("runs").values(), key=_created_order)

    def get(self, run_id: str) -> dict[str, Any] | None:
        batch = self._open_batch()
        if batch is not None:
            return batch.doc("runs", run_id)
        try:
            doc = self._index.doc("runs", run_id)
        except IndexCorrupt:
            doc = self._docs("runs").get(run_id)
        return dict(doc) if doc is not None else None

    def add_runs(self, docs: list[dict[str, Any]], specs: dict[str, dict[str, Any]]) -> None:
        """Create run folders with their frozen specs, then index them (status queued) in
        one write. The folders are written (in parallel, each fsynced) before the lock is
        taken; if one cannot be, those of this call are removed again and nothing is
        indexed."""
        if not docs:
            return
        self._ensure_index()
        dirs = [self.run_dir(doc["run_id"]) for doc in docs]
        made: list[Path] = []

        def prepare(i: int) -> None:
            dirs[i].mkdir()
            made.append(dirs[i])
            body = json.dumps(specs[docs[i]["run_id"]], indent=2).encode()
            atomic_write(dirs[i] / "spec.json", body)

        try:
            _in_parallel(prepare, len(docs))
            fsync_dir(self.root)
        except OSError as exc:
            for run_dir in made:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise WriteFailed(describe_os_error(exc, "writing")) from None
        with self.batch() as batch:
            for doc in docs:
                batch.put("runs", {**doc, "events_at": 0})

    def put_runs(self, docs: list[dict[str, Any]]) -> None:
        """Insert or replace whole run summaries in one write: outside results, whose
        folders the caller has written, are re-imported in place under their stable ids."""
        if not docs:
            return
        with self.batch() as batch:
            for doc in docs:
                batch.put("runs", dict(doc))

    def remove_runs(self, run_ids: Collection[str]) -> list[str]:
        """Take runs that are not queued or running out of the index (one write), then move
        their folders to ``trash/`` (a mistake is undone by moving a folder back and
        ``kdtui doctor``). Returns the ids removed."""
        with self.batch() as batch:
            gone = []
            for run_id in dict.fromkeys(run_ids):
                doc = batch.doc("runs", run_id)
                if doc is not None and doc.get("status") not in ACTIVE:
                    batch.delete("runs", run_id)
                    gone.append(run_id)
        trash = self.root / TRASH
        for run_id in gone:
            if self.run_dir(run_id).exists():
                try:
                    trash.mkdir(exist_ok=True)
                    place = trash / run_id
                    if place.exists():  # removed before, brought back, removed again
                        place = trash / f"{run_id}.{time.strftime('%Y%m%d-%H%M%S')}"
                    os.replace(self.run_dir(run_id), place)
                except OSError as exc:
                    raise WriteFailed(describe_os_error(exc, "moving")) from None
        return gone

    def update(
        self, run_id: str, fields: dict[str, Any], *, if_status: Collection[str] | None = None
    ) -> dict[str, Any] | None:
        """Set fields of one run; with ``if_status``, only while its status is one of those
        (checked under the lock). Returns the new summary, or None if nothing changed."""
        return self.modify(run_id, lambda doc: doc.update(fields), if_status=if_status)

    def update_many(
        self,
        run_ids: Collection[str],
        fields: dict[str, Any],
        *,
        if_status: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """``update`` of many runs in one write; returns the summaries that changed."""
        with self.batch():
            news = [self.update(run_id, fields, if_status=if_status) for run_id in run_ids]
        return [new for new in news if new is not None]

    def modify(
        self,
        run_id: str,
        change: Callable[[dict[str, Any]], Any],
        *,
        if_status: Collection[str] | None = None,
    ) -> dict[str, Any] | None:
        """Apply ``change`` to one run summary under the lock. The summary first catches
        up with the run's events file (what an engine wrote while the index was busy), so
        ``if_status`` judges the run as it is."""
        with self.batch() as batch:
            doc = batch.doc("runs", run_id)
            if doc is None:
                return None
            caught_up = self._catch_up(doc)
            if if_status is not None and doc.get("status") not in if_status:
                if caught_up:
                    batch.put("runs", doc)
                return None
            change(doc)
            batch.put("runs", doc)
            return dict(doc)

    def record_event(
        self,
        run_id: str,
        event: dict[str, Any],
        *,
        if_status: Collection[str] | None = None,
        catch_up_later: bool = False,
    ) -> dict[str, Any] | None:
        """Append an event to the run's file and fold it into its summary.

        With ``if_status``, only while the run's status is one of those, decided under the
        lock (the event is appended only then). Without, the event is appended first — the
        events file is the truth — and the summary catches up with it under the lock; with
        ``catch_up_later`` (an engine), a busy or unwritable index is no failure: the
        summary catches up at the next write of this run, and None is returned."""
        event.setdefault("time", time.time())
        run_dir = self.run_dir(run_id)
        if if_status is not None:
            with self.batch() as batch:
                doc = batch.doc("runs", run_id)
                if doc is None:
                    return None
                if self._catch_up(doc) and doc.get("status") not in if_status:
                    batch.put("runs", doc)
                if doc.get("status") not in if_status:
                    return None
                fold_event(doc, event)
                batch.events.setdefault(run_id, []).append(event)  # appended at commit
                batch.put("runs", doc)
                return dict(doc)
        try:
            start = (run_dir / "events.jsonl").stat().st_size
        except OSError:
            start = 0
        append_event(run_dir, event)
        try:
            with self.batch(DEFER_AFTER_S if catch_up_later else None) as batch:
                doc = batch.doc("runs", run_id)
                if doc is None:
                    return None
                self._catch_up(doc, start)
                batch.put("runs", doc)
                return dict(doc)
        except (StoreError, OSError):
            if not catch_up_later:
                raise
            return None

    def _catch_up(self, doc: dict[str, Any], start: int | None = None) -> bool:
        """Fold into ``doc`` the whole event lines appended to its run's events file since
        ``doc["events_at"]`` (a summary written before kdtui kept that offset starts at
        ``start``, or at the end). Returns whether ``doc`` changed."""
        try:
            path = self.run_dir(doc["run_id"]) / "events.jsonl"
            with open_nofollow(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                at = doc.get("events_at")
                at = (size if start is None else start) if not isinstance(at, int) else at
                if at > size:  # the file was written anew (an outside result imported again)
                    at = size
                fh.seek(at)
                chunk = fh.read(size - at)
        except (OSError, StoreError):
            return False
        end = fold_lines(doc, chunk)
        changed = doc.get("events_at") != at + end or end > 0
        doc["events_at"] = at + end
        return changed

    def delete_runs(self, run_ids: Collection[str]) -> None:
        with self.batch() as batch:
            for run_id in run_ids:
                batch.delete("runs", run_id)

    def read_spec(self, run_id: str) -> dict[str, Any]:
        return json.loads(read_bytes_nofollow(self.run_dir(run_id) / "spec.json"))

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return read_events(self.run_dir(run_id))

    # ------------------------------------------------------------------ todos

    def todos(self) -> list[dict[str, Any]]:
        """The TODO list. An index that lost it (an empty table beside a TODO copy that
        holds some) shows the copy, and the next write puts it back."""
        todos = self._docs("todos")
        if not todos and self._open_batch() is None:
            todos = {t["id"]: t for t in self._todos_from_copy()[0]}
        return sorted((dict(t) for t in todos.values()), key=_todo_order)

    def add_todo(self, text: str, **fields: Any) -> dict[str, Any]:
        todo = {"id": secrets.token_hex(4), "text": text, "done": False, "created": time.time()}
        todo.update(fields)
        with self.batch() as batch:  # the next order, chosen under the lock
            orders = [d.get("order", 0) for d in batch.docs("todos").values()]
            todo.setdefault("order", max(orders, default=0) + 1)
            batch.put("todos", todo)
        return dict(todo)

    def update_todo(self, todo_id: str, **fields: Any) -> dict[str, Any] | None:
        with self.batch() as batch:
            todo = batch.doc("todos", todo_id)
            if todo is None:
                return None
            todo.update(fields)
            batch.put("todos", todo)
            return dict(todo)

    def delete_todo(self, todo_id: str) -> bool:
        with self.batch() as batch:
            if batch.doc("todos", todo_id) is None:
                return False
            batch.delete("todos", todo_id)
            return True

    def _todos_from_copy(self) -> tuple[list[dict[str, Any]], str | None]:
        """The TODOs of ``todos.json``, and why it could not be read (None: it could, or
        there is none)."""
        return todos_from_copy(self.todos_backup)

    def _restore_todos(self, batch: Batch) -> None:
        """An index without TODOs beside a copy that has some lost them (written by hand,
        or by an older kdtui from an empty table): this batch writes them back."""
        if batch.docs("todos"):
            return
        todos, _ = self._todos_from_copy()
        for todo in todos:
            batch.put("todos", todo)
        if todos:
            self.notices.append(
                f"the index had no TODOs: restored {len(todos)} from {self.todos_backup.name}"
            )

    # ------------------------------------------------------------------ integrity

    def _ensure_index(self) -> None:
        """Create the index of a new workspace before its first run folders."""
        if not self.index_path.exists():
            with self._index.locked():
                self._read_locked()

    def _recover_locked(self, exc: IndexCorrupt) -> None:
        """Move an unreadable index (and its journal) aside and rebuild it from the run
        folders and the TODO copy (lock held); another process may have done it first."""
        try:
            self._index.read()
            return
        except IndexCorrupt as again:
            exc = again
        salvaged = set_aside(self.index_path, self.journal_path)
        tables, notice = self._rebuilt(exc, salvaged)
        self._index.replace_all(tables)
        self._fallback = None
        if notice:
            self.notices.append(notice)

    def _rebuilt(self, exc: IndexCorrupt, salvaged: Tables | None = None) -> tuple[Tables, str]:
        """The index rebuilt from the run folders and the TODO copy (or, failing that, the
        TODOs still readable in the damaged index), and what to tell the user."""
        return rebuilt(self._summaries_from_folders(), self.todos_backup, exc, salvaged)

    def rebuild(self) -> str:
        """Rebuild the runs table from the run folders, keeping todos (``kdtui doctor``).
        The folders are read before the lock is taken (every event of every run: seconds
        for a large study); under it, each summary catches up with what its engine wrote
        meanwhile, runs queued or removed meanwhile stay so, and the index is written
        once. Bad folders (an unreadable spec, a run id that is not its folder's name or
        not a run id) are left out and named."""
        runs, skipped = self._summaries_from_folders()
        with self._index.locked():
            try:
                old = self._index.read().tables
            except IndexCorrupt as exc:
                before = len(self.notices)
                self._recover_locked(exc)
                return self.notices[-1] if len(self.notices) > before else "index rebuilt"
            fresh = {d["run_id"]: d for d in runs if (self.root / d["run_id"]).is_dir()}
            for doc in fresh.values():
                self._catch_up(doc)
            for run_id, doc in old.get("runs", {}).items():  # queued while we read
                if run_id not in fresh and (self.root / run_id / "spec.json").is_file():
                    fresh[run_id] = doc
            todos = old.get("todos") or {t["id"]: t for t in self._todos_from_copy()[0]}
            self._index.replace_all({"runs": fresh, "todos": todos})
        return rebuild_report(set(old.get("runs", {})), set(fresh), skipped)

    def _summaries_from_folders(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Every run folder's summary and the folders that are no run (read without the
        lock; ``kdtui.store_rebuild``)."""
        return summaries_from_folders(self.root)

    def log_tail(self, run_id: str) -> str:
        """The last line of the run's log (its last words, for a one-line reason)."""
        try:
            raw = read_bytes_nofollow(self.run_dir(run_id) / "stdout.log")
            text = raw.decode(errors="replace")
        except OSError:
            return ""
        lines = text.strip().splitlines()
        return lines[-1][-300:] if lines else ""


def names_key(ref: str, key: str) -> bool:
    """A group key, or its first 6+ characters as tables show it (``[761168]``)."""
    return len(ref) >= 6 and key.startswith(ref)


def close_names(name: str, runs: list[dict[str, Any]]) -> list[str]:
    """Experiment names of the store that look like ``name`` (a typo's likely meaning, or
    the start of a longer name)."""
    names = sorted({r["name"] for r in runs if r.get("name")})
    longer = [n for n in names if n.startswith(name) and n != name]
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    return list(dict.fromkeys(longer + close))[:5]
