"""An npz is checked at validation as the engine will read it: a bad file queues no run."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import tiny_experiment

from kdtui.engine.data import _DATA_VERSION, DataError, load_npz, stable_hash
from kdtui.spec import NPZ_KEYS, NPZ_LAYOUT, SpecError, check_npz, validate_spec


def good_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "X_train": rng.normal(size=(30, 2, 64)),
        "y_train": np.array([0, 1, 2] * 10),
        "X_test": rng.normal(size=(12, 2, 64)),
        "y_test": np.array([0, 1] * 6),
    }


def spec_on(path: str, **data: Any) -> dict[str, Any]:
    return tiny_experiment("x", data={"dataset": "npz", "path": path, **data})


def problems_at(raw: Any, base_dir: Path) -> dict[str, list[str]]:
    with pytest.raises(SpecError) as info:
        validate_spec(raw, base_dir=base_dir)
    out: dict[str, list[str]] = {}
    for p in info.value.problems:
        out.setdefault(p.path, []).append(p.message)
    return out


def saved(**change: Any) -> Callable[[Path], None]:
    """Writes the good arrays with ``change`` applied (None drops a key)."""

    def write(path: Path) -> None:
        arrays = {k: v for k, v in {**good_arrays(), **change}.items() if v is not None}
        np.savez(path, **arrays)

    return write


def write_bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def bad_crc(path: Path) -> None:
    """A zip whose X_train data was altered after its CRC was written."""
    saved()(path)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("X_train.npy")
    middle = info.header_offset + 30 + len(info.filename) + 2000  # inside X_train's data
    raw[middle : middle + 8] = np.float64(7.0).tobytes()
    path.write_bytes(bytes(raw))


BAD_FILES = [
    ("corrupt", write_bytes(b"garbage\n"), "not a readable .npz archive"),
    (
        "npy",
        lambda p: (
            np.save(p.with_suffix(".npy"), np.ones(3)) or os.replace(p.with_suffix(".npy"), p)
        ),
        "a single .npy array",
    ),  # fmt: skip
    (
        "truncated",
        lambda p: saved()(p) or p.write_bytes(p.read_bytes()[:500]),
        "not a readable .npz archive",
    ),  # fmt: skip
    ("bad-crc", bad_crc, "cannot read X_train (Bad CRC-32"),
    ("no-y_test", saved(y_test=None), "missing y_test (has X_test, X_train, y_train)"),
    ("rank", saved(X_train=np.ones((30, 64))), "X_train has shape (30, 64), expected 3 dimensions"),
    ("y-rank", saved(y_test=np.zeros((12, 1), int)), "y_test has shape (12, 1), expected 1"),
    (
        "lengths",
        saved(y_train=np.array([0, 1, 2] * 9)),
        "X_train has 30 samples but y_train has 27",
    ),
    (
        "C-L",
        saved(X_test=np.ones((12, 3, 64))),
        "X_train has (C, L) = (2, 64) but X_test has (3, 64)",
    ),
    ("empty", saved(X_test=np.ones((0, 2, 64)), y_test=np.array([], int)), "X_test is empty"),
    ("all-nan", saved(X_train=np.full((30, 2, 64), np.nan)), "X_train has 3840 NaN or infinite"),
    ("inf", saved(X_test=np.full((12, 2, 64), np.inf)), "X_test has 1536 NaN or infinite"),
    ("complex", saved(X_train=np.ones((30, 2, 64), complex)), "X_train has dtype complex128"),
    ("float-labels", saved(y_train=np.linspace(0, 2, 30)), "y_train has labels that are not whole"),
    (
        "objects",
        saved(y_train=np.array([0, "a", 2] * 10, dtype=object)),
        "y_train holds Python objects",
    ),  # fmt: skip
    ("mixed", saved(y_train=np.array(["a", "b", "c"] * 10)), "mix string and integer labels"),
    (
        "one-class",
        saved(y_train=np.zeros(30, int), y_test=np.zeros(12, int)),
        "1 distinct label(s)",
    ),  # fmt: skip
    ("unseen", saved(y_test=np.array([0, 5] * 6)), "y_test has labels not in y_train: 5"),
]


@pytest.mark.parametrize(("name", "write", "words"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_npz_is_refused_at_its_path_naming_file_and_layout(tmp_path, name, write, words):
    write(tmp_path / "d.npz")
    got = problems_at(spec_on("d.npz"), tmp_path)
    assert list(got) == ["data.path"], got
    matching = [m for m in got["data.path"] if words in m]
    assert len(matching) == 1, got
    msg = matching[0]
    assert msg.startswith(f"{tmp_path / 'd.npz'}: ") and NPZ_LAYOUT not in msg[: -len(NPZ_LAYOUT)]
    assert got["data.path"][-1].endswith(f"; {NPZ_LAYOUT}")  # once, after the last problem
    assert "allow_pickle" not in msg and "pickled" not in msg
    # ... and the engine would have refused it too, at the start of a run
    with pytest.raises(DataError):
        load_npz(tmp_path / "d.npz")


def test_good_npz_passes_both(tmp_path):
    saved()(tmp_path / "plain.npz")
    np.savez_compressed(tmp_path / "packed.npz", **good_arrays())
    strings = {**good_arrays(), "y_train": np.array([b"a", b"b", b"c"] * 10)}
    strings["y_test"] = np.array(["a", "b"] * 6)
    np.savez(tmp_path / "strings.npz", **strings)
    ints = {**good_arrays(), "X_train": np.ones((30, 2, 64), np.int16)}
    np.savez(tmp_path / "ints.npz", **ints, extra=np.ones(2))
    whole = {**good_arrays(), "y_train": np.array([0.0, 1.0, 2.0] * 10), "y_test": np.ones(12)}
    np.savez(tmp_path / "whole.npz", **whole)  # 0.0/1.0 labels, as numpy pipelines save them
    for name in ("plain", "packed", "strings", "ints", "whole"):
        validate_spec(spec_on(f"{name}.npz"), base_dir=tmp_path)
        load_npz(tmp_path / f"{name}.npz")


def test_every_problem_of_a_file_is_reported(tmp_path):
    saved(X_train=np.full((30, 2, 64), np.nan), y_test=np.array([0, 7] * 6), X_test=None)(
        tmp_path / "d.npz"
    )
    got = problems_at(spec_on("d.npz"), tmp_path)["data.path"]
    assert len(got) == 3, got
    assert sum(NPZ_LAYOUT in m for m in got) == 1  # the layout is said once
    assert any("missing X_test" in m for m in got)
    assert any("X_train has 3840 NaN" in m for m in got)
    assert any("labels not in y_train: 7" in m for m in got)


def test_unparsed_experiment_gets_the_content_check_too(tmp_path):
    (tmp_path / "d.npz").write_text("garbage\n")
    raw = [tiny_experiment("a"), {**spec_on("d.npz"), "name": "b", "epochs": "many"}]
    got = problems_at(raw, tmp_path)
    assert "not a readable .npz archive" in got["[1].data.path"][0]
    assert "[1].epochs" in got


def test_channels_and_image_size_are_checked_against_the_file(tmp_path):
    saved()(tmp_path / "d.npz")  # 2 channels of length 64
    validate_spec(spec_on("d.npz", channels=[1]), base_dir=tmp_path)
    got = problems_at(spec_on("d.npz", channels=[0, 2]), tmp_path)
    assert got == {"data.channels": [f"{tmp_path / 'd.npz'} has channels 0..1"]}
    raw = spec_on("d.npz")
    raw["student"] = {"depth": 10, "view": {"kind": "gaf", "image_size": 65}}
    got = problems_at(raw, tmp_path)
    assert got == {"student.view.image_size": ["65 is larger than the series length 64"]}


def test_a_rewritten_file_is_checked_again(tmp_path):
    path = tmp_path / "d.npz"
    saved()(path)
    assert check_npz(path).problems == ()
    assert (check_npz(path).channels, check_npz(path).length) == (2, 64)
    saved(y_test=None)(path)
    os.utime(path, ns=(1, 1))  # a new mtime even where the clock is coarse
    assert "missing y_test" in check_npz(path).problems[0]


# ------------------------------------------------------------------ axis layout, labels, NaN


def transposed(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as (N, L, C), as Keras and many pipelines save windows."""
    return {k: v.transpose(0, 2, 1) if k.startswith("X") else v for k, v in arrays.items()}


