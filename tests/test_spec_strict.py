"""Specs that would only fail hours later are refused at once, at their JSON path: numbers
that are not finite, seeds that are no seeds, files that are no spec, checkpoints that are
no checkpoint."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_cli, tiny_experiment

from kdtui.spec import SpecError, load_spec, validate_spec
from kdtui.spec.checkpoint import checkpoint_problem
from kdtui.spec.fields import MAX_SEED, Strict


def problems_of(raw: Any, **kw: Any) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        validate_spec(raw, **kw)
    return {p.path: p.message for p in info.value.problems}


def parsed(text: str) -> Any:
    """As a spec file reads: Python's json takes Infinity and NaN, and 1e309 as infinity."""
    return json.loads(text)


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e309", "-1e400"])
@pytest.mark.parametrize(
    ("where", "path"),
    [
        ({"optim": {"lr": "%s"}}, "optim.lr"),
        ({"optim": {"lr": 0.1, "weight_decay": "%s"}}, "optim.weight_decay"),
        ({"loss": {"ce": "%s"}}, "loss.ce"),
        ({"loss": {"amc": {"weight": "%s"}}}, "loss.amc.weight"),
        ({"schedule": {"kind": "cosine", "min_lr": "%s"}}, "schedule.min_lr"),
        ({"schedule": {"kind": "step", "milestones": [1], "gamma": "%s"}}, "schedule.gamma"),
        ({"augment": {"mixup": {"alpha": "%s"}}}, "augment.mixup.alpha"),
        ({"augment": {"cutmix": {"alpha": 1, "prob": "%s"}}}, "augment.cutmix.prob"),
        ({"student": {"depth": 10, "dropout": "%s"}}, "student.dropout"),
    ],
)
def test_numbers_must_be_finite(number: str, where: dict, path: str):
    text = json.dumps(tiny_experiment("x", **where)).replace('"%s"', number)
    got = problems_of(parsed(text))
    assert got[path].startswith("must be a finite number, not "), got
    assert len(got) == 1, got


def test_teacher_and_term_floats_must_be_finite():
    raw = tiny_experiment(
        "s",
        teachers=[{"checkpoint": "t.pt", "model": {"depth": 10}, "weight": "%s"}],
        loss={"kd": {"T": "%s", "weight": "%s"}},
        data={"dataset": "synthetic-har", "noise": "%s"},
    )
    got = problems_of(parsed(json.dumps(raw).replace('"%s"', "1e309")))
    for path in ("teachers[0].weight", "loss.kd.T", "loss.kd.weight", "data.noise"):
        assert "finite" in got[path], got
    assert "1.8e308" in got["loss.kd.T"]  # why 1e309 is said to be Infinity


def test_every_model_refuses_infinite_floats():
    """Once for every model, not field by field: a float field added later is covered."""
    from pydantic import BaseModel

    def models(cls: type[BaseModel]) -> list[type[BaseModel]]:
        return [cls] + [m for sub in cls.__subclasses__() for m in models(sub)]

    found = models(Strict)
    assert len(found) > 20
    assert all(m.model_config.get("allow_inf_nan") is False for m in found)


@pytest.mark.parametrize(
    ("seeds", "words"),
    [
        (["0"], 'must be a whole number, not "0"'),
        ([True], "must be a whole number, not true"),
        ([1.0], "must be a whole number, not 1.0"),
        ([2**70], "must be <= 4294967295"),
        ([MAX_SEED + 1], "must be <= 4294967295"),
        ([-1], "must be >= 0"),
    ],
)
def test_seeds_are_strict_ints(seeds: list, words: str):
    got = problems_of(tiny_experiment("x", seeds=[5, *seeds]))
    assert got == {"seeds[1]": got["seeds[1]"]} and words in got["seeds[1]"], got


def test_the_largest_seed_is_accepted():
    spec = validate_spec(tiny_experiment("x", seeds=[0, MAX_SEED]))
    assert spec.experiments[0].seeds == [0, MAX_SEED]


def test_a_deeply_nested_file_is_one_clear_problem(tmp_path: Path, workspace: Path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    with pytest.raises(SpecError) as info:
        load_spec(deep)
    assert [p.message for p in info.value.problems] == [
        "not a spec: JSON nested too deeply (thousands of levels)"
    ]
    done = run_cli("run", str(deep), workspace=workspace)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    assert "nested too deeply" in done.stdout + done.stderr


def test_a_binary_file_is_no_spec(tmp_path: Path):
    path = tmp_path / "spec.json"
    path.write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(SpecError, match="not a text file"):
        load_spec(path)


# ------------------------------------------------------------------ teacher checkpoints


def _torch_save(path: Path) -> None:
    import torch

    torch.save({"model": torch.nn.Linear(2, 2).state_dict()}, path)


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """A file that is no checkpoint → the words that say what it is."""
    out = {}

    def put(name: str, data: bytes, words: str) -> None:
        (tmp_path / name).write_bytes(data)
        out[name] = (tmp_path / name, words)

    put("text.pt", b"hello, I am text\n", "it holds text, starting 'hello, I am text'")
    put("empty.pt", b"", "the file is empty")
    put("pickle.pt", pickle.dumps({"a": 1}), "a pickle, but not one written by torch.save")
    np.savez(tmp_path / "arrays.npz", a=np.ones(2))
    out["arrays.npz"] = (tmp_path / "arrays.npz", "a NumPy .npz archive")
    _torch_save(tmp_path / "whole.pt")
    put("cut.pt", (tmp_path / "whole.pt").read_bytes()[:300], "a damaged zip archive")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "hi")
    out["other.zip"] = (tmp_path / "other.zip", "without the data.pkl that torch.save writes")
    if Path("/etc/passwd").is_file():
        out["passwd"] = (Path("/etc/passwd"), "it holds text, starting 'root:")
    return out


def test_a_checkpoint_that_is_no_checkpoint_says_what_it_is(tmp_path: Path):
    for name, (path, words) in _bad_files(tmp_path).items():
        raw = tiny_experiment(
            "s",
            teachers=[{"checkpoint": str(path), "model": {"depth": 10}}],
            loss={"kd": {}},
        )
        got = problems_of(raw, base_dir=tmp_path)
        message = got["teachers[0].checkpoint"]
        assert message.startswith(f"{path} is not a PyTorch checkpoint ("), (name, message)
        assert words in message, (name, message)
        assert "expected a file saved by torch.save" in message, (name, message)


def test_real_checkpoints_pass(tmp_path: Path):
    import torch

    _torch_save(tmp_path / "new.pt")
    torch.save(
        torch.nn.Linear(2, 2).state_dict(),
        tmp_path / "legacy.pt",
        _use_new_zipfile_serialization=False,
    )
    assert checkpoint_problem(tmp_path / "new.pt") is None
    assert checkpoint_problem(tmp_path / "legacy.pt") is None


def test_the_engine_says_the_same_before_torch_load(tmp_path: Path):
    from kdtui.engine.trainer import load_checkpoint

    for name, (path, words) in _bad_files(tmp_path).items():
        with pytest.raises(RuntimeError) as info:
            load_checkpoint(path)
        assert "is not a PyTorch checkpoint" in str(info.value) and words in str(info.value), name
    _torch_save(tmp_path / "good.pt")
    assert set(load_checkpoint(tmp_path / "good.pt")["model"]) == {"weight", "bias"}
