"""Frozen-teacher cache: same losses as recomputing the teacher, computed once, off under
augmentation."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import torch
from conftest import tiny_experiment

from kdtui.engine.models import WideResNet
from kdtui.engine.trainer import Engine
from kdtui.launcher import enqueue
from kdtui.spec import validate_spec
from kdtui.store import Store, read_events

TEACHER = {"depth": 10, "width": 1, "view": {"kind": "gaf", "image_size": 16}}


@pytest.fixture
def teacher_ckpt(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "teacher.pt"
    torch.save({"model": WideResNet(10, 1, 3, 3, dim=2).state_dict()}, path)
    return path


def train(ws: Path, ckpt: Path, **over) -> tuple[list[dict], str]:
    exp = tiny_experiment(
        "kd", epochs=3, teachers=[{"checkpoint": str(ckpt), "model": TEACHER, "weight": 0.5}],
        loss={"ce": 0.3, "kd": {"T": 4, "weight": 0.7}, "at": {"weight": 100},
              "dask": {"weight": 1}},
        **over,
    )  # fmt: skip
    store = Store(ws)
    (run_id,) = enqueue(store, validate_spec(exp))
    logs = io.StringIO()
    with contextlib.redirect_stdout(logs):
        assert Engine(store.run_dir(run_id)).main() == 0
    epochs = [e for e in read_events(store.run_dir(run_id)) if e["type"] == "epoch"]
    return epochs, logs.getvalue()


def test_cached_teacher_gives_the_same_losses(tmp_path, teacher_ckpt):
    cached, log_on = train(tmp_path / "ws", teacher_ckpt)
    plain, log_off = train(tmp_path / "ws", teacher_ckpt, teacher_cache=False)
    assert "teacher cache: computed" in log_on and "teacher cache" not in log_off
    for a, b in zip(cached, plain, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["parts"] == pytest.approx(b["parts"], rel=1e-5)
        assert a["acc"] == pytest.approx(b["acc"], abs=1e-4)
    # the next run with the same teacher and data reads the outputs from disk
    again, log_again = train(tmp_path / "ws", teacher_ckpt, seeds=[0])
    assert "teacher cache: loaded" in log_again
    assert [e["train_loss"] for e in again] == pytest.approx([e["train_loss"] for e in cached])


def test_cache_switches_off_under_augmentation(tmp_path, teacher_ckpt):
    _, log = train(tmp_path / "ws", teacher_ckpt, augment={"mixup": {"alpha": 0.2}})
    assert "teacher cache: off (augmentation" in log
