"""The user's own windows in an .npz: what the file must hold, and the checks that validation
runs before any run is queued and that the engine runs again when it loads the file, so that
both refuse the same files with the same words.

The engine reads a file once (``read_npz``): the same checks, the arrays kept as they are
read, and the file's SHA-256 taken from the same bytes — a large file was read three times
(check, load, hash).

Nothing here imports torch or pydantic, and numpy only when a file is checked: the CLI and the
app import the spec package at start-up.
"""

from __future__ import annotations

import functools
import hashlib
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

NPZ_LAYOUT = (
    "expected an .npz with arrays X_train (N, C, L) and X_test (M, C, L) of finite numbers "
    '(or (N, L, C) with "layout": "NLC"), series of one length, y_train (N,) and y_test (M,) '
    "of int (or whole float, or bool) or string labels, each test label also in y_train"
)
NPZ_KEYS = ("X_train", "y_train", "X_test", "y_test")

#: How the X arrays order their axes after the sample axis: channels then time steps (the
#: default, as PyTorch's Conv1d reads them), or time steps then channels (as many pipelines
#: and Keras save them). None: the default, and a file whose axes look swapped is refused.
Layout = str | None
_AXES = {"NCL": ("C", "L"), "NLC": ("L", "C")}

#: What reading an array out of an .npz raises when the archive or the array is damaged.
READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)

#: An array's (shape, dtype), as its .npy header gives them.
Head = tuple[tuple[int, ...], Any]


@dataclass(frozen=True)
class NpzSummary:
    """What validation learns from an .npz: its problems (none: the engine's load_npz will
    accept it) and, when X_train's shape is readable, its channels and series length."""

    problems: tuple[str, ...]
    channels: int | None = None
    length: int | None = None


