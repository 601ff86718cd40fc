"""Image datasets from tiny folders generated in the exact CIFAR-10 and class-per-folder layouts."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kdtui.engine.data import DataError
from kdtui.engine.images import channel_stats, load_cifar10, load_image_folder
from kdtui.spec import SpecError, validate_spec

CIFAR_NAMES = [
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
]


def write_cifar10(root: Path, per_batch: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """The python-version layout: six protocol-2 pickles of dicts with byte-string keys,
    b"data" (N, 3072) uint8 rows of R, G, B planes, b"labels" a list of ints; batches.meta."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)]}  # fmt: skip
        with open(root / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        written[name] = data
        written[name + "_labels"] = np.asarray(labels)
    meta = {b"label_names": CIFAR_NAMES, b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    with open(root / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return written


def write_image_folder(root: Path, test: str = "test", size: tuple[int, int] = (8, 6)) -> None:
    """root/train/<class>/ and root/<test>/<class>/, PNG and JPEG, one nested folder
    (Tiny-ImageNet keeps train/<wnid>/images/)."""
    rng = np.random.default_rng(1)
    w, h = size
    for split, n in (("train", 3), (test, 2)):
        for k, cls in enumerate(("cat", "dog", "emu")):
            folder = root / split / cls / ("images" if cls == "emu" and split == "train" else "")
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                pixels[0, 0] = (k, i, 200)  # a tag: class and index
                suffix = ".jpg" if (cls == "dog" and split == test) else ".png"
                Image.fromarray(pixels).save(folder / f"{i}{suffix}")


# ---------------------------------------------------------------------------------- CIFAR-10


def test_cifar10_loads_images_labels_and_class_names(tmp_path):
    raw = write_cifar10(tmp_path / "cifar-10-batches-py")
    a = load_cifar10(tmp_path / "cifar-10-batches-py")
    assert a.X_train.shape == (20, 3, 32, 32) and a.X_test.shape == (4, 3, 32, 32)
    assert a.X_train.dtype == np.uint8
    first = raw["data_batch_1"][0]
    for c in range(3):  # R, G, B planes of 1024 values, row-major
        assert np.array_equal(a.X_train[0, c], first[c * 1024 : (c + 1) * 1024].reshape(32, 32))
    assert np.array_equal(a.X_test.reshape(4, -1), raw["test_batch"])
    labels = np.concatenate([raw[f"data_batch_{i}_labels"] for i in range(1, 6)])
    assert np.array_equal(a.y_train, labels) and np.array_equal(a.y_test, raw["test_batch_labels"])
    assert a.classes[0] == "airplane" and a.num_classes == 10 and a.in_channels == 3
    flat = a.X_train.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    assert np.allclose(a.mean, flat.mean(1)) and np.allclose(a.std, flat.std(1), rtol=1e-5)


def test_cifar10_refuses_a_pickle_that_would_run_code(tmp_path):
    root = tmp_path / "c"
    write_cifar10(root)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(root / "data_batch_3", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f, protocol=2)
    with pytest.raises(
        DataError, match=r"data_batch_3: not a CIFAR-10 batch \(refused to load (posix|os)\.system"
    ):
        load_cifar10(root)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda root: (root / "test_batch").unlink(), "missing test_batch"),
        (
            lambda root: (root / "data_batch_2").write_bytes(b"not a pickle"),
            "data_batch_2: not a CIFAR-10 batch",
        ),
        (
            lambda root: (root / "data_batch_1").write_bytes(
                pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2)
            ),
            "expected uint8 (N, 3072)",
        ),
        (
            lambda root: (root / "data_batch_1").write_bytes(
                pickle.dumps({b"images": 1}, protocol=2)
            ),
            "no 'data' entry",
        ),
        (
            lambda root: (root / "data_batch_1").write_bytes(pickle.dumps([1, 2], protocol=2)),
            "holds a list",
        ),
    ],
)
def test_cifar10_bad_layouts_say_what_is_expected(tmp_path, damage, words):
    root = tmp_path / "c"
    write_cifar10(root)
    damage(root)
    with pytest.raises(DataError) as info:
        load_cifar10(root)
    assert words in str(info.value) and "data_batch_1 ... data_batch_5 and test_batch" in str(
        info.value
    )


