"""data.val's rows are computed by scikit-learn once per split and cached in the workspace's
cache folder: later runs of the split (every seed of a study, a resumed run) read the very
same rows without importing scikit-learn, and a bad cache file is computed again."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_experiment

from kdtui.engine import validation
from kdtui.launcher import enqueue
from kdtui.spec import validate_spec
from kdtui.store import Store

Y = np.arange(90) % 3
SUBJECTS = np.repeat(np.arange(9), 10)


def _rows(tmp_path: Path, groups: np.ndarray | None = None, **over) -> tuple[np.ndarray, list]:
    """The cached rows of Y (0.25, seed 3) and the log lines of the call."""
    logs: list[str] = []
    args = {"fraction": 0.25, "seed": 3, "data_key": "k", **over}
    rows = validation.cached_rows(Y, args.pop("fraction"), args.pop("seed"), groups,
                                  cache_dir=tmp_path / "cache", log=logs.append, **args)  # fmt: skip
    return rows, logs


def _cache_file(tmp_path: Path) -> Path:
    (path,) = (tmp_path / "cache").glob("val-*.npy")
    return path


@pytest.mark.parametrize("groups", [None, SUBJECTS], ids=["stratified", "by_subject"])
def test_cached_rows_are_the_computed_rows_and_later_calls_read_them(tmp_path, monkeypatch, groups):
    computed = validation.val_rows(Y, 0.25, 3, groups)
    first, logs = _rows(tmp_path, groups)
    assert np.array_equal(first, computed) and first.dtype == np.int64
    assert len(logs) == 1 and logs[0].startswith("val split: computed")

    def no_sklearn(*_a, **_k):
        raise AssertionError("the split was computed again")

    monkeypatch.setattr(validation, "val_rows", no_sklearn)
    again, logs = _rows(tmp_path, groups)
    assert np.array_equal(again, computed) and again.dtype == np.int64
    assert len(logs) == 1 and logs[0].startswith("val split: cached")


def test_the_key_holds_everything_the_split_depends_on_and_nothing_else():
    key = validation.split_key("k", Y, 0.25, 3, None)
    assert validation.split_key("k", Y.copy(), 0.25, 3, None) == key
    assert validation.split_key("k", Y.astype(np.int32), 0.25, 3, None) == key
    others = [
        validation.split_key("other", Y, 0.25, 3, None),  # the data
        validation.split_key("k", Y, 0.2, 3, None),  # the fraction
        validation.split_key("k", Y, 0.25, 4, None),  # the split's seed
        validation.split_key("k", Y[::-1], 0.25, 3, None),  # the labels
        validation.split_key("k", Y[:-3], 0.25, 3, None),  # the number of rows
        validation.split_key("k", Y, 0.25, 3, SUBJECTS),  # by subject
        validation.split_key("k", Y, 0.25, 3, SUBJECTS[::-1]),  # which subjects
    ]
    assert len({key, *others}) == len(others) + 1


def test_another_fraction_or_seed_is_another_cache_file(tmp_path):
    rows, _ = _rows(tmp_path)
    for over in ({"fraction": 0.2}, {"seed": 4}):
        other, logs = _rows(tmp_path, **over)
        assert logs[0].startswith("val split: computed") and not np.array_equal(other, rows)
    assert len(list((tmp_path / "cache").glob("val-*.npy"))) == 3


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


BAD = {
    "torn": lambda rows: _npy(rows)[:-5],
    "garbage": lambda rows: b"not an npy file",
    "pickled": lambda rows: _npy(np.array([rows], dtype=object)),
    "two-d": lambda rows: _npy(rows[None]),
    "floats": lambda rows: _npy(rows.astype(np.float64)),
    "too few": lambda rows: _npy(rows[:-1]),
    "out of range": lambda rows: _npy(np.append(rows[1:], len(Y))),
    "repeated": lambda rows: _npy(np.sort(np.append(rows[1:], rows[1]))),
    "unsorted": lambda rows: _npy(rows[::-1].copy()),
}


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_a_bad_cache_file_is_computed_again_and_replaced(tmp_path, bad):
    rows, _ = _rows(tmp_path)
    path = _cache_file(tmp_path)
    path.write_bytes(bad(rows))
    again, logs = _rows(tmp_path)
    assert np.array_equal(again, rows)
    assert logs[0].startswith("val split: computed") and "replaced" in logs[0]
    assert np.array_equal(np.load(path), rows)  # and the next run reads the good rows
    assert _rows(tmp_path)[1][0].startswith("val split: cached")


def test_a_cached_split_by_subject_with_a_subject_on_both_sides_is_computed_again(tmp_path):
    rows, _ = _rows(tmp_path, SUBJECTS)
    leaky = np.sort(np.append(rows[1:], np.setdiff1d(np.arange(len(Y)), rows)[0]))
    _cache_file(tmp_path).write_bytes(_npy(leaky))
    again, logs = _rows(tmp_path, SUBJECTS)
    assert np.array_equal(again, rows) and "a subject on both sides" in logs[0]


def test_a_cache_file_that_is_a_link_is_not_followed(tmp_path):
    rows, _ = _rows(tmp_path)
    path = _cache_file(tmp_path)
    target = tmp_path / "elsewhere.npy"
    other = np.sort(np.setdiff1d(np.arange(len(Y)), rows)[: len(rows)])  # plausible, wrong
    target.write_bytes(_npy(other))
    path.unlink()
    path.symlink_to(target)
    again, logs = _rows(tmp_path)
    assert np.array_equal(again, rows) and logs[0].startswith("val split: computed")
    assert not path.is_symlink() and np.array_equal(np.load(target), other)  # target untouched


def test_split_rows_reads_the_spec_and_caches_only_with_a_cache_folder(tmp_path):
    data = {"dataset": "synthetic-har", "val": {"fraction": 0.25, "seed": 3}}
    logs: list[str] = []
    plain = validation.split_rows(data, Y)
    cached = validation.split_rows(data, Y, data_key="k", cache_dir=tmp_path, log=logs.append)
    assert np.array_equal(plain, cached) and np.array_equal(plain, validation.val_rows(Y, 0.25, 3))
    assert len(logs) == 1 and list(tmp_path.glob("val-*.npy"))
    own = {**data, "val": {"from_file": True}}
    assert validation.split_rows(own, Y, data_key="k", cache_dir=tmp_path) is None


#: An engine (as ``python -m kdtui.engine`` runs it) stopped at its first training batch,
#: printing the heavy modules loaded by then.
_TO_FIRST_BATCH = """
import json, os, sys
from pathlib import Path
from kdtui.engine import trainer
def first_batch(*_):
    heavy = ("sklearn", "scipy", "torch._dynamo", "sympy", "pyts", "numba", "matplotlib")
    print(json.dumps([m for m in heavy if m in sys.modules]), flush=True)
    os._exit(0)