def test_an_nlc_file_is_refused_unless_the_spec_says_its_layout(tmp_path):
    np.savez(tmp_path / "d.npz", **transposed(good_arrays()))  # 64 "channels" of 2 steps
    got = problems_at(spec_on("d.npz"), tmp_path)
    (msg,) = got["data.path"]
    assert "X_train has shape (N, C, L) = (30, 64, 2)" in msg
    assert '"layout": "NLC"' in msg
    nlc = validate_spec(spec_on("d.npz", layout="NLC"), base_dir=tmp_path)
    assert nlc.experiments[0].data.layout == "NLC"
    # said to be NCL, it is taken as NCL: a file may truly have more channels than steps
    validate_spec(spec_on("d.npz", layout="NCL"), base_dir=tmp_path)
    # sizes are checked in the said layout: 2 channels, series of 64
    got = problems_at(spec_on("d.npz", layout="NLC", channels=[2]), tmp_path)
    assert got == {"data.channels": [f"{tmp_path / 'd.npz'} has channels 0..1"]}


def test_the_layout_enters_the_group_key_only_when_not_ncl(tmp_path):
    saved()(tmp_path / "d.npz")
    np.savez(tmp_path / "t.npz", **transposed(good_arrays()))
    left_out = validate_spec(spec_on("d.npz"), base_dir=tmp_path).group_keys["x"]
    said = validate_spec(spec_on("d.npz", layout="NCL"), base_dir=tmp_path).group_keys["x"]
    assert said == left_out  # the keys of existing npz groups did not move
    nlc = validate_spec(spec_on("t.npz", layout="NLC"), base_dir=tmp_path).group_keys["x"]
    raw = spec_on("t.npz", layout="NCL")  # the same file read the other way: another group
    assert validate_spec(raw, base_dir=tmp_path).group_keys["x"] != nlc


