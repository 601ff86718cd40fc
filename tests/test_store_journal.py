"""The index on disk: kdtui.json plus an append-only journal. A write is one line, O(change);
folds keep readers' view whole; torn lines, cut-short folds and hand-written indexes are
survived; an engine that cannot reach the index catches up from its events file."""

from __future__ import annotations

import fcntl
import json
import time
from pathlib import Path

from kdtui.storage import INDEX, JOURNAL, IndexDB, dump_index
from kdtui.store import Store, append_event, read_events


def _doc(run_id: str, **over) -> dict:
    doc = {"run_id": run_id, "name": "g", "group_key": "k", "seed": 0, "status": "queued",
           "created": time.time(), "epochs": 3, "epoch": 0, "label": "", "loss": "",
           "dataset": "x", "needs": [], "source": "kdtui"}  # fmt: skip
    doc.update(over)
    return doc


def _spec(run_id: str, seed: int = 0) -> dict:
    return {"run_id": run_id, "seed": seed, "group_key": "k", "created": time.time(),
            "label": "", "loss_label": "", "needs": [],
            "experiment": {"name": "g", "epochs": 3, "data": {"dataset": "x"}}}  # fmt: skip


def _store(root: Path, n: int) -> Store:
    store = Store(root)
    ids = [f"r{i:04d}" for i in range(n)]
    store.add_runs([_doc(i, seed=k) for k, i in enumerate(ids)], {i: _spec(i) for i in ids})
    return store


def test_a_write_appends_one_line_and_never_rewrites_the_index(tmp_path):
    store = _store(tmp_path, 300)
    index = tmp_path / INDEX
    before = index.stat()
    size = (tmp_path / JOURNAL).stat().st_size
    for epoch in range(1, 21):
        store.update("r0007", {"epoch": epoch})
    assert index.stat().st_ino == before.st_ino and index.stat().st_mtime_ns == before.st_mtime_ns
    grown = (tmp_path / JOURNAL).stat().st_size - size
    assert grown < 20 * 1000  # a line per change, the size of one summary, not of 300
    assert Store(tmp_path).get("r0007")["epoch"] == 20


def test_a_fold_writes_the_journal_into_the_index_and_readers_see_the_same(tmp_path):
    store = _store(tmp_path, 50)
    reader = Store(tmp_path)
    assert len(reader.runs()) == 50  # a cached view, from before the fold
    store._index.fold_min_bytes = 1  # fold after every write
    store.update("r0003", {"epoch": 2})
    journal = (tmp_path / JOURNAL).read_bytes().splitlines()
    assert len(journal) == 1  # only the generation line: everything is in kdtui.json
    gen = json.loads(journal[0])["gen"]
    assert json.loads((tmp_path / INDEX).read_bytes())["_meta"]["journal"]["gen"] == gen
    assert reader.get("r0003")["epoch"] == 2 and len(reader.runs()) == 50
    # TinyDB itself reads the index (kdtui.json with its journal)
    db = IndexDB(tmp_path / INDEX)
    assert len(db.table("runs").all()) == 50


def test_a_fold_cut_short_between_its_renames_loses_nothing(tmp_path):
    """The new kdtui.json is in place, the journal is still the old generation's: its lines
    are replayed on the new index (whole documents: replaying changes nothing)."""
    store = _store(tmp_path, 10)
    store.update("r0001", {"epoch": 1})
    old_journal = (tmp_path / JOURNAL).read_bytes()
    gen = json.loads(old_journal.splitlines()[0])["gen"]
    tables = {"runs": {r["run_id"]: r for r in store.runs()}, "todos": {}}
    (tmp_path / INDEX).write_bytes(dump_index(tables, "newgen", gen))
    store.update("r0002", {"epoch": 5})  # appended to the old journal by a second writer...
    with open(tmp_path / JOURNAL, "ab") as fh:  # ...simulated: the line lands after the cut
        fh.write(json.dumps({"runs": {"r0004": _doc("r0004", epoch=9)}}).encode() + b"\n")
    fresh = Store(tmp_path)
    assert fresh.get("r0002")["epoch"] == 5 and fresh.get("r0004")["epoch"] == 9
    fresh.update("r0005", {"epoch": 3})  # a writer finishes the fold's work first
    assert json.loads((tmp_path / JOURNAL).read_bytes().splitlines()[0])["gen"] == "newgen"
    again = Store(tmp_path)
    assert [again.get(f"r000{i}")["epoch"] for i in (1, 2, 4, 5)] == [1, 5, 9, 3]


def test_a_torn_journal_line_is_ignored_and_the_next_write_starts_a_fresh_line(tmp_path):
    store = _store(tmp_path, 3)
    with open(tmp_path / JOURNAL, "ab") as fh:
        fh.write(b'{"runs": {"r0001": {"run_id": "r0001", "sta')  # a writer killed mid-write
    assert Store(tmp_path).get("r0001")["status"] == "queued"
    store.update("r0002", {"epoch": 2})
    fresh = Store(tmp_path)
    assert fresh.get("r0002")["epoch"] == 2 and len(fresh.runs()) == 3


def test_an_index_written_by_hand_is_read_and_adopted_by_the_first_write(tmp_path):
    runs = {f"h{i}": _doc(f"h{i}") for i in range(3)}
    (tmp_path / INDEX).write_text(json.dumps({"runs": runs, "todos": {}}))
    store = Store(tmp_path)
    assert [r["run_id"] for r in store.runs()] == ["h0", "h1", "h2"]
    store.update("h1", {"epoch": 1})
    assert "_meta" in json.loads((tmp_path / INDEX).read_bytes())
    assert Store(tmp_path).get("h1")["epoch"] == 1