trainer.Engine.train_step = first_batch
sys.exit(trainer.Engine(Path(sys.argv[1])).main())
"""


def test_a_second_run_of_a_split_starts_without_importing_scikit_learn(tmp_path):
    """The fault: every engine start of a run with data.val imported scikit-learn (and
    scipy) for its split, 1-2 s of CPU paid by each of a study's runs. Two seeds of one
    group, each started in a fresh interpreter: the first computes the split, the second
    reads it and reaches its first batch with neither imported, holding out the same rows."""
    store = Store(tmp_path / "ws")
    data = {**tiny_experiment("v")["data"], "val": {"fraction": 0.25, "seed": 1}}
    runs = enqueue(store, validate_spec(tiny_experiment("v", data=data, seeds=[0, 1])))
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    starts = []
    for run_id in runs:
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_TO_FIRST_BATCH), str(store.run_dir(run_id))],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        *log, last = out.stdout.strip().splitlines()
        starts.append((json.loads(last), [line for line in log if "val split" in line]))
    (first_loaded, first_log), (loaded, log) = starts
    assert "sklearn" in first_loaded
    assert loaded == [], f"the second start imported {loaded}"
    assert len(first_log) == 1 and "val split: computed (12 of 48 rows)" in first_log[0]
    assert len(log) == 1 and "val split: cached (12 of 48 rows" in log[0]
    assert first_log[0].split(", ")[-1] in log[0]  # the same cache file