def check_npz(path: str | Path, layout: Layout = None, *, cached: bool = True) -> NpzSummary:
    """Check an .npz as the engine will read it (``read_npz``: the same checks), without
    torch, so that a bad file is refused before any run is queued rather than failing it at
    start.

    Shapes and dtypes come from the arrays' .npy headers alone; the X arrays are streamed in
    chunks for the finite check, and only the label arrays are read whole. The result is
    cached by path, size and mtime (unless ``cached`` is false: the file as it is now, whatever
    its size and mtime say): the composer validates at every keystroke, and a file shared by
    several experiments is read once.

    ``layout`` is the spec's ``data.layout``: None when the spec does not say it (then X is
    read as (N, C, L), and refused when it has more channels than time steps: such a file is
    almost always (N, L, C)), "NCL" or "NLC" when it does."""
    full = Path(path).expanduser().resolve()
    try:
        stat = full.stat()
    except OSError as exc:
        return NpzSummary((f"cannot read the file ({exc.strerror})",))
    if not cached:
        return _check_npz_safely(full, layout)
    return _check_npz_cached(str(full), layout, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _check_npz_cached(path: str, layout: Layout, size: int, mtime_ns: int) -> NpzSummary:
    del size, mtime_ns  # only part of the cache key: a rewritten file is checked again
    return _check_npz_safely(Path(path), layout)


def _check_npz_safely(path: Path, layout: Layout) -> NpzSummary:
    try:
        return _check_npz(path, layout)
    except READ_ERRORS as exc:
        return NpzSummary((f"not a readable .npz archive ({exc})",))


def _check_npz(path: Path, layout: Layout) -> NpzSummary:
    with path.open("rb") as f:
        return _inspect(f, layout, keep=False)[0]


def read_npz(path: str | Path, layout: Layout = None) -> tuple[NpzSummary, dict[str, Any], str]:
    """The engine's read of an .npz, in one pass over the file: check_npz's checks (the
    same problems, in the same words), the four arrays as numpy.load gives them, and the
    SHA-256 of the file (the key of its cached views), hashed from the bytes as they are
    read. With problems, the arrays and the hash are left out: the file is refused."""
    try:
        with Path(path).open("rb") as raw:
            f = _HashingReader(raw)
            summary, arrays = _inspect(f, layout, keep=True)
            if summary.problems:
                return summary, {}, ""
            return summary, arrays, f.hexdigest()
    except READ_ERRORS as exc:
        return NpzSummary((f"not a readable .npz archive ({exc})",)), {}, ""


def _inspect(
    f: IO[bytes] | _HashingReader, layout: Layout, *, keep: bool
) -> tuple[NpzSummary, dict[str, Any]]:
    """The checks of the open file ``f``, and the arrays read when ``keep``.

    The arrays are read in the order they lie in the file, so that a hashing reader sees it
    from start to end (zipfile reads the directory at the end first, and each header
    before its data); the problems are said in the order of NPZ_KEYS all the same."""
    if why := _not_an_archive(f):
        return NpzSummary((why,)), {}
    problems: list[str] = []
    with zipfile.ZipFile(f) as archive:
        members = {n.removesuffix(".npy"): n for n in archive.namelist()}
        if missing := [k for k in NPZ_KEYS if k not in members]:
            has = ", ".join(sorted(members)) or "nothing"
            problems.append(f"missing {', '.join(missing)} (has {has})")
        heads = _read_heads(archive, members, problems)
        good = shape_problems(heads, problems, layout)
        wanted = [
            k for k in NPZ_KEYS if k in good and (k[0] == "X" or {"y_train", "y_test"} <= good)
        ]
        offsets = {k: archive.getinfo(members[k]).header_offset for k in wanted}
        read: dict[str, Member] = {}
        for key in sorted(wanted, key=offsets.__getitem__):
            if isinstance(f, _HashingReader):
                f.catch_up(offsets[key])  # whatever lies between: other members, descriptors
            read[key] = _read_member(archive, members[key], key, heads[key], keep=keep)
    for key in ("X_train", "X_test"):
        if key in read:
            problems.extend(_finite_problems(key, heads[key], layout, read[key]))
    if {"y_train", "y_test"} <= good:
        problems.extend(_label_problems(read))
    arrays = {k: v[3] for k, v in read.items() if not isinstance(v, str)} if keep else {}
    if "X_train" not in good:
        return NpzSummary(tuple(problems)), arrays
    channels, length = channels_and_length(heads["X_train"][0], layout)
    return NpzSummary(tuple(problems), channels=channels, length=length), arrays


class _HashingReader:
    """A binary file that hashes its bytes as they are read, for zipfile to read from.

    The hash covers the file from its start to the furthest point read in one stretch
    (reads that overlap it add only their new bytes; reads beyond it, as zipfile's of the
    directory at the end, are not hashed): ``catch_up`` reads and hashes what lies between
    that point and a later one, and ``hexdigest`` does so to the end of the file. So every
    byte is hashed once, in order, and each is read once when zipfile reads the file in
    order."""

    def __init__(self, f: IO[bytes]):
        self._f = f
        self._hash = hashlib.sha256()
        self._done = 0  # the file's bytes [0, _done) are hashed

    def read(self, n: int | None = -1) -> bytes:
        pos = self._f.tell()
        data = self._f.read(n)
        if pos <= self._done < pos + len(data):
            self._hash.update(memoryview(data)[self._done - pos :])
            self._done = pos + len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def seekable(self) -> bool:
        return True

    def catch_up(self, end: int | None = None) -> None:
        """Hash the bytes up to ``end`` (the end of the file: None), reading those not read
        yet; the position is kept."""
        here = self._f.tell()
        self._f.seek(self._done)
        while end is None or self._done < end:
            want = 1 << 20 if end is None else min(1 << 20, end - self._done)
            if not self.read(want):
                break
        self._f.seek(here)

    def hexdigest(self) -> str:
        self.catch_up()
        return self._hash.hexdigest()


def channels_and_length(shape: tuple[int, ...], layout: Layout) -> tuple[int, int]:
    """(C, L) of an X array of ``shape`` in ``layout``."""
    _, a, b = shape
    return (b, a) if layout == "NLC" else (a, b)


def _not_an_archive(f: IO[bytes] | _HashingReader) -> str | None:
    """Why the open file is no .npz archive, from its first bytes (and back to the start);
    None if it looks like one. (numpy.load's own dispatch, but in words: on a file that is
    neither an archive nor an array, numpy.load blames pickling, which misleads.)"""
    head = f.read(6)
    f.seek(0)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return None
    if head == b"\x93NUMPY":
        return "a single .npy array, not an .npz archive"
    return "not a readable .npz archive"


def _read_heads(
    archive: zipfile.ZipFile, members: dict[str, str], problems: list[str]
) -> dict[str, Head]:
    """Shape and dtype of each expected array that has a readable header of plain data."""
    heads: dict[str, Head] = {}
    for key in NPZ_KEYS:
        if key not in members:
            continue
        try:
            with archive.open(members[key]) as f:
                shape, dtype, _ = npy_header(f)
        except READ_ERRORS as exc:
            problems.append(f"cannot read {key} ({exc})")
            continue
        if dtype.hasobject:
            problems.append(_objects_problem(key))
            continue
        heads[key] = (shape, dtype)
    return heads


def _objects_problem(key: str) -> str:
    """An array of Python objects: for X, almost always series of unequal length (numpy
    keeps a ragged list as objects); either way only pickle reads it, and kdtui does not
    unpickle data files (they could run code)."""
    if key.startswith("X"):
        return (
            f"{key} is an array of Python objects, as numpy stores series of unequal length: "
            "series must have equal length: pad or resample them to one length"
        )
    return (
        f"{key} holds Python objects, which only pickle can read, and kdtui does not "
        "unpickle data files (they could run code): store labels as ints or fixed-width strings"
    )


def npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], Any, bool]:
    """Shape, dtype and Fortran order from a .npy header, without reading the array."""
    import numpy as np

    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:  # 3.0 (utf-8 field names) has no public header reader: read the array
        array = np.lib.format.read_array(f, allow_pickle=False)
        shape, dtype, fortran = array.shape, array.dtype, False
    return tuple(shape), dtype, bool(fortran)


