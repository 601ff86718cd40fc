"""The run store: a TinyDB index of run summaries plus one folder per run.

Layout (under the workspace, ``./runs`` by default)::

    kdtui.json              TinyDB: tables ``runs`` (one summary per run) and ``todos``
    <run_id>/spec.json      the frozen run spec (experiment + seed + what it needs)
    <run_id>/events.jsonl   append-only events: start, epoch, end, error
    <run_id>/stdout.log     the engine's output
    <run_id>/heartbeat      {"time", "epoch"}, rewritten every few seconds by the engine
    <run_id>/ckpt/          last.pt (resume), best.pt, and their JSON sidecars
    cache/                  computed views, shared by all runs

TinyDB rewrites its whole file on every write and is not safe across processes, so every
write here holds an inter-process lock (``fcntl.flock``) for the read-modify-write and
replaces the file atomically (temp file, fsync, ``os.replace``). Readers take no lock: they
always see a whole file. Each operation opens a fresh TinyDB, so no process ever answers
from a stale query cache. Per-epoch metrics live in ``events.jsonl``; the index keeps a
small summary per run, folded from the same events by ``fold_event``.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from kdtui.safefs import open_nofollow, read_bytes_nofollow

STATUSES = ("queued", "running", "done", "failed", "crashed", "cancelled")
TERMINAL = frozenset({"done", "failed", "crashed", "cancelled"})
ACTIVE = frozenset({"queued", "running"})
TRASH = "trash"  # where `kdtui rm` puts run folders
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
HEARTBEAT_EVERY_S = 10.0


class StoreError(Exception):
    """A store operation that cannot go on (bad run id, locked too long...)."""


class IndexCorrupt(StoreError):
    """kdtui.json exists but is not a readable index."""


def default_workspace() -> Path:
    return Path(os.environ.get("KDTUI_WORKSPACE", "runs"))


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never
    a mix: a temp file in the same folder, fsync, rename, fsync of the folder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _AtomicJSONStorage(Storage):
    """TinyDB storage that reads the file fresh and replaces it atomically on write."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[str, Any] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            raise IndexCorrupt(f"{self.path} is empty")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise IndexCorrupt(f"{self.path} is not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise IndexCorrupt(f"{self.path} does not hold an index object")
        return data

    def write(self, data: dict[str, Any]) -> None:
        atomic_write(self.path, json.dumps(data, separators=(",", ":")).encode())


class _KeyedTable(Table):
    """Documents keyed by their own string id (run id, todo id), never TinyDB's counter,
    so two processes can never hand out the same id."""

    document_id_class = str

    def _get_next_id(self) -> str:
        raise StoreError("kdtui documents carry their own ids")


class _DB(TinyDB):
    table_class = _KeyedTable


def new_run_id(name: str, seed: int) -> str:
    return f"{name[:80]}-s{seed}-{secrets.token_hex(3)}"


def initial_summary(run_spec: dict[str, Any]) -> dict[str, Any]:
    """The index document of a freshly queued run, from its frozen spec."""
    exp = run_spec["experiment"]
    return {
        "run_id": run_spec["run_id"],
        "name": exp["name"],
        "group_key": run_spec["group_key"],
        "seed": run_spec["seed"],
        "status": "queued",
        "created": run_spec["created"],
        "epochs": exp["epochs"],
        "epoch": 0,
        "label": run_spec["label"],
        "loss": run_spec["loss_label"],
        "dataset": exp["data"]["dataset"],
        "needs": run_spec["needs"],
        "source": run_spec.get("source", "kdtui"),  # outside results: "notes:...", "record"
        "executor": run_spec.get("executor", "local"),  # who starts it: local runner or Slurm
    }


