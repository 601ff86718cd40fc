"""How the run index lies on disk: a TinyDB file, and an append-only journal beside it.

    kdtui.json      the TinyDB document: tables ``runs`` (one summary per run), ``todos``,
                    and ``_meta`` (the generation of the journal that goes with it)
    kdtui.journal   a first line ``{"gen": G}``, then one line per committed batch of
                    changes: ``{"runs": {id: summary | null}, "todos": {id: todo | null}}``
                    — whole documents; null deletes one
    .kdtui.lock     the writers' lock (``fcntl.flock``)

Why a journal: rewriting kdtui.json whole for every change made each write cost O(runs),
all of it while holding the lock, so a launch of N runs cost O(N²) and a training that
wanted to write its epoch meanwhile died waiting. Here a write appends one line and fsyncs
it — O(size of the change) — and the lock is held for that append only. When the journal
outgrows a share of kdtui.json it is folded in: the new kdtui.json is built and written
*outside* the lock (the part that costs O(runs)); under it, only the swap (new kdtui.json,
then a new journal that keeps the lines appended meanwhile).

Readers take no lock. They open the journal, read kdtui.json, then read the journal and
apply its lines in order; a torn last line (a writer killed mid-append) is ignored, and the
next append starts a fresh line. Lines carry whole documents, so replaying lines that
kdtui.json already holds changes nothing: a reader that meets the journal of the previous
generation (a fold between its two reads, or a fold cut short by a crash) replays it on
the new kdtui.json safely. A reader keeps what it read and, next time, parses only what was
appended since, so the app's poll and the queue runner's tick cost O(change) as well.

This module knows files, not runs: ``kdtui.store`` builds the run store on it (what a run
is, how a lost index is rebuilt from the run folders).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

INDEX = "kdtui.json"
JOURNAL = "kdtui.journal"
LOCK = ".kdtui.lock"
TODOS_COPY = "todos.json"  # the TODO list's own copy (runs have their folders)
FOLD_LOCK = ".kdtui.fold.lock"
META = "_meta"
#: The tables and the field that holds each document's own id.
KEYS = {"runs": "run_id", "todos": "id"}
#: The journal is folded into kdtui.json once it is larger than this and than half of it,
#: so a reader parses at most 1.5× the index and a write costs O(change) amortised.
FOLD_MIN_BYTES = 1 << 20
#: Temp files older than this are left-overs of a killed writer, removed by the next fold.
STALE_TMP_S = 3600.0

Tables = dict[str, dict[str, dict[str, Any]]]


class StoreError(Exception):
    """A store operation that cannot go on (bad run id, locked too long...)."""


class IndexCorrupt(StoreError):
    """kdtui.json is not a readable index (not JSON, or not of the index's shape)."""


class IndexMissing(IndexCorrupt):
    """kdtui.json is gone while the workspace holds runs, a journal or a TODO copy."""


class WriteFailed(StoreError):
    """A file could not be written; the message is one line: cause, what, which file."""


#: Short causes for the errors a user can do something about.
CAUSES = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "not permitted",
    errno.EIO: "I/O error",
}


def describe_os_error(exc: OSError, doing: str | None = None, root: Path | None = None) -> str:
    """One line for an OSError: ``disk full writing ckpt/last.pt`` (with ``doing``), or
    ``runs/kdtui.json: read-only file system``. The file is named relative to ``root``
    when it lies inside it."""
    cause = CAUSES.get(exc.errno or 0) or exc.strerror or str(exc) or type(exc).__name__
    name = exc.filename
    if name is not None and root is not None:
        with contextlib.suppress(ValueError):
            name = str(Path(name).relative_to(root))
    if name is None:
        return f"{cause} {doing}".strip() if doing else cause
    return f"{cause} {doing} {name}" if doing else f"{name}: {cause}"


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (new files, renames) durable; an OSError names the folder."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def write_temp(path: Path, data: bytes | memoryview) -> Path:
    """``data`` in a fresh, fsynced temp file beside ``path`` (``.<name>.XXXX.tmp``), for a
    later ``os.replace``. On failure the temp file is removed and the OSError names
    ``path``, not the temp file."""
    tmp = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    return tmp


