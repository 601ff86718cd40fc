"""Is a file a PyTorch checkpoint? Told from its first bytes and, for a zip, its table of
contents, without torch and without unpickling: validation refuses a text file, an empty file
or an .npz named as a teacher checkpoint before any run is queued, and the engine says the
same before ``torch.load`` would answer "unreadable or corrupt: 101".

``torch.save`` writes a zip archive (PyTorch >= 1.6) whose members sit in one top folder and
include ``data.pkl``; older versions wrote a pickle stream that opens with a magic number.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

#: The start of the legacy (pre-1.6) format: pickle protocol 2, then torch's magic number
#: 0x1950a86a20f9469cfc6c as a 10-byte long.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"

EXPECTED = "expected a file saved by torch.save, e.g. a kdtui run's ckpt/best.pt"


def checkpoint_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a PyTorch checkpoint, in words that say what it is instead and
    what was expected; None when it looks like one (torch.load may still find it damaged)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        return f"cannot read {path} ({exc.strerror})"
    what = _what_it_is(path, head)
    if what is None:
        return None
    return f"{path} is not a PyTorch checkpoint ({what}; {EXPECTED})"


def _what_it_is(path: Path, head: bytes) -> str | None:
    if not head:
        return "the file is empty"
    if head.startswith(_LEGACY_MAGIC):
        return None
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_problem(path)
    if head.startswith(b"\x93NUMPY"):
        return "it is a NumPy .npy array"
    if head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05":
        return "it is a pickle, but not one written by torch.save"
    if _looks_like_text(head):
        first = head.decode("utf-8", "replace").splitlines()[0][:40]
        return f"it holds text, starting {first!r}"
    return "its first bytes are no zip archive nor torch's legacy format"


def _zip_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        return f"a damaged zip archive ({exc})"
    if any(name.endswith("/constants.pkl") for name in names):  # it holds a data.pkl too
        return "it is a TorchScript archive (torch.jit.save): save the state dict instead"
    if any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
        return None
    if names and all(name.endswith(".npy") for name in names):
        return "it is a NumPy .npz archive"
    return "a zip archive without the data.pkl that torch.save writes"


def _looks_like_text(head: bytes) -> bool:
    for cut in range(4):  # the bytes read may end inside a character of up to 4 bytes
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return bool(text) and all(c.isprintable() or c in "\t\r\n" for c in text)
    return False