def test_cifar10_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no such folder; expected the CIFAR-10 python version"):
        load_cifar10(tmp_path / "nowhere")


# ------------------------------------------------------------------------------ image-folder


def test_image_folder_loads_classes_in_order_with_nested_folders(tmp_path):
    write_image_folder(tmp_path)
    a = load_image_folder(tmp_path)
    assert a.classes == ("cat", "dog", "emu")
    assert a.X_train.shape == (9, 3, 6, 8) and a.X_test.shape == (6, 3, 6, 8)
    assert a.y_train.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and a.y_test.tolist() == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]
    # PNGs are exact: the tagged pixel says class and index
    assert [tuple(a.X_train[i, :, 0, 0]) for i in (0, 4, 8)] == [
        (0, 0, 200),
        (1, 1, 200),
        (2, 2, 200),
    ]
    assert a.X_train.dtype == np.uint8 and a.mean.shape == (3,)


def test_image_folder_falls_back_to_val_and_takes_an_explicit_split(tmp_path):
    write_image_folder(tmp_path, test="val")
    assert load_image_folder(tmp_path).X_test.shape[0] == 6
    assert load_image_folder(tmp_path, "val").X_test.shape[0] == 6
    with pytest.raises(DataError, match="no valid/ folder"):
        load_image_folder(tmp_path, "valid")


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda r: (r / "train").rename(r / "training"), "no train/ folder"),
        (lambda r: (r / "test").rename(r / "holdout"), "no test/, val/, valid/ folder"),
        (lambda r: (r / "test" / "dog").rename(r / "test" / "wolf"), "class folder(s) wolf not in"),
        (lambda r: (r / "train" / "cat" / "0.png").write_bytes(b"junk"), "cannot read the image"),
        (
            lambda r: Image.new("RGB", (5, 5)).save(r / "train" / "dog" / "big.png"),
            "all images must have one size",
        ),
        (lambda r: [p.unlink() for p in (r / "test").rglob("*.*")], "no .png or .jpg images"),
    ],
)
def test_image_folder_bad_layouts_say_what_is_expected(tmp_path, damage, words):
    write_image_folder(tmp_path)
    damage(tmp_path)
    with pytest.raises(DataError) as info:
        load_image_folder(tmp_path)
    assert words in str(info.value)


def test_image_folder_needs_two_classes(tmp_path):
    (tmp_path / "train" / "only").mkdir(parents=True)
    (tmp_path / "test").mkdir()
    with pytest.raises(DataError, match="1 class folder"):
        load_image_folder(tmp_path)


def test_channel_stats_are_exact():
    x = np.random.default_rng(0).integers(0, 256, size=(7, 3, 5, 4), dtype=np.uint8)
    mean, std = channel_stats(x)
    flat = x.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    assert np.allclose(mean, flat.mean(1)) and np.allclose(std, flat.std(1))


# ------------------------------------------------------------------------------------- spec


def test_spec_checks_the_folder_and_the_image_view(tmp_path):
    exp = {
        "name": "x",
        "data": {"dataset": "image-folder", "path": "missing"},
        "student": {"depth": 10, "width": 1, "view": "signal"},
    }
    with pytest.raises(SpecError) as info:
        validate_spec(exp, base_dir=tmp_path)
    got = {p.path: p.message for p in info.value.problems}
    assert got["data.path"].startswith(
        f"no such folder: {tmp_path / 'missing'}; expected class-per-folder"
    )
    assert 'must read them with the "image" view' in got["student.view"]
    write_image_folder(tmp_path / "missing")
    exp["student"]["view"] = "image"
    assert validate_spec(exp, base_dir=tmp_path).experiments[0].student.dim == 2