def atomic_write(path: Path, data: bytes | memoryview, *, sync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never
    a mix: a temp file in the same folder, fsync, rename, fsync of the folder. On failure
    (a full disk, a read-only folder) the temp file is gone, the old file is intact, and
    the OSError names ``path``."""
    tmp = write_temp(path, data)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    if sync_dir:
        try:
            fsync_dir(path.parent)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None


@dataclass
class View:
    """The index as one reader last saw it: kdtui.json's tables with the journal applied."""

    tables: Tables
    gen: str | None  # kdtui.json's generation; None: written by hand or by an older kdtui
    prev: str | None  # the generation it was folded from
    base_key: tuple[int, int, int] | None  # (inode, size, mtime) of the kdtui.json read
    journal_ino: int | None
    journal_gen: str | None  # the journal's own generation (None: no journal applied)
    offset: int = 0  # journal bytes consumed (whole lines)
    applied: int = 0  # journal lines applied to ``tables`` since they were parsed


def loads(raw: bytes) -> Any:
    """JSON to Python, by pydantic's parser when it is there (pydantic is a dependency and
    typer loads it anyway): twice as fast as ``json.loads`` on a 10,000-run index, which is
    most of what ``kdtui ls`` does. ValueError for what is not JSON (or nested too deep)."""
    try:
        from pydantic_core import from_json
    except ImportError:  # pragma: no cover - pydantic v2 always brings it
        try:
            return json.loads(raw)
        except RecursionError:
            raise ValueError("nested too deep") from None
    return from_json(raw)


def valid_doc(table: str, doc_id: Any, doc: Any) -> bool:
    """A document of the index's shape: an object that carries its own id (and, for a run,
    a status; for a TODO, a text)."""
    if not isinstance(doc, dict) or doc.get(KEYS[table]) != doc_id:
        return False
    return isinstance(doc.get("status" if table == "runs" else "text"), str)


def parse_index(raw: bytes, path: Path) -> tuple[Tables, str | None, str | None]:
    """kdtui.json's tables and generation; IndexCorrupt unless it is an index: a JSON
    object whose tables are objects of documents (see ``valid_doc``)."""
    if not raw.strip():
        raise IndexCorrupt(f"{path} is empty")
    try:
        data = loads(raw)
    except ValueError as exc:
        raise IndexCorrupt(f"{path} is not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise IndexCorrupt(f"{path} does not hold an index object")
    tables: Tables = {}
    for name in KEYS:
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise IndexCorrupt(f"{path}: {name!r} is not an object of documents")
        bad = next((k for k, v in table.items() if not valid_doc(name, k, v)), None)
        if bad is not None:
            raise IndexCorrupt(f"{path}: {name}[{bad!r}] is not a {name[:-1]} document")
        tables[name] = table
    meta = data.get(META, {})
    journal = meta.get("journal") if isinstance(meta, dict) else None
    if not isinstance(journal, dict):
        return tables, None, None
    gen, prev = journal.get("gen"), journal.get("prev")
    return tables, gen if isinstance(gen, str) else None, prev if isinstance(prev, str) else None


def dump_index(tables: Tables, gen: str, prev: str | None) -> bytes:
    """kdtui.json's bytes: a TinyDB document (tables of documents keyed by id)."""
    body: dict[str, Any] = {name: tables.get(name, {}) for name in KEYS}
    body[META] = {"journal": {"gen": gen, "prev": prev}}
    return json.dumps(body, separators=(",", ":")).encode()


def apply_line(tables: Tables, line: bytes) -> bool:
    """Apply one journal line; a torn or malformed one (a kill mid-write) changes nothing.
    Returns whether it was a batch of changes."""
    try:
        batch = loads(line)
    except ValueError:
        return False
    if not isinstance(batch, dict) or "gen" in batch:
        return False
    for name in KEYS:
        changes = batch.get(name)
        if not isinstance(changes, dict):
            continue
        table = tables.setdefault(name, {})
        for doc_id, doc in changes.items():
            if doc is None:
                table.pop(doc_id, None)
            elif valid_doc(name, doc_id, doc):
                table[doc_id] = doc
    return True


def _header(gen: str) -> bytes:
    return json.dumps({"gen": gen}).encode() + b"\n"


def _read_header(fh: Any) -> tuple[str | None, int]:
    """The journal's generation and the offset of its first change."""
    first = fh.readline()
    if not first.endswith(b"\n"):
        return None, 0
    try:
        gen = json.loads(first).get("gen")
    except (ValueError, AttributeError):
        return None, 0
    return (gen if isinstance(gen, str) else None), len(first)


def _key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Index:
    """kdtui.json + kdtui.journal of one workspace: cached incremental reads, the lock,
    one-line commits, the fold."""

    def __init__(self, root: Path, lock_timeout_s: float = 30.0):
        self.root = root
        self.path = root / INDEX
        self.journal = root / JOURNAL
        self.lock_path = root / LOCK
        self.lock_timeout_s = lock_timeout_s
        self.fold_min_bytes = FOLD_MIN_BYTES
        self.longest_hold_s = 0.0  # the longest this process held the lock (benchmarks)
        self._view: View | None = None
        # table → (view, its ``applied``, key, documents sorted by key): see sorted_docs
        self._sorted: dict[str, tuple[View, int, Any, list[dict[str, Any]]]] = {}
        self._mutex = threading.RLock()  # the cached view, shared by the app's threads
        self._local = threading.local()  # this thread's hold of the lock (reentrant)

    # ------------------------------------------------------------------ reading

    def read(self) -> View:
        """The index now, from the cache plus what was appended since. IndexCorrupt when
        kdtui.json is unreadable, IndexMissing when it is gone but the workspace is not
        empty (``has_content``)."""
        with self._mutex:
            for _ in range(8):
                view = self._try_read(self._view)
                if view is not None:
                    self._view = view
                    return view
                time.sleep(0.002)  # a fold between our two reads: read again
            # A journal of neither this generation nor the last: left by a hand-restored
            # kdtui.json. kdtui.json alone is the index; a writer moves the journal aside.
            view = self._try_read(None, use_journal=False)
            assert view is not None
            self._view = view
            return view

    def docs(self, table: str) -> dict[str, dict[str, Any]]:
        """A copy of one table's {id: document} map (the documents themselves are shared:
        never change them in place)."""
        with self._mutex:
            return dict(self.read().tables.get(table, {}))

    def sorted_docs(self, table: str, key: Any) -> list[dict[str, Any]]:
        """One table's documents sorted by ``key`` (shared: never change them), sorted once
        per change of the index rather than per call: a command that reads 10,000 runs
        asks for them three times (crash check, runner check, its own listing)."""
        with self._mutex:
            view = self.read()
            cached = self._sorted.get(table)
            if cached is None or cached[0] is not view or cached[1:3] != (view.applied, key):
                docs = sorted(view.tables.get(table, {}).values(), key=key)
                cached = self._sorted[table] = (view, view.applied, key, docs)
            return list(cached[3])

    def doc(self, table: str, doc_id: str) -> dict[str, Any] | None:
        """One document (shared: copy it before changing it)."""
        with self._mutex:
            return self.read().tables.get(table, {}).get(doc_id)

    def _try_read(self, cached: View | None, use_journal: bool = True) -> View | None:
        try:
            jf = open(self.journal, "rb") if use_journal else None  # noqa: SIM115
        except FileNotFoundError:
            jf = None
        try:
            try:
                bf = open(self.path, "rb")  # noqa: SIM115
            except FileNotFoundError:
                if jf is not None or self.has_content():
                    raise IndexMissing(f"{self.path} is missing") from None
                return View({name: {} for name in KEYS}, None, None, None, None, None)
            with bf:
                key = _key(os.fstat(bf.fileno()))
                jst = os.fstat(jf.fileno()) if jf is not None else None
                jino = jst.st_ino if jst is not None else None
                if (
                    cached is not None
                    and cached.base_key == key
                    and cached.journal_ino == jino
                    and (jst is None or jst.st_size >= cached.offset)
                ):
                    if jf is not None:
                        self._apply_from(cached, jf)
                    return cached
                raw = bf.read()
            tables, gen, prev = parse_index(raw, self.path)
            view = View(tables, gen, prev, key, None, None)
            if jf is None:
                return view
            jgen, offset = _read_header(jf)
            if jgen is None or jgen not in (gen, prev):
                return None if use_journal and jgen is not None else view
            view.journal_ino, view.journal_gen, view.offset = jino, jgen, offset
            self._apply_from(view, jf)
            return view
        finally:
            if jf is not None:
                jf.close()

    @staticmethod
    def _apply_from(view: View, jf: Any) -> None:
        """Apply the whole lines appended since ``view.offset``."""
        jf.seek(view.offset)
        chunk = jf.read()
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        for line in chunk[: end + 1].splitlines():
            if line.strip():
                apply_line(view.tables, line)
                view.applied += 1
        view.offset += end + 1

    def has_content(self) -> bool:
        """Whether the workspace holds what an index would list: a journal, the TODO copy,
        or a run folder (a spec.json one level down)."""
        if self.journal.exists() or (self.root / TODOS_COPY).exists():
            return True
        try:
            return any(self.root.glob("*/spec.json"))
        except OSError:
            return False

    def stamp(self) -> tuple[Any, ...]:
        """Changes whenever the index does (kdtui.json or its journal): a cheap poll."""
        out: list[Any] = []
        for path in (self.path, self.journal):
            try:
                out.append(_key(os.stat(path)))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    # ------------------------------------------------------------------ the lock

    @contextlib.contextmanager
    def locked(self, timeout_s: float | None = None) -> Iterator[None]:
        """The workspace's write lock, reentrant within a thread. StoreError when another
        process holds it past the timeout; WriteFailed when it cannot be taken at all (a
        read-only workspace)."""
        if getattr(self._local, "depth", 0):
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        timeout_s = self.lock_timeout_s if timeout_s is None else timeout_s
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fh = open(self.lock_path, "a+")  # noqa: SIM115
        except OSError as exc:
            raise WriteFailed(describe_os_error(exc, "locking")) from None
        with fh:
            deadline, pause = time.monotonic() + timeout_s, 0.001
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"{self.lock_path} stayed locked for {timeout_s:.0f} s"
                        ) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.02)
            held = time.perf_counter()
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0
                self.longest_hold_s = max(self.longest_hold_s, time.perf_counter() - held)
                fcntl.flock(fh, fcntl.LOCK_UN)

    def holding(self) -> bool:
        return bool(getattr(self._local, "depth", 0))

    # ------------------------------------------------------------------ writing (lock held)

    def commit(self, changes: Tables) -> None:
        """Append one batch of changes as one journal line, fsynced (lock held). On failure
        the journal is cut back to where it was and WriteFailed says why."""
        changes = {name: c for name, c in changes.items() if c}
        if not changes:
            return
        assert self.holding(), "commit needs the lock"
        view = self.read()
        self._journal_ready(view)
        line = json.dumps(changes, separators=(",", ":")).encode() + b"\n"
        try:
            fd = os.open(self.journal, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except OSError as exc:
            raise WriteFailed(describe_os_error(exc, "writing")) from None
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # the last append was torn: start a fresh line
            try:
                view_data = memoryview(line)
                while view_data:
                    view_data = view_data[os.write(fd, view_data) :]
                os.fsync(fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)  # leave no half line behind
                raise WriteFailed(
                    describe_os_error(
                        OSError(exc.errno, exc.strerror, str(self.journal)), "writing"
                    )
                ) from None
        finally:
            os.close(fd)

    def _journal_ready(self, view: View) -> None:
        """Make the journal one of kdtui.json's generation before appending to it."""
        if view.gen is None:  # a kdtui.json written by hand or by an older kdtui
            if self.journal.exists():  # of the index it replaced: kept aside, not applied
                self._set_aside()
            self.replace_all(view.tables)
            return
        if view.journal_gen == view.gen:
            return
        try:
            if view.journal_gen is not None and view.journal_gen == view.prev:
                # a fold cut short between its two renames: its lines are safe to keep
                with open(self.journal, "rb") as jf:
                    _, offset = _read_header(jf)
                    jf.seek(offset)
                    rest = jf.read()
                atomic_write(self.journal, _header(view.gen) + rest)
            else:
                if self.journal.exists():  # of another kdtui.json: kept aside, not applied
                    self._set_aside()
                atomic_write(self.journal, _header(view.gen))
        except OSError as exc:
            raise WriteFailed(describe_os_error(exc, "writing")) from None
        self._view = None
        self.read()

    def _set_aside(self) -> None:
        try:
            os.replace(self.journal, self.journal.with_name(f"{JOURNAL}.stale-{_stamp()}"))
        except OSError as exc:
            raise WriteFailed(describe_os_error(exc, "moving")) from None

    def replace_all(self, tables: Tables) -> None:
        """Write kdtui.json whole from ``tables`` with a fresh generation and an empty
        journal (lock held): recovery, rebuild, adopting an index written by hand."""
        assert self.holding(), "replace_all needs the lock"
        gen = secrets.token_hex(6)
        try:
            atomic_write(self.path, dump_index(tables, gen, None))
            atomic_write(self.journal, _header(gen))
        except OSError as exc:
            raise WriteFailed(describe_os_error(exc, "writing")) from None
        finally:
            self._view = None

    # ------------------------------------------------------------------ the fold

    def fold_if_due(self) -> bool:
        """Fold the journal into kdtui.json when it has grown past its share (called after
        a commit, lock released). A fold that cannot be written (a full disk) is skipped:
        the journal keeps every change and a later commit tries again."""
        try:
            journal = os.stat(self.journal).st_size
            base = os.stat(self.path).st_size
        except OSError:
            return False
        if journal < max(self.fold_min_bytes, base // 2):
            return False
        try:
            return self.fold()
        except (OSError, StoreError):
            return False

    def fold(self) -> bool:
        """Fold the journal into a new kdtui.json; returns whether it did. One folder at a
        time (a second one leaves at once). The O(runs) work happens outside the lock."""
        with open(self.root / FOLD_LOCK, "a+") as guard:
            try:
                fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self._remove_stale_temps()
            with self.locked():
                view = self.read()
                if view.gen is None or view.journal_gen != view.gen:
                    return False
                gen, key, upto = view.gen, view.base_key, view.offset
            # Outside the lock: kdtui.json only changes by a fold (ours) or under the lock
            # with a new generation, which the swap below checks for.
            with open(self.path, "rb") as bf:
                if _key(os.fstat(bf.fileno())) != key:
                    return False
                tables, _, _ = parse_index(bf.read(), self.path)
            with open(self.journal, "rb") as jf:
                if _read_header(jf)[0] != gen:
                    return False
                head = View(tables, gen, None, key, None, gen, jf.tell())
                chunk = jf.read(upto - jf.tell())
                for line in chunk.splitlines():
                    if line.strip():
                        apply_line(head.tables, line)
            new = secrets.token_hex(6)
            tmp_index: Path | None = write_temp(self.path, dump_index(head.tables, new, gen))
            tmp_journal: Path | None = None
            try:
                with self.locked():
                    now = self.read()
                    if (now.gen, now.base_key, now.journal_gen) != (gen, key, gen):
                        return False
                    if now.offset < upto:
                        return False
                    with open(self.journal, "rb") as jf:
                        jf.seek(upto)
                        tail = jf.read()  # appended since we looked: carried over
                    tmp_journal = write_temp(self.journal, _header(new) + tail)
                    os.replace(tmp_index, self.path)
                    tmp_index = None
                    os.replace(tmp_journal, self.journal)
                    tmp_journal = None
                    self._view = None
                    fsync_dir(self.root)
                return True
            finally:
                for tmp in (tmp_index, tmp_journal):
                    if tmp is not None:
                        with contextlib.suppress(OSError):
                            tmp.unlink()

    def _remove_stale_temps(self) -> None:
        """Temp files of writers killed mid-write (fold lock held)."""
        cutoff = time.time() - STALE_TMP_S
        for pattern in (f".{INDEX}.*.tmp", f".{JOURNAL}.*.tmp"):
            for tmp in self.root.glob(pattern):
                with contextlib.suppress(OSError):
                    if tmp.stat().st_mtime < cutoff:
                        tmp.unlink()


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


class IndexStorage(Storage):
    """TinyDB's view of a workspace index: kdtui.json with its journal applied, read-only
    (``IndexDB`` below). Writes go through ``kdtui.store.Store``, which batches them into
    journal lines under the lock."""

    def __init__(self, path: str | Path):
        self._index = Index(Path(path).parent)

    def read(self) -> dict[str, Any] | None:
        view = self._index.read()
        return {name: dict(table) for name, table in view.tables.items()}

    def write(self, data: dict[str, Any]) -> None:
        raise StoreError("the index is written through kdtui.store.Store, in batches")


class _KeyedTable(Table):
    """Documents keyed by their own string id (run id, TODO id), never TinyDB's counter."""

    document_id_class = str

    def _get_next_id(self) -> str:
        raise StoreError("kdtui documents carry their own ids")


class IndexDB(TinyDB):
    """TinyDB over a workspace index, read-only: ``IndexDB("runs/kdtui.json").table("runs")``
    queries every run summary, the journal's changes included."""

    table_class = _KeyedTable
    default_storage_class = IndexStorage
