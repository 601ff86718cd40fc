"""Datasets (basicmotions, synthetic-har, npz) and per-model views with their disk cache."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyts.approximation import PiecewiseAggregateApproximation
from pyts.image import GramianAngularField, RecurrencePlot

from kdtui.engine import views
from kdtui.engine.data import DataError, load_basicmotions, load_npz, make_synthetic_har
from kdtui.engine.views import cached_view, compute_view, gramian_angular_field, view_key

GAF = {"kind": "gaf", "method": "summation", "image_size": 16}


@pytest.fixture
def X() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(3, 2, 40)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# views


@pytest.mark.parametrize("method", ["summation", "difference"])
@pytest.mark.parametrize(("length", "size"), [(100, 32), (100, 64), (40, 40), (37, 5)])
def test_gaf_equals_pyts_for_any_size(method: str, length: int, size: int) -> None:
    """kdtui computes GAF with NumPy (pyts' numba import costs ~30 s a process): same numbers,
    including PAA with sizes that do not divide the length, and a flat series."""
    series = np.random.default_rng(length).normal(size=(5, length))
    series[0] = 3.0
    ours = gramian_angular_field(series, size, method)
    ref = GramianAngularField(image_size=size, method=method).fit_transform(series)
    np.testing.assert_allclose(ours, ref, atol=1e-7)  # float32 precision: views are float32


@pytest.mark.parametrize("method", ["summation", "difference"])
def test_gaf_view_is_pyts_per_channel(X: np.ndarray, method: str) -> None:
    out = compute_view(X, {"kind": "gaf", "method": method, "image_size": 16})
    ref = GramianAngularField(image_size=16, method=method).fit_transform(X.reshape(6, 40))
    assert out.shape == (3, 2, 16, 16)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref.reshape(3, 2, 16, 16), atol=1e-6)


def test_mtf_and_rp_views(X: np.ndarray) -> None:
    mtf = compute_view(X, {"kind": "mtf", "image_size": 16, "n_bins": 4})
    rp = compute_view(X, {"kind": "rp", "image_size": 16})
    assert mtf.shape == rp.shape == (3, 2, 16, 16)
    assert mtf.dtype == rp.dtype == np.float32
    paa = PiecewiseAggregateApproximation(window_size=None, output_size=16)
    ref = RecurrencePlot().fit_transform(paa.fit_transform(X[1, 0][None].astype(np.float64)))
    np.testing.assert_allclose(rp[1, 0], ref[0], rtol=1e-5)


def test_signal_view_is_the_array(X: np.ndarray, tmp_path: Path) -> None:
    assert compute_view(X, {"kind": "signal"}) is X
    cache = tmp_path / "cache"
    out = cached_view(X, {"kind": "signal"}, data_key="d", split="train", cache_dir=cache)
    assert out is X
    assert not cache.exists()


@pytest.mark.parametrize(
    ("view", "words"),
    [
        ({"kind": "fft"}, ["fft", "gaf"]),
        ({**GAF, "size": 3}, ["size"]),
        ({"kind": "gaf", "image_size": 16}, ["method"]),
        ({**GAF, "method": "product"}, ["product"]),
        ({**GAF, "image_size": 1}, ["image_size"]),
    ],
)
def test_bad_views_are_named(X: np.ndarray, view: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        compute_view(X, view)
    assert all(w in str(err.value) for w in words)


def test_cached_view_computes_once_then_loads(
    X: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def counting(X: np.ndarray, view: dict) -> np.ndarray:
        calls.append(view)
        return compute_view(X, view)

    monkeypatch.setattr(views, "compute_view", counting)
    lines: list[str] = []
    kw = {"data_key": "abc", "split": "train", "cache_dir": tmp_path, "log": lines.append}
    # copies: the results are memory-mapped, and the file is corrupted below
    first = np.array(cached_view(X, GAF, **kw))
    second = np.array(cached_view(X, GAF, **kw))
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(second, compute_view(X, GAF))
    path = tmp_path / f"{view_key('abc', 'train', GAF)}.npy"
    assert "computed in" in lines[0] and str(path) in lines[0]
    assert lines[1] == f"view gaf(summation, 16) train: loaded from cache {path}"
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == [
        path.name
    ]  # no temp files

    path.unlink()
    path.write_bytes(b"\x93NUMPY garbage")  # a torn / corrupt file is recomputed
    third = cached_view(X, GAF, **kw)
    assert len(calls) == 2
    np.testing.assert_array_equal(third, first)
    assert "computed in" in lines[2] and "unreadable" in lines[2]

    path.unlink()
    np.save(path, np.zeros((1, 2, 16, 16), np.float32))  # wrong shape: recomputed too
    np.testing.assert_array_equal(cached_view(X, GAF, **kw), first)
    assert len(calls) == 3


def test_view_key_covers_every_input() -> None:
    base = view_key("data", "train", GAF)
    variants = [
        view_key("other", "train", GAF),
        view_key("data", "test", GAF),
        view_key("data", "train", {**GAF, "method": "difference"}),
        view_key("data", "train", {**GAF, "image_size": 32}),
        view_key("data", "train", {"kind": "mtf", "image_size": 16}),
        view_key("data", "train", {"kind": "mtf", "image_size": 16, "n_bins": 4}),
        view_key("data", "train", {"kind": "rp", "image_size": 16}),
    ]
    assert len({base, *variants}) == 1 + len(variants)
    assert int(base, 16) >= 0  # hex
    # defaults are filled in before hashing: the same view spelled two ways is one cache file
    assert view_key("d", "train", {"kind": "mtf", "image_size": 16}) == view_key(
        "d", "train", {"kind": "mtf", "image_size": 16, "n_bins": 8}
    )


def test_view_key_is_stable_across_processes() -> None:
    code = f"from kdtui.engine.views import view_key;print(view_key('data', 'train', {GAF!r}))"
    keys = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert keys == {view_key("data", "train", GAF)}


# ---------------------------------------------------------------------------------------------
# datasets


def test_basicmotions() -> None:
    a = load_basicmotions()
    assert a.X_train.shape == a.X_test.shape == (40, 6, 100)
    assert a.X_train.dtype == np.float32 and a.y_train.dtype == np.int64
    assert a.classes == ("Badminton", "Running", "Standing", "Walking")
    assert (np.bincount(a.y_train) == 10).all() and (np.bincount(a.y_test) == 10).all()
    assert (a.num_classes, a.in_channels, a.length) == (4, 6, 100)

    acc = load_basicmotions(channels=[0, 1, 2])
    assert acc.in_channels == 3
    np.testing.assert_allclose(acc.X_train, a.X_train[:, :3])
    assert acc.key != a.key
    assert load_basicmotions(channels=list(range(6))).key == a.key
    with pytest.raises(DataError, match="6 channels"):
        load_basicmotions(channels=[6])


def test_synthetic_har_is_seeded() -> None:
    kw = {"n_train": 70, "n_test": 35, "length": 100}
    a, b, c = make_synthetic_har(**kw), make_synthetic_har(**kw), make_synthetic_har(**kw, seed=1)
    assert a.X_train.shape == (70, 3, 100) and a.X_test.shape == (35, 3, 100)
    assert a.num_classes == 7 and len(set(a.classes)) == 7
    assert (np.bincount(a.y_train) == 10).all()
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.key == b.key
    assert not np.allclose(a.X_train, c.X_train)
    assert c.key != a.key
    assert make_synthetic_har(**kw, noise=0.3).key != a.key
    four = make_synthetic_har(**kw, n_classes=4, channels=[0])
    assert (four.num_classes, four.in_channels) == (4, 1)
    assert set(four.y_train) == {0, 1, 2, 3}


# ---------------------------------------------------------------------------------------------
# npz


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.fixture
def good() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "X_train": rng.normal(3.0, 2.0, size=(30, 2, 20)),
        "y_train": np.array(["walk", "sit", "run"] * 10),
        "X_test": rng.normal(8.0, 2.0, size=(12, 2, 20)),
        "y_test": np.array(["sit", "run"] * 6),
    }


def test_npz_string_labels_and_train_only_znorm(tmp_path: Path, good: dict) -> None:
    a = load_npz(_save(tmp_path / "d.npz", **good))
    assert a.classes == ("run", "sit", "walk")
    assert list(a.y_train[:3]) == [2, 1, 0] and list(a.y_test[:2]) == [1, 0]
    assert a.X_train.dtype == np.float32 and a.X_test.shape == (12, 2, 20)
    np.testing.assert_allclose(a.X_train.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(a.X_train.std(axis=(0, 2)), 1, atol=1e-4)
    assert (a.X_test.mean(axis=(0, 2)) > 1.5).all()  # shifted test data stays shifted

    # the key follows the content, not the path
    assert load_npz(_save(tmp_path / "copy.npz", **good)).key == a.key
    good["X_train"][0, 0, 0] += 1
    assert load_npz(_save(tmp_path / "changed.npz", **good)).key != a.key


def test_npz_integer_labels_and_channels(tmp_path: Path, good: dict) -> None:
    good["y_train"] = np.array([7, -1, 3] * 10)
    good["y_test"] = np.array([3, 7] * 6)
    a = load_npz(_save(tmp_path / "d.npz", **good), channels=[1])
    assert a.classes == ("-1", "3", "7")
    assert list(a.y_train[:3]) == [2, 0, 1] and a.in_channels == 1
    with pytest.raises(DataError, match="has 2 channels"):
        load_npz(tmp_path / "d.npz", channels=[2])


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"X_test": None}, "missing X_test"),
        ({"X_train": np.zeros((30, 20))}, "X_train has shape (30, 20)"),
        ({"y_train": np.array(["a", "b"] * 14)}, "X_train has 30 samples but y_train has 28"),
        ({"X_test": np.zeros((12, 3, 20))}, "X_test has"),
        ({"y_test": np.array(["sit", "fly"] * 6)}, "not in y_train: fly"),
        ({"y_train": np.linspace(0, 1, 30)}, "y_train has labels that are not whole numbers"),
        ({"y_train": np.ones(30, complex)}, "dtype complex128, expected integer or string labels"),
    ],
)
def test_npz_layout_errors(tmp_path: Path, good: dict, change: dict, problem: str) -> None:
    arrays = {k: v for k, v in {**good, **change}.items() if v is not None}
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as err:
        load_npz(path)
    assert str(path) in str(err.value)
    assert problem in str(err.value)
    assert "X_train (N, C, L)" in str(err.value)  # the expected layout


def test_npz_nan_is_counted(tmp_path: Path, good: dict) -> None:
    good["X_test"][0, 0, :3] = np.nan
    good["X_test"][1, 1, 0] = np.inf
    path = _save(tmp_path / "nan.npz", **good)
    with pytest.raises(DataError, match="X_test has 4 NaN or infinite values") as err:
        load_npz(path)
    assert str(path) in str(err.value)


def test_npz_missing_or_not_npz(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found") as err:
        load_npz(tmp_path / "nope.npz")
    assert str(tmp_path / "nope.npz") in str(err.value)
    junk = tmp_path / "junk.npz"
    junk.write_text("not numpy")
    with pytest.raises(DataError, match="not a readable .npz") as err:
        load_npz(junk)
    assert str(junk) in str(err.value)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="not an .npz"):
        load_npz(single)


def test_npz_in_nlc_layout_is_transposed_on_load(tmp_path: Path, good: dict) -> None:
    ncl = load_npz(_save(tmp_path / "ncl.npz", **good))
    nlc_arrays = {k: v.transpose(0, 2, 1) if k[0] == "X" else v for k, v in good.items()}
    path = _save(tmp_path / "nlc.npz", **nlc_arrays)
    nlc = load_npz(path, layout="NLC")
    assert (nlc.in_channels, nlc.length) == (2, 20)
    np.testing.assert_array_equal(nlc.X_train, ncl.X_train)
    np.testing.assert_array_equal(nlc.X_test, ncl.X_test)
    assert nlc.key != ncl.key  # another file read another way: its own cached views
    # the engine reads the layout from the run's frozen spec
    from kdtui.engine.trainer import load_arrays

    via_spec = load_arrays({"dataset": "npz", "path": str(path), "layout": "NLC"})
    np.testing.assert_array_equal(via_spec.X_train, ncl.X_train)
    # without a layout (a spec from before layouts), NCL as always
    assert load_arrays({"dataset": "npz", "path": str(tmp_path / "ncl.npz")}).key == ncl.key


def test_npz_bool_labels(tmp_path: Path, good: dict) -> None:
    good["y_train"] = np.array([True, False, False] * 10)
    good["y_test"] = np.array([False, True] * 6)
    a = load_npz(_save(tmp_path / "d.npz", **good))
    assert a.classes == ("0", "1") and a.num_classes == 2
    assert list(a.y_train[:3]) == [1, 0, 0]


def test_npz_nan_says_where(tmp_path: Path, good: dict) -> None:
    good["X_train"][4, 1, 17] = np.nan
    with pytest.raises(DataError, match=r"the first at sample 4, channel 1, step 17"):
        load_npz(_save(tmp_path / "nan.npz", **good))