def fold_event(summary: dict[str, Any], event: dict[str, Any]) -> None:
    """Update a run summary with one event. The engine's live updates and the rebuild of a
    lost index both go through here, so the two can never disagree."""
    kind, at = event.get("type"), event.get("time")
    if kind in ("start", "end", "error"):  # what Slurm last said no longer holds
        for key in ("slurm_reason",) if kind == "start" else ("slurm_reason", "slurm_state"):
            if key in summary:
                summary[key] = None
    if kind == "start":
        summary.update(status="running", error=None, ended=None, heartbeat=at)
        summary.setdefault("started", at)
        for key in (
            "pid",
            "pid_start",
            "host",
            "device",
            "device_name",
            "epochs",
            "teacher_runs",
            "versions",
            "command",
        ):
            if key in event:
                summary[key] = event[key]
    elif kind == "epoch":
        acc = event.get("acc")
        summary.update(
            epoch=event.get("epoch"),
            acc=acc,
            last_acc=acc,
            nll=event.get("nll"),
            ece=event.get("ece"),
            train_loss=event.get("train_loss"),
            heartbeat=at,
        )
        if acc is not None and (summary.get("best_acc") is None or acc > summary["best_acc"]):
            summary.update(best_acc=acc, best_epoch=event.get("epoch"))
    elif kind == "end":
        summary.update(status=event.get("status", "done"), ended=at)
        summary["error"] = event.get("reason")
        for key in ("best_acc", "best_epoch", "last_acc"):
            if event.get(key) is not None:
                summary[key] = event[key]
    elif kind == "error":
        summary.update(status="failed", ended=at, error=event.get("message"))
    elif kind == "submit":  # handed to Slurm: a fresh job that nothing is known about yet
        summary.update(status="queued", error=None, ended=None, job_id=event.get("job_id"))
        summary.update(node=None, slurm_state=None, slurm_reason=None)


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    """All events of a run. A torn or malformed line (a kill mid-write) is skipped."""
    try:
        raw = read_bytes_nofollow(run_dir / "events.jsonl")
    except FileNotFoundError:
        return []
    events = []
    for line in raw.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def append_event(run_dir: Path, event: dict[str, Any]) -> None:
    """Append one event line durably (flush + fsync), starting a fresh line if the last
    write was torn."""
    path = run_dir / "events.jsonl"
    line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
    with open_nofollow(path, "ab+") as fh:  # a planted link is refused, never followed
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                line = b"\n" + line
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