def test_a_store_teacher_trained_before_layouts_is_on_the_same_data(tmp_path):
    from kdtui.spec import StoreGroup

    saved()(tmp_path / "d.npz")
    student = {**spec_on("d.npz"), "teachers": [{"experiment": "old"}], "loss": {"kd": {}}}
    data = {"dataset": "npz", "path": "d.npz", "channels": None}  # no layout: older frozen spec
    group = StoreGroup("old", "0123456789ab", {"depth": 10, "width": 1}, data, (0,))
    spec = validate_spec(student, base_dir=tmp_path, store_lookup=lambda ref: group)
    assert spec.store_refs == {"old": group}


def test_unequal_series_say_pad_or_resample(tmp_path):
    ragged = np.empty(30, dtype=object)
    ragged[:] = [np.ones((2, 60 + i % 5)) for i in range(30)]
    saved(X_train=ragged)(tmp_path / "d.npz")
    (msg,) = problems_at(spec_on("d.npz"), tmp_path)["data.path"]
    assert "series must have equal length: pad or resample" in msg
    assert "pickle" not in msg
    with pytest.raises(DataError, match="series must have equal length: pad or resample"):
        load_npz(tmp_path / "d.npz")


@pytest.mark.parametrize("layout", ["NCL", "NLC"])
def test_a_nan_is_said_with_its_position(tmp_path, layout):
    arrays = good_arrays()
    arrays["X_test"][7, 1, 40] = np.nan  # sample 7, channel 1, step 40
    arrays["X_test"][9, 0, 3] = np.inf
    if layout == "NLC":
        arrays = transposed(arrays)
    np.savez(tmp_path / "d.npz", **arrays)
    (msg,) = problems_at(spec_on("d.npz", layout=layout), tmp_path)["data.path"]
    words = "X_test has 2 NaN or infinite values (the first at sample 7, channel 1, step 40)"
    assert words in msg
    with pytest.raises(DataError) as info:
        load_npz(tmp_path / "d.npz", layout=layout)
    assert words in str(info.value)


def test_a_label_that_is_no_whole_number_is_said_with_its_sample(tmp_path):
    y = np.array([0.0, 1.0, 2.0] * 10)
    y[4] = 0.5
    saved(y_train=y)(tmp_path / "d.npz")
    (msg,) = problems_at(spec_on("d.npz"), tmp_path)["data.path"]
    assert "y_train has labels that are not whole numbers (sample 4: 0.5)" in msg


def test_bool_labels_are_zero_and_one(tmp_path):
    saved(y_train=np.array([True, False, True] * 10), y_test=np.array([False, True] * 6))(
        tmp_path / "d.npz"
    )
    validate_spec(spec_on("d.npz"), base_dir=tmp_path)
    arrays = load_npz(tmp_path / "d.npz")
    assert arrays.classes == ("0", "1")
    assert list(arrays.y_train[:3]) == [1, 0, 1] and list(arrays.y_test[:2]) == [0, 1]


# ------------------------------------------------------------------ the engine reads a file once


class _Unseekable(io.RawIOBase):
    """A stream zipfile cannot seek: it writes each member's sizes after its data."""

    def __init__(self, f: Any):
        self._f = f

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._f.write(data)


def write_npz(
    path: Path,
    arrays: dict[str, np.ndarray],
    *,
    compress: bool = False,
    seekable: bool = True,
    comment: bytes = b"",
) -> None:
    """An .npz with its members in the order given, as other tools than numpy write them."""
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with (
        path.open("wb") as raw,
        zipfile.ZipFile(_Unseekable(raw) if not seekable else raw, "w", mode) as archive,
    ):
        for key, value in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, value, allow_pickle=False)
        archive.comment = comment


