"""Resume puts a run back in the queue, and with it the students its failure failed."""

from __future__ import annotations

import pytest
from conftest import tiny_experiment

from kdtui import launcher, procs
from kdtui.executors import local
from kdtui.spec import validate_spec
from kdtui.store import Store


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    monkeypatch.setattr(local, "ensure_runner", lambda store: None)  # no processes
    return Store(tmp_path / "ws")


def test_resuming_a_teacher_requeues_the_students_it_failed(store: Store) -> None:
    kd = {"loss": {"kd": {}}}
    spec = validate_spec(
        [
            tiny_experiment("t", seeds=[0]),
            tiny_experiment("s", seeds=[0], teachers=[{"experiment": "t"}], **kd),
            tiny_experiment("s2", seeds=[0], teachers=[{"experiment": "s"}], **kd),
            tiny_experiment("ran", seeds=[0], teachers=[{"experiment": "t"}], epochs=3, **kd),
        ]
    )
    ids = dict(zip(["t", "s", "s2", "ran"], launcher.enqueue(store, spec), strict=True))
    store.record_event(ids["t"], {"type": "end", "status": "cancelled", "reason": "asked"})
    for name in ("s", "s2"):  # what the runner writes for a student whose teacher can't succeed
        store.record_event(ids[name], {"type": "error", "message": "teacher 't' is cancelled"})
    store.record_event(ids["ran"], {"type": "start", "pid": 1, "host": "elsewhere"})
    store.record_event(ids["ran"], {"type": "error", "message": "its own bug"})

    assert launcher.requeue(store, [ids["t"]]) == [ids["t"], ids["s"], ids["s2"]]
    runs = {r["name"]: r for r in store.runs()}
    assert [runs[n]["status"] for n in ("t", "s", "s2")] == ["queued"] * 3
    assert runs["s"]["error"] is None
    assert runs["ran"]["status"] == "failed"  # it ran and failed on its own: left alone


def test_resuming_one_teacher_seed_requeues_only_that_seed_of_a_same_seed_student(
    store: Store,
) -> None:
    spec = validate_spec(
        [
            tiny_experiment("t", seeds=[0, 1]),
            tiny_experiment("s", seeds=[0, 1], teachers=[{"experiment": "t", "pick": "same-seed"}],
                            loss={"kd": {}}),
        ]
    )  # fmt: skip
    t0, t1, s0, s1 = launcher.enqueue(store, spec)
    for teacher in (t0, t1):
        store.record_event(teacher, {"type": "end", "status": "cancelled", "reason": "asked"})
    for student in (s0, s1):
        store.record_event(student, {"type": "error", "message": "teacher 't' is cancelled"})
    assert launcher.requeue(store, [t0]) == [t0, s0]
    assert store.get(s1)["status"] == "failed"  # its teacher seed 1 is still cancelled


def test_stop_signals_only_an_engine_of_this_host_it_can_identify(store, monkeypatch) -> None:
    import os
    import socket

    signalled: list[int] = []
    monkeypatch.setattr(os, "killpg", lambda pid, sig: signalled.append(pid))
    ids = launcher.enqueue(store, validate_spec(tiny_experiment("r", seeds=[0, 1, 2])))
    me = socket.gethostname()
    starts = [
        {"pid": os.getpid(), "host": "elsewhere"},  # another host: never by pid
        {"pid": 1, "host": me},  # no start time recorded: cannot tell it is ours
        {"pid": os.getpid(), "host": me, "pid_start": procs.start_time(os.getpid())},
    ]
    for run_id, start in zip(ids, starts, strict=True):
        store.record_event(run_id, {"type": "start", **start})
    assert launcher.stop_runs(store, ids) == [ids[0], ids[2]]
    assert signalled == [os.getpid()]
    assert all(store.get(i)["cancel_requested"] for i in ids)


@pytest.mark.parametrize("name", ["stdout.log", "events.jsonl", "ckpt"])
def test_resume_refuses_a_run_whose_files_are_links(store: Store, tmp_path, name: str) -> None:
    """Resuming appended the log and events to a planted link's target."""
    from typer.testing import CliRunner

    from kdtui.cli import app

    (run_id,) = launcher.enqueue(store, validate_spec(tiny_experiment("r")))
    store.record_event(run_id, {"type": "end", "status": "crashed", "reason": "killed"})
    target = tmp_path / "outside"
    target.mkdir() if name == "ckpt" else target.write_text("precious\n")
    link = store.run_dir(run_id) / name
    if link.exists():
        link.unlink()
    link.symlink_to(target)
    result = CliRunner().invoke(app, ["resume", run_id, "-w", str(store.root)])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (
        f"error: {run_id}: {name} is a symbolic link; kdtui does not write through links "
        "(make them plain files, or remove the run)"
    )
    assert store.get(run_id)["status"] == "crashed"  # nothing written
    assert (list(target.iterdir()) == []) if name == "ckpt" else target.read_text() == "precious\n"


def test_events_are_never_appended_through_a_link(tmp_path) -> None:
    from kdtui.safefs import SymlinkRefused
    from kdtui.store import append_event, read_events

    target = tmp_path / "outside.jsonl"
    target.write_text("")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "events.jsonl").symlink_to(target)
    with pytest.raises(SymlinkRefused, match="a symbolic link, not followed"):
        append_event(tmp_path / "run", {"type": "end", "status": "done"})
    with pytest.raises(SymlinkRefused):
        read_events(tmp_path / "run")
    assert target.read_text() == ""