class Store:
    """All reads and writes of a workspace's index and run folders."""

    def __init__(self, root: Path | str | None = None, lock_timeout_s: float = 30.0):
        self.root = Path(root) if root is not None else default_workspace()
        self.index_path = self.root / "kdtui.json"
        self.lock_path = self.root / ".kdtui.lock"
        self.todos_backup = self.root / "todos.json"
        self.cache_dir = self.root / "cache"
        self.lock_timeout_s = lock_timeout_s
        self.notices: list[str] = []  # what a recovery did, for the CLI/TUI to show

    # ------------------------------------------------------------------ low level

    def run_dir(self, run_id: str) -> Path:
        if not RUN_ID_PATTERN.match(run_id):
            raise StoreError(f"not a run id: {run_id!r}")
        return self.root / run_id

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as fh:
            deadline = time.monotonic() + self.lock_timeout_s
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"{self.lock_path} stayed locked for {self.lock_timeout_s:.0f} s"
                        ) from None
                    time.sleep(0.01)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _db(self) -> _DB:
        return _DB(self.index_path, storage=_AtomicJSONStorage)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[_DB]:
        with self._lock():
            self._recover_if_corrupt_locked()
            yield self._db()

    def _recover_if_corrupt_locked(self) -> None:
        """Rebuild an unreadable index (lock held); another process may have done it."""
        try:
            _AtomicJSONStorage(self.index_path).read()
        except IndexCorrupt as exc:
            self._recover_locked(str(exc))

    def _table(self, name: str) -> dict[str, dict[str, Any]]:
        """Read one table as {id: doc}, recovering a corrupt index once."""
        try:
            data = _AtomicJSONStorage(self.index_path).read()
        except IndexCorrupt:
            with self._lock():
                self._recover_if_corrupt_locked()
            data = _AtomicJSONStorage(self.index_path).read()
        return dict((data or {}).get(name, {}))

    # ------------------------------------------------------------------ runs

    def runs(self) -> list[dict[str, Any]]:
        """Every run summary, oldest first."""
        return sorted(
            self._table("runs").values(), key=lambda d: (d.get("created", 0), d["run_id"])
        )

    def get(self, run_id: str) -> dict[str, Any] | None:
        return self._table("runs").get(run_id)

    def add_runs(self, docs: list[dict[str, Any]], specs: dict[str, dict[str, Any]]) -> None:
        """Create run folders with their frozen specs, then index them (status queued)."""
        for doc in docs:
            run_dir = self.run_dir(doc["run_id"])
            run_dir.mkdir(parents=True, exist_ok=False)
            atomic_write(run_dir / "spec.json", json.dumps(specs[doc["run_id"]], indent=2).encode())
        with self._writing() as db:
            table = db.table("runs")
            for doc in docs:
                table.insert(Document(doc, doc_id=doc["run_id"]))

    def put_runs(self, docs: list[dict[str, Any]]) -> None:
        """Insert or replace whole run summaries in one write: outside results, whose
        folders the caller has written, are re-imported in place under their stable ids."""
        if not docs:
            return
        with self._writing():
            storage = _AtomicJSONStorage(self.index_path)
            data = storage.read() or {}
            data.setdefault("runs", {}).update({d["run_id"]: d for d in docs})
            storage.write(data)

    def remove_runs(self, run_ids: Collection[str]) -> list[str]:
        """Take runs that are not queued or running out of the index and move their folders
        to ``trash/`` (a mistake is undone by moving a folder back and ``kdtui doctor``).
        Returns the ids removed."""
        with self._writing():
            storage = _AtomicJSONStorage(self.index_path)
            data = storage.read() or {}
            runs = data.setdefault("runs", {})
            gone = [i for i in run_ids if i in runs and runs[i].get("status") not in ACTIVE]
            for run_id in gone:
                del runs[run_id]
            storage.write(data)
            trash = self.root / TRASH
            for run_id in gone:
                if self.run_dir(run_id).exists():
                    trash.mkdir(exist_ok=True)
                    place = trash / run_id
                    if place.exists():  # removed before, brought back, removed again
                        place = trash / f"{run_id}.{time.strftime('%Y%m%d-%H%M%S')}"
                    os.replace(self.run_dir(run_id), place)
        return gone

    def update(
        self, run_id: str, fields: dict[str, Any], *, if_status: Collection[str] | None = None
    ) -> dict[str, Any] | None:
        """Set fields of one run; with ``if_status``, only while its status is one of those
        (checked under the lock). Returns the new summary, or None if nothing changed."""
        return self.modify(run_id, lambda doc: doc.update(fields), if_status=if_status)

    def modify(
        self,
        run_id: str,
        change: Callable[[dict[str, Any]], Any],
        *,
        if_status: Collection[str] | None = None,
    ) -> dict[str, Any] | None:
        """Apply ``change`` to one run summary under the lock."""
        with self._writing() as db:
            table = db.table("runs")
            doc = table.get(doc_id=run_id)
            if doc is None or (if_status is not None and doc.get("status") not in if_status):
                return None
            new = dict(doc)
            change(new)
            table.update(new, doc_ids=[run_id])
            return new

    def record_event(
        self, run_id: str, event: dict[str, Any], *, if_status: Collection[str] | None = None
    ) -> dict[str, Any] | None:
        """Append an event to the run's file and fold it into its summary. With
        ``if_status``, only while the run's status is one of those, decided under the lock
        (the summary changes first; the event is appended only if it did)."""
        event.setdefault("time", time.time())
        if if_status is not None:
            new = self.modify(run_id, lambda doc: fold_event(doc, event), if_status=if_status)
            if new is not None:
                append_event(self.run_dir(run_id), event)
            return new
        append_event(self.run_dir(run_id), event)
        return self.modify(run_id, lambda doc: fold_event(doc, event))

    def delete_runs(self, run_ids: Collection[str]) -> None:
        with self._writing() as db:
            db.table("runs").remove(doc_ids=list(run_ids))

    def read_spec(self, run_id: str) -> dict[str, Any]:
        return json.loads(read_bytes_nofollow(self.run_dir(run_id) / "spec.json"))

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return read_events(self.run_dir(run_id))

    # ------------------------------------------------------------------ todos

    def todos(self) -> list[dict[str, Any]]:
        return sorted(self._table("todos").values(), key=lambda d: (d.get("order", 0), d["id"]))

    def add_todo(self, text: str, **fields: Any) -> dict[str, Any]:
        todo = {"id": secrets.token_hex(4), "text": text, "done": False, "created": time.time()}
        todo.update(fields)
        with self._writing_todos() as table:
            todo.setdefault("order", max((d.get("order", 0) for d in table.all()), default=0) + 1)
            table.insert(Document(todo, doc_id=todo["id"]))
        return todo

    def update_todo(self, todo_id: str, **fields: Any) -> dict[str, Any] | None:
        with self._writing_todos() as table:
            if table.get(doc_id=todo_id) is None:
                return None
            table.update(fields, doc_ids=[todo_id])
            return table.get(doc_id=todo_id)

    def delete_todo(self, todo_id: str) -> bool:
        with self._writing_todos() as table:
            return bool(table.remove(doc_ids=[todo_id]))

    @contextlib.contextmanager
    def _writing_todos(self) -> Iterator[Table]:
        """The todos table, copied to ``todos.json`` after each change: runs can be rebuilt
        from their folders when the index is lost, todos only from this copy."""
        with self._writing() as db:
            table = db.table("todos")
            yield table
            atomic_write(self.todos_backup, json.dumps({"todos": table.all()}).encode())

    # ------------------------------------------------------------------ integrity

    def _recover_locked(self, why: str) -> None:
        """Move an unreadable index aside and rebuild it from the run folders (lock held)."""
        aside = self.index_path.with_name(f"kdtui.json.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(self.index_path, aside)
        runs = self._summaries_from_folders()
        db = self._db()
        db.table("runs").insert_multiple(Document(d, doc_id=d["run_id"]) for d in runs)
        try:
            todos = json.loads(self.todos_backup.read_text())["todos"]
        except FileNotFoundError:
            todos, kept = [], ""
        except (ValueError, KeyError, TypeError) as exc:
            todos, kept = [], f"; the todo list is lost ({self.todos_backup.name}: {exc})"
        else:
            kept = f" and {len(todos)} todo(s) from {self.todos_backup.name}"
        db.table("todos").insert_multiple(Document(d, doc_id=d["id"]) for d in todos)
        self.notices.append(
            f"the index was unreadable ({why}); moved it to {aside.name} and rebuilt {len(runs)} runs from their folders{kept}"
        )

    def rebuild(self) -> str:
        """Rebuild the runs table from the run folders, keeping todos (``kdtui doctor``)."""
        with self._lock():
            try:
                old = _AtomicJSONStorage(self.index_path).read() or {}
            except IndexCorrupt as exc:
                self._recover_locked(str(exc))
                return self.notices[-1]
            runs = self._summaries_from_folders()
            before = set(old.get("runs", {}))
            old["runs"] = {d["run_id"]: d for d in runs}
            _AtomicJSONStorage(self.index_path).write(old)
        after = set(old["runs"])
        return (
            f"rebuilt {len(after)} runs from their folders "
            f"(missing from the index: {len(after - before)}; "
            f"in the index without a folder: {len(before - after)})"
        )

    def _summaries_from_folders(self) -> list[dict[str, Any]]:
        out = []
        for spec_path in sorted(self.root.glob("*/spec.json")):
            try:
                summary = initial_summary(json.loads(spec_path.read_text()))
            except (ValueError, KeyError, TypeError, OSError):
                continue
            for event in read_events(spec_path.parent):
                fold_event(summary, event)
            out.append(summary)
        return out

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
