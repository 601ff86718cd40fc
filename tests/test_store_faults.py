"""A full disk or a read-only workspace: every write command says one line naming the file
and the cause and exits 1, the index stays as it was, no temp file is left, readers keep
working, and a training that cannot write its checkpoint says so in its run."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli, tiny_experiment
from test_store_recovery import EXPECTED, _state, _study

from kdtui.store import Store

CAUSES = {errno.ENOSPC: "disk full", errno.EROFS: "read-only file system"}


def _write_commands(ws: Path, spec: Path) -> list[list[str]]:
    """Every command that writes to the store, each with something to do."""
    return [
        ["todo", "add", "one more"],
        ["todo", "done", Store(ws).todos()[0]["id"]],
        ["record", "hand-made", "70"],
        ["rm", "-y", "a-s0-aaaaaa"],
        ["stop", "--all"],
        ["run", str(spec), "--detach"],
        ["doctor"],
    ]


def _temp_files(ws: Path) -> list[str]:
    return [str(p) for p in ws.rglob("*.tmp")]


def _one_clear_line(stderr: str, cause: str, ws: Path) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("error: ") and cause in lines[0], stderr
    assert re.search(rf"{re.escape(str(ws))}/\S+", lines[0]), f"no file named: {stderr}"


@pytest.fixture
def study(tmp_path: Path, write_spec) -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    _study(ws)
    return ws, write_spec(tiny_experiment("more"))


def _main(argv: list[str], ws: Path) -> int:
    """``kdtui ARGV`` in this process, through the console script's own entry point."""
    from kdtui import cli

    old = sys.argv
    sys.argv = ["kdtui", *argv, "--workspace", str(ws)] if argv[0] != "todo" else [
        "kdtui", "--workspace", str(ws), *argv]  # fmt: skip
    try:
        cli.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = old
    return 0


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["disk-full", "read-only"])
def test_every_write_command_says_one_line_when_the_disk_refuses(study, monkeypatch, capsys, code):
    """Injected: every fsync of a file in the workspace fails (where a full disk shows
    first). It used to be a raw traceback from each command."""
    ws, spec = study
    real_fsync = os.fsync

    def refuse(fd: int) -> None:
        if str(ws) in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    commands = _write_commands(ws, spec)
    monkeypatch.setattr(os, "fsync", refuse)
    for argv in commands:
        assert _main(argv, ws) == 1, argv
        _one_clear_line(capsys.readouterr().err, CAUSES[code], ws)
    assert _main(["ls"], ws) == 0  # readers keep working
    assert "a-s0-aaaaaa" in capsys.readouterr().out
    monkeypatch.undo()
    assert _state(ws) == EXPECTED  # the index as it was
    assert _temp_files(ws) == []