def shape_problems(heads: dict[str, Head], problems: list[str], layout: Layout = None) -> set[str]:
    """The shape and dtype checks: adds the problems, returns the keys whose arrays passed
    them."""
    a, b = _AXES[layout or "NCL"]
    good = set()
    for key, (shape, dtype) in heads.items():
        if key.startswith("X"):
            if len(shape) != 3:
                problems.append(f"{key} has shape {shape}, expected 3 dimensions (N, {a}, {b})")
            elif dtype.kind not in "iuf":
                problems.append(f"{key} has dtype {dtype}, expected numbers")
            elif shape[0] == 0:
                problems.append(f"{key} is empty")
            else:
                good.add(key)
        elif len(shape) != 1:
            problems.append(f"{key} has shape {shape}, expected 1 dimension (N,)")
        elif dtype.kind not in "iufUSb":
            problems.append(f"{key} has dtype {dtype}, expected integer or string labels")
        else:
            good.add(key)
    for split in ("train", "test"):
        x, y = f"X_{split}", f"y_{split}"
        if {x, y} <= good and (n_x := heads[x][0][0]) != (n_y := heads[y][0][0]):
            problems.append(f"{x} has {n_x} samples but {y} has {n_y}")
    if {"X_train", "X_test"} <= good and heads["X_train"][0][1:] != heads["X_test"][0][1:]:
        problems.append(
            f"X_train has ({a}, {b}) = {heads['X_train'][0][1:]} but X_test has "
            f"{heads['X_test'][0][1:]}"
        )
    if layout is None and "X_train" in good:
        _, c, length = heads["X_train"][0]
        if c > length:
            problems.append(
                f"X_train has shape (N, C, L) = {heads['X_train'][0]}: {c} channels of "
                f"{length} steps each look like (N, L, C) order; say the layout in the spec: "
                '"layout": "NLC" (or "NCL" if the file is right)'
            )
    return good


#: What reading a member gave: why it could not be read, or (non-finite values, the first's
#: flat index, Fortran order, the array: None unless kept) for an X array, (0, -1, False, the
#: array) for labels.
Member = str | tuple[int, int, bool, Any]


def _read_member(
    archive: zipfile.ZipFile, member: str, key: str, head: Head, *, keep: bool
) -> Member:
    """Read one expected array to its end (where zipfile checks the CRC): an X array in
    chunks, counting its non-finite values (kept whole only when ``keep``), labels whole."""
    import numpy as np

    shape, dtype = head
    try:
        with archive.open(member) as f:
            if key[0] == "y":
                labels = np.lib.format.read_array(f, allow_pickle=False)
                _read_to_end(f)
                return 0, -1, False, labels
            fortran = npy_header(f)[2]  # and on to the data
            out = np.empty(math.prod(shape), dtype) if keep else None
            bad, first = _count_nonfinite(f, dtype, math.prod(shape), out)
    except READ_ERRORS as exc:
        return f"cannot read {key} ({exc})"
    if out is not None:  # as numpy.lib.format.read_array shapes it
        out = out.reshape(shape[::-1]).transpose() if fortran else out.reshape(shape)
    return bad, first, fortran, out


