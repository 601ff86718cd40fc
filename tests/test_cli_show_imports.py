"""``kdtui show`` of a run whose epoch events lack fields, and the exit status of
``notes import`` / ``todo import`` when the store cannot be written (1, as every write)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from test_store_faults import _main, _one_clear_line
from test_store_recovery import _state, _study


def test_show_prints_an_epoch_event_missing_fields(tmp_path: Path, capsys) -> None:
    """An epoch event without train_loss, nll, ece, lr or seconds (an older engine, an
    imported run) used to end ``show`` in a KeyError traceback."""
    ws = tmp_path / "ws"
    store = _study(ws)
    events = store.run_dir("a-s0-aaaaaa") / "events.jsonl"
    with events.open("a") as fh:
        fh.write('{"type": "epoch", "epoch": 2, "acc": 71.5}\n{"type": "epoch"}\n')
    assert _main(["show", "a-s0-aaaaaa"], ws) == 0
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err
    rows = [line.split() for line in printed.out.splitlines()]
    assert ["2", "–", "71.50", "–", "–", "–", "–"] in rows  # what it has, – for the rest
    assert ["1", "0.5000", "70.00", "0.900", "0.050", "0.05", "1.00"] in rows
    assert ["–"] * 7 in rows


NOTES = "### grp\n\n- 50\n- 51\n- Average :\n\n## Next\n\n- try a wider student\n"


@pytest.mark.parametrize(
    "argv",
    [["notes", "import", "NOTES"], ["todo", "import", "NOTES", "--section", "Next"]],
    ids=["notes-import", "todo-import"],
)
def test_imports_exit_1_when_the_store_cannot_be_written(tmp_path, monkeypatch, capsys, argv):
    """Injected: a full disk when the index (or its TODO copy) is written, after the run
    folders were. Both imports said one line but exited 2 (a usage error), unlike every
    other write command."""
    ws = tmp_path / "ws"
    _study(ws)
    before = _state(ws)
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    real_fsync = os.fsync

    def refuse(fd: int) -> None:
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if path.parent == ws and path.name.startswith(("kdtui.", "todos.")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", refuse)
    argv = [str(notes) if a == "NOTES" else a for a in argv]
    assert _main(argv, ws) == 1
    _one_clear_line(capsys.readouterr().err, "disk full", ws)
    monkeypatch.undo()
    assert _state(ws) == before