@contextlib.contextmanager
def _mounted(args: list[str], where: Path) -> Iterator[None]:
    where.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", *args, str(where)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount here ({exc})")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def _fill(disk: Path) -> Path:
    """Write a file until the disk is full; returns it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def test_a_real_full_disk_refuses_writes_in_one_line_and_keeps_the_index(tmp_path, write_spec):
    disk = tmp_path / "disk"
    with _mounted(["-t", "tmpfs", "-o", "size=4m", "tmpfs"], disk):
        ws = disk / "ws"
        _study(ws)
        spec = write_spec(tiny_experiment("more"))
        filler = _fill(disk)
        # the commands that need room for a new file (a small append may still fit)
        for argv in (c for c in _write_commands(ws, spec) if c[0] not in ("rm", "todo")):
            result = run_cli(*argv, workspace=ws)
            assert result.returncode == 1, (argv, result.stdout, result.stderr)
            _one_clear_line(result.stderr, "disk full", ws)
        result = run_cli("todo", "add", "one more", workspace=ws)
        assert result.returncode == 1
        _one_clear_line(result.stderr, "disk full", ws)
        listed = run_cli("ls", workspace=ws)
        assert listed.returncode == 0 and "a-s0-aaaaaa" in listed.stdout
        filler.unlink()
        assert _state(ws) == EXPECTED
        assert _temp_files(ws) == []


def test_a_read_only_workspace_refuses_writes_in_one_line_and_reads_go_on(tmp_path, write_spec):
    ws = tmp_path / "ws"
    store = _study(ws)
    spec = write_spec(tiny_experiment("more"))
    ro = tmp_path / "ro"
    with _mounted(["--bind", str(ws)], ro):
        remount = ["mount", "-o", "remount,bind,ro", str(ro)]
        if subprocess.run(remount, capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        for argv in _write_commands(ro, spec):
            result = run_cli(*argv, workspace=ro)
            assert result.returncode == 1, (argv, result.stdout, result.stderr)
            _one_clear_line(result.stderr, "read-only file system", ro)
        # a run whose engine is gone: readers want to record it crashed, and cannot
        store.update("b-s1-bbbbbb", {"status": "running", "pid": 2**22 + 7, "pid_start": 1.0,
                                     "host": os.uname().nodename, "heartbeat": time.time()})  # fmt: skip
        for argv in (["ls"], ["table"], ["todo", "ls"], ["show", "a-s0"]):
            result = run_cli(*argv, workspace=ro)
            assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
            assert "crashed runs not checked: read-only file system" in result.stderr or (
                argv[0] == "todo"
            )
        (ws / "kdtui.json").write_text(json.dumps({"runs": [1]}))  # damaged, and unfixable
        listed = run_cli("ls", "--format", "json", workspace=ro)
        assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 2
        assert "not saved (read-only file system" in listed.stderr
    assert _state(ws)[1] == EXPECTED[1]


def _engine_on(run_dir: Path) -> int:
    from kdtui.engine.trainer import Engine

    with contextlib.redirect_stdout(open(os.devnull, "w")):  # noqa: SIM115
        return Engine(run_dir).main()


def test_an_engine_on_a_full_disk_says_so_and_the_run_keeps_the_reason(tmp_path, monkeypatch):
    """torch said "[enforce fail at inline_container.cc:672] unexpected pos", an 8 MB
    last.pt.tmp stayed, and once space was back the run said only "process gone"."""
    from kdtui.launcher import enqueue
    from kdtui.spec import validate_spec

    store = Store(tmp_path / "ws")
    (run_id,) = enqueue(store, validate_spec(tiny_experiment("full")))
    real_fsync = os.fsync

    def full_for_last_pt(fd: int) -> None:
        if "/ckpt/.last.pt." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_for_last_pt)
    assert _engine_on(store.run_dir(run_id)) == 1
    run = Store(store.root).get(run_id)
    assert (run["status"], run["error"]) == ("failed", "disk full writing ckpt/last.pt")
    assert _temp_files(store.root) == []


def test_an_engine_on_a_real_full_disk_says_so(tmp_path):
    from kdtui.launcher import enqueue
    from kdtui.spec import validate_spec

    disk = tmp_path / "disk"
    with _mounted(["-t", "tmpfs", "-o", "size=8m", "tmpfs"], disk):
        store = Store(disk / "ws")
        (run_id,) = enqueue(store, validate_spec(tiny_experiment("full")))
        filler = _fill(disk)
        os.truncate(filler, filler.stat().st_size - 48 * 1024)  # room for events, not a ckpt
        env = dict(os.environ, KDTUI_THREADS="1", CUDA_VISIBLE_DEVICES="")
        engine = subprocess.run(
            [sys.executable, "-m", "kdtui.engine", str(store.run_dir(run_id))],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert engine.returncode == 1, engine.stdout[-2000:]
        run = Store(store.root).get(run_id)
        assert run["status"] == "failed"
        assert re.fullmatch(r"disk full writing ckpt/(best|last)\.pt", run["error"]), run
        assert _temp_files(store.root) == []