def test_a_journal_of_another_index_is_set_aside_not_applied(tmp_path):
    store = _store(tmp_path, 2)
    store.update("r0001", {"epoch": 7})
    runs = {"r0000": _doc("r0000"), "r0001": _doc("r0001")}
    (tmp_path / INDEX).write_text(json.dumps({"runs": runs, "todos": {}}))  # restored by hand
    assert Store(tmp_path).get("r0001")["epoch"] == 0
    Store(tmp_path).update("r0000", {"epoch": 1})
    assert list(tmp_path.glob(f"{JOURNAL}.stale-*"))
    assert Store(tmp_path).get("r0001")["epoch"] == 0


def test_an_engine_that_cannot_reach_the_index_keeps_going_and_its_summary_catches_up(
    tmp_path,
):
    store = _store(tmp_path, 1)
    engine = Store(tmp_path)
    with open(tmp_path / ".kdtui.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process holds the index
        t0 = time.monotonic()
        for event in ({"type": "start", "pid": 1}, {"type": "epoch", "epoch": 1, "acc": 40.0}):
            assert engine.record_event("r0000", event, catch_up_later=True) is None
        assert time.monotonic() - t0 < 10  # waited a moment, not the 30 s lock timeout
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert [e["type"] for e in read_events(tmp_path / "r0000")] == ["start", "epoch"]
    assert store.get("r0000")["status"] == "queued"  # the summary lags...
    engine.record_event("r0000", {"type": "epoch", "epoch": 2, "acc": 30.0})
    run = Store(tmp_path).get("r0000")  # ...and catches up at the next write
    assert (run["status"], run["epoch"], run["best_acc"], run["last_acc"]) == (
        "running", 2, 40.0, 30.0,
    )  # fmt: skip


def test_a_run_whose_engine_ended_while_the_index_was_busy_is_not_called_crashed(tmp_path):
    """The end event reached the events file but not the index; the runner's "exited
    without an end event" check reads the file first."""
    store = _store(tmp_path, 1)
    store.update("r0000", {"status": "running"})
    append_event(tmp_path / "r0000", {"type": "end", "status": "done", "time": time.time()})
    crash = {"type": "end", "status": "crashed", "reason": "engine exited without an end event"}
    assert store.record_event("r0000", crash, if_status={"running"}) is None
    assert Store(tmp_path).get("r0000")["status"] == "done"
    assert [e["status"] for e in read_events(tmp_path / "r0000")] == ["done"]


def test_events_are_folded_once_however_many_writes_follow(tmp_path):
    store = _store(tmp_path, 1)
    for epoch, acc in ((1, 50.0), (2, 60.0)):
        store.record_event("r0000", {"type": "epoch", "epoch": epoch, "acc": acc})
    store.update("r0000", {"note": "x"})
    store.record_event("r0000", {"type": "submit", "job_id": "17"})
    store.update("r0000", {"slurm_reason": "Priority"})
    store.update("r0000", {"note": "y"})  # a later catch-up must not fold "submit" again
    run = Store(tmp_path).get("r0000")
    assert run["slurm_reason"] == "Priority" and run["best_acc"] == 60.0
    assert run["events_at"] == (tmp_path / "r0000" / "events.jsonl").stat().st_size


def test_a_failed_batch_writes_nothing(tmp_path):
    store = _store(tmp_path, 2)
    size = (tmp_path / JOURNAL).stat().st_size
    try:
        with store.batch():
            store.update("r0000", {"epoch": 1})
            raise RuntimeError("changed my mind")
    except RuntimeError:
        pass
    assert (tmp_path / JOURNAL).stat().st_size == size
    assert Store(tmp_path).get("r0000")["epoch"] == 0


def test_a_batch_leaves_a_run_with_a_linked_events_file_as_it_was(tmp_path):
    """Stopping many runs, one of them a planted folder whose events.jsonl links elsewhere:
    the others end cancelled, that one stays queued, the link's target is untouched."""
    from kdtui import launcher

    store = _store(tmp_path / "ws", 3)
    target = tmp_path / "bashrc"
    target.write_text("precious\n")
    (store.run_dir("r0001") / "events.jsonl").symlink_to(target)
    assert launcher.stop_runs(store, ["r0000", "r0001", "r0002"]) == ["r0000", "r0002"]
    status = {r["run_id"]: r["status"] for r in Store(store.root).runs()}
    assert status == {"r0000": "cancelled", "r0001": "queued", "r0002": "cancelled"}
    assert target.read_text() == "precious\n"
    assert any("r0001: events.jsonl is a symbolic link" in n for n in store.notices)


def test_doctor_reads_the_folders_outside_the_lock_and_loses_nothing_written_meanwhile(
    tmp_path, monkeypatch
):
    """A rebuild reads every event of every run (seconds for a study): not under the lock.
    What an engine wrote, or a launch queued, while it read is kept."""
    store = _store(tmp_path, 2)
    scan = Store._summaries_from_folders

    def scan_then_others_write(self: Store):
        found = scan(self)
        assert not self._index.holding()  # the folders are read without the lock
        writer = Store(tmp_path)
        writer.record_event("r0000", {"type": "epoch", "epoch": 1, "acc": 55.0})
        writer.add_runs([_doc("late")], {"late": _spec("late")})
        return found

    monkeypatch.setattr(Store, "_summaries_from_folders", scan_then_others_write)
    assert "rebuilt 3 runs" in store.rebuild()
    fresh = Store(tmp_path)
    assert fresh.get("r0000")["best_acc"] == 55.0 and fresh.get("late")["status"] == "queued"
