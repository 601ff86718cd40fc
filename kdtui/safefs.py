"""Opening files inside run folders without following symbolic links.

A run folder is data anyone with write access to the workspace can plant (a copied
workspace, a shared project directory): ``stdout.log`` or ``events.jsonl`` made a link to
``~/.bashrc`` must never make kdtui append to the link's target. Every open of a run file
for writing (and the reads that feed what kdtui shows) goes through ``open_nofollow``,
which refuses a link in the last path component with one clear ``OSError``.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import IO

#: The run-folder files and folders kdtui writes; none of them may be a link.
RUN_FILES = ("spec.json", "events.jsonl", "stdout.log", "heartbeat", "ckpt")

_FLAGS = {
    "rb": os.O_RDONLY,
    "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "ab+": os.O_RDWR | os.O_CREAT | os.O_APPEND,
}


class SymlinkRefused(OSError):
    """A run file is a symbolic link: kdtui neither reads nor writes through it."""


def open_nofollow(path: Path | str, mode: str = "rb") -> IO[bytes]:
    """``open(path, mode)`` for the binary modes in ``_FLAGS``, refusing a symbolic link
    (``O_NOFOLLOW``) with SymlinkRefused instead of following it."""
    try:
        fd = os.open(path, _FLAGS[mode] | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkRefused(errno.ELOOP, "a symbolic link, not followed", str(path)) from None
        raise
    return os.fdopen(fd, mode)


def read_bytes_nofollow(path: Path | str) -> bytes:
    """The whole file, refusing a symbolic link."""
    with open_nofollow(path, "rb") as fh:
        return fh.read()


def symlinks_in(run_dir: Path) -> list[str]:
    """The run folder's entries kdtui would write that are symbolic links (the folder
    itself shows as ``.``; checkpoints as ``ckpt/<name>``): what resume refuses to touch."""
    if run_dir.is_symlink():
        return ["."]
    found = [name for name in RUN_FILES if (run_dir / name).is_symlink()]
    ckpt = run_dir / "ckpt"
    if ckpt.is_dir() and not ckpt.is_symlink():
        found += [f"ckpt/{p.name}" for p in sorted(ckpt.iterdir()) if p.is_symlink()]
    return found
