"""The user's own windows in an .npz: what the file must hold, and the checks that validation
runs before any run is queued and that the engine runs again when it loads the file, so that
both refuse the same files with the same words.

Nothing here imports torch or pydantic, and numpy only when a file is checked: the CLI and the
app import the spec package at start-up.
"""

from __future__ import annotations

import functools
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
    """Check an .npz as the engine's load_npz will read it, without torch, so that a bad file
    is refused before any run is queued rather than failing it at start.

    Shapes and dtypes come from the arrays' .npy headers alone; the X arrays are streamed in
    chunks for the finite check, and only the label arrays are read whole. The result is
    cached by path, size and mtime (unless ``cached`` is false: the engine checks the file it
    is about to load): the composer validates at every keystroke, and a file shared by
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
    if why := _not_an_archive(path):
        return NpzSummary((why,))
    problems: list[str] = []
    with zipfile.ZipFile(path) as archive:
        members = {n.removesuffix(".npy"): n for n in archive.namelist()}
        if missing := [k for k in NPZ_KEYS if k not in members]:
            has = ", ".join(sorted(members)) or "nothing"
            problems.append(f"missing {', '.join(missing)} (has {has})")
        heads = _read_heads(archive, members, problems)
        good = shape_problems(heads, problems, layout)
        for key in ("X_train", "X_test"):
            if key in good:
                _finite_problems(archive, members[key], key, heads[key], layout, problems)
        if {"y_train", "y_test"} <= good:
            _label_problems(archive, members, problems)
    if "X_train" not in good:
        return NpzSummary(tuple(problems))
    channels, length = channels_and_length(heads["X_train"][0], layout)
    return NpzSummary(tuple(problems), channels=channels, length=length)


def channels_and_length(shape: tuple[int, ...], layout: Layout) -> tuple[int, int]:
    """(C, L) of an X array of ``shape`` in ``layout``."""
    _, a, b = shape
    return (b, a) if layout == "NLC" else (a, b)


def _not_an_archive(path: Path) -> str | None:
    """Why the file is no .npz archive, from its first bytes; None if it looks like one.
    (numpy.load's own dispatch, but in words: on a file that is neither an archive nor an
    array, numpy.load blames pickling, which misleads.)"""
    with path.open("rb") as f:
        head = f.read(6)
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


def _finite_problems(
    archive: zipfile.ZipFile, member: str, key: str, head: Head, layout: Layout, problems: list[str]
) -> None:
    shape, dtype = head
    try:
        with archive.open(member) as f:
            fortran = npy_header(f)[2]  # and on to the data
            bad, first = _count_nonfinite(f, dtype, math.prod(shape))
    except READ_ERRORS as exc:
        problems.append(f"cannot read {key} ({exc})")
        return
    if bad:
        where = _position(first, shape, fortran, layout)
        problems.append(f"{key} has {bad} NaN or infinite values (the first at {where})")


def _position(flat: int, shape: tuple[int, ...], fortran: bool, layout: Layout) -> str:
    """Sample, channel and step of the value at ``flat`` in the array's stored order."""
    import numpy as np

    n, a, b = (int(i) for i in np.unravel_index(flat, shape, order="F" if fortran else "C"))
    channel, step = (b, a) if layout == "NLC" else (a, b)
    return f"sample {n}, channel {channel}, step {step}"


def _count_nonfinite(f: IO[bytes], dtype: Any, count: int) -> tuple[int, int]:
    """NaN and infinite values in the array whose data ``f`` is at, and the flat index of
    the first, read in chunks of about 4 MiB so that a large file is never held in memory
    whole."""
    import numpy as np

    step = max(1, (4 << 20) // dtype.itemsize)
    bad, first, done = 0, -1, 0
    while count:
        n = min(step, count)
        chunk = f.read(n * dtype.itemsize)
        if len(chunk) != n * dtype.itemsize:
            raise EOFError("the array's data is cut short")
        if dtype.kind == "f":  # integers are always finite, but are read for the CRC
            where = np.flatnonzero(~np.isfinite(np.frombuffer(chunk, dtype=dtype)))
            if len(where) and first < 0:
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


def _label_problems(archive: zipfile.ZipFile, members: dict[str, str], problems: list[str]) -> None:
    import numpy as np

    labels = {}
    try:
        for key in ("y_train", "y_test"):
            with archive.open(members[key]) as f:
                labels[key] = np.lib.format.read_array(f, allow_pickle=False)
                _read_to_end(f)
    except READ_ERRORS as exc:
        problems.append(f"cannot read {key} ({exc})")
    else:
        problems.extend(npz_labels(labels["y_train"], labels["y_test"])[2])


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