NUMPY_ORDER = [*NPZ_KEYS, "extra"]
#: How files come: (how they are written, their members in order, arrays that differ).
FILE_KINDS: dict[str, tuple[dict[str, Any], list[str], dict[str, Any]]] = {
    "numpy": ({}, NUMPY_ORDER, {}),
    "compressed": ({"compress": True}, NUMPY_ORDER, {}),
    "labels-first": ({}, ["y_test", "y_train", "X_test", "X_train"], {}),
    "others-between": ({}, ["X_test", "extra", "y_test", "X_train", "y_train"], {}),
    "descriptors": ({"seekable": False}, ["y_train", "X_train", "extra", "X_test", "y_test"], {}),
    "comment": ({"comment": b"written by a lab pipeline", "compress": True}, NUMPY_ORDER, {}),
    "fortran": ({}, NUMPY_ORDER, {"X_train": lambda x: np.asfortranarray(x)}),
    "big-endian": ({}, NUMPY_ORDER, {"X_test": lambda x: x.astype(">f8"), "X_train": lambda x: x.astype(">f4")}),
    "ints": ({}, NUMPY_ORDER, {"X_train": lambda x: (x * 100).astype(np.int16)}),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(FILE_KINDS))
def test_one_read_gives_the_arrays_and_hash_of_the_file(tmp_path, kind):
    """The arrays are numpy.load's and the hash is the file's SHA-256 (the key of the cached
    views of every npz run so far), whatever order and form the members have."""
    from kdtui.spec.npz import read_npz

    how, order, change = FILE_KINDS[kind]
    arrays = {**good_arrays(), "extra": np.arange(5000.0)}
    arrays.update({k: f(arrays[k]) for k, f in change.items()})
    path = tmp_path / "d.npz"
    if kind == "numpy":
        np.savez(path, **arrays)
    else:
        write_npz(path, {k: arrays[k] for k in order}, **how)
    summary, got, sha256 = read_npz(path)
    assert summary.problems == () and (summary.channels, summary.length) == (2, 64)
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with np.load(path) as npz:
        for key in NPZ_KEYS:
            assert got[key].dtype == npz[key].dtype and got[key].shape == npz[key].shape, key
            np.testing.assert_array_equal(got[key], npz[key])
    assert load_npz(path).key == stable_hash(
        {"version": _DATA_VERSION, "channels": [0, 1], "dataset": "npz", "sha256": sha256}
    )


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="Linux's per-process I/O counts")
def test_the_engine_reads_a_file_once(tmp_path):
    """Check, load and hash each read the whole file: three reads, seconds for a GB file."""
    rng = np.random.default_rng(0)
    arrays = {
        "X_train": rng.normal(size=(1000, 3, 500)),  # 12 MB
        "y_train": np.arange(1000) % 7,
        "X_test": rng.normal(size=(200, 3, 500)),
        "y_test": np.arange(200) % 7,
    }
    np.savez(tmp_path / "d.npz", **arrays)
    size = (tmp_path / "d.npz").stat().st_size

    def bytes_read() -> int:
        text = Path("/proc/self/io").read_text()
        return int(next(line for line in text.splitlines() if line.startswith("rchar")).split()[1])

    before = bytes_read()
    load_npz(tmp_path / "d.npz")
    assert bytes_read() - before < 1.2 * size


@pytest.mark.parametrize("channels", [None, [1], [1, 0]])
@pytest.mark.parametrize("layout", ["NCL", "NLC", "fortran"])
def test_the_windows_are_normalised_to_the_same_bits(tmp_path, layout, channels):
    """The z-normalisation without its extra copies gives the bits it always gave: the
    teacher outputs and views cached from earlier runs stay right for these arrays."""
    arrays = good_arrays()
    arrays["X_train"] = arrays["X_train"].astype(np.float32) * 3 + 1
    if layout == "NLC":
        arrays = transposed(arrays)
    elif layout == "fortran":
        arrays["X_train"] = np.asfortranarray(arrays["X_train"])
    np.savez(tmp_path / "d.npz", **arrays)
    got = load_npz(tmp_path / "d.npz", channels, "NLC" if layout == "NLC" else "NCL")
    with np.load(tmp_path / "d.npz") as npz:
        X_train, X_test = npz["X_train"], npz["X_test"]
    if layout == "NLC":
        X_train, X_test = np.swapaxes(X_train, 1, 2), np.swapaxes(X_test, 1, 2)
    chans = channels or [0, 1]
    X_train = np.asarray(X_train, dtype=np.float64)[:, chans]  # as it was written before
    X_test = np.asarray(X_test, dtype=np.float64)[:, chans]
    mean = X_train.mean(axis=(0, 2), keepdims=True)
    std = np.maximum(X_train.std(axis=(0, 2), keepdims=True), 1e-8)
    for mine, before in ((got.X_train, X_train), (got.X_test, X_test)):
        assert mine.dtype == np.float32
        assert mine.tobytes() == ((before - mean) / std).astype(np.float32).tobytes()