def _finite_problems(key: str, head: Head, layout: Layout, read: Member) -> list[str]:
    if isinstance(read, str):
        return [read]
    bad, first, fortran, _ = read
    if not bad:
        return []
    where = _position(first, head[0], fortran, layout)
    return [f"{key} has {bad} NaN or infinite values (the first at {where})"]


def _position(flat: int, shape: tuple[int, ...], fortran: bool, layout: Layout) -> str:
    """Sample, channel and step of the value at ``flat`` in the array's stored order."""
    import numpy as np

    n, a, b = (int(i) for i in np.unravel_index(flat, shape, order="F" if fortran else "C"))
    channel, step = (b, a) if layout == "NLC" else (a, b)
    return f"sample {n}, channel {channel}, step {step}"


def _count_nonfinite(f: IO[bytes], dtype: Any, count: int, out: Any = None) -> tuple[int, int]:
    """NaN and infinite values in the array whose data ``f`` is at, and the flat index of
    the first, read in chunks of about 4 MiB so that a large file is never held in memory
    whole — unless ``out`` (a flat array of ``count`` items) is given to keep it."""
    import numpy as np

    step = max(1, (4 << 20) // dtype.itemsize)
    bad, first, done = 0, -1, 0
    while count:
        n = min(step, count)
        chunk = f.read(n * dtype.itemsize)
        if len(chunk) != n * dtype.itemsize:
            raise EOFError("the array's data is cut short")
        values = np.frombuffer(chunk, dtype=dtype)
        if out is not None:
            out[done : done + n] = values
        if dtype.kind == "f" and not (finite := np.isfinite(values)).all():  # ints: all finite
            where = np.flatnonzero(~finite)
            if first < 0:
                first = done + int(where[0])
            bad += len(where)
        count -= n
        done += n
    _read_to_end(f)
    return bad, first


def _read_to_end(f: IO[bytes]) -> None:
    """Read a zip member to its end, where zipfile checks the CRC (as numpy.load does)."""
    while f.read(1 << 20):
        pass


def _label_problems(read: dict[str, Member]) -> list[str]:
    """The first label array that could not be read, else the labels' own problems."""
    labels = []
    for key in ("y_train", "y_test"):
        if isinstance(got := read[key], str):
            return [got]
        labels.append(got[3])
    return npz_labels(*labels)[2]


def npz_labels(y_train: Any, y_test: Any) -> tuple[Any, Any, list[str]]:
    """The labels of an .npz as the engine uses them — byte strings as text, whole-number
    floats (0.0, 1.0: what numpy pipelines often save) and booleans (a binary task saved as
    a mask) as ints — and the engine's label problems: whole numbers, one kind of label, two
    classes, no test-only class."""
    import numpy as np

    out = []
    for name, y in (("y_train", y_train), ("y_test", y_test)):
        if y.dtype.kind == "f" and len(
            odd := np.flatnonzero(~(np.isfinite(y) & (y == np.round(y))))
        ):
            i = int(odd[0])
            out.append(f"{name} has labels that are not whole numbers (sample {i}: {y[i].item()})")
    if out:
        return y_train, y_test, out

    def plain(y: Any) -> Any:
        if y.dtype.kind == "S":
            return y.astype(str)
        return y.astype(np.int64) if y.dtype.kind in "fb" else y

    y_train, y_test = plain(y_train), plain(y_test)
    if (y_train.dtype.kind == "U") != (y_test.dtype.kind == "U"):
        return y_train, y_test, ["y_train and y_test mix string and integer labels"]
    labels = np.unique(y_train)
    if len(labels) < 2:
        out.append(f"y_train has {len(labels)} distinct label(s), need at least 2 classes")
    unseen = np.setdiff1d(np.unique(y_test), labels)
    if len(unseen):
        out.append(f"y_test has labels not in y_train: {', '.join(map(str, unseen[:10]))}")
    return y_train, y_test, out
