"""Spec validation: good files pass, bad files report every problem with its JSON path."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import tiny_experiment

from kdtui.spec import SpecError, group_key, load_spec, validate_spec

QUICKSTART = "examples/quickstart.json"


def problems_of(raw) -> list[str]:
    with pytest.raises(SpecError) as info:
        validate_spec(raw)
    return [str(p) for p in info.value.problems]


def test_quickstart_is_valid_and_fills_teacher_model():
    spec = load_spec(QUICKSTART)
    names = [e.name for e in spec.experiments]
    assert names == ["gaf-teacher", "signal-student", "kd-gaf-to-signal"]
    kd = spec.by_name("kd-gaf-to-signal")
    assert kd.teachers[0].model == spec.by_name("gaf-teacher").student
    assert kd.student.dim == 1 and kd.teachers[0].model.dim == 2
    assert len(set(spec.group_keys.values())) == 3


def test_single_experiment_gets_file_name(write_spec):
    body = tiny_experiment("x")
    del body["name"]
    spec = load_spec(write_spec(body, "my-run.json"))
    assert spec.experiments[0].name == "my-run"


def test_every_problem_reported_with_its_path(tmp_path):
    raw = {
        "experiments": [
            tiny_experiment("t", seeds=[0, 1]),
            {
                **tiny_experiment("s"),
                "colour": "red",
                "data": {"dataset": "npz", "path": "missing.npz"},
                "teachers": [{"experiment": "nope"}],
                "loss": {"kd": {"T": 0}},
                "epochs": "many",
            },
        ]
    }
    with pytest.raises(SpecError) as info:
        validate_spec(raw, base_dir=tmp_path)
    got = {p.path: p.message for p in info.value.problems}
    assert "unknown field" in got["experiments[1].colour"]
    assert got["experiments[1].loss.kd.T"].startswith("must be > 0")
    assert "integer" in got["experiments[1].epochs"]
    assert "no such file" in got["experiments[1].data.path"]
    assert "no experiment named 'nope'" in got["experiments[1].teachers[0].experiment"]


def test_list_checks_run_beside_field_errors():
    """Seeds and channels are checked even when another field of the experiment is wrong:
    fixing the typo must not uncover a second round of errors."""
    exp = tiny_experiment("s", seeds=[0, 0], epochs="many")
    exp["data"] = {"dataset": "basicmotions", "channels": [0, 9]}
    got = problems_of(exp)
    assert got[0].startswith("epochs:") and got[1:] == [
        "seeds: seeds must not repeat",
        "data.channels: basicmotions has channels 0..5",
    ]
    exp.update(epochs=2, seeds=[0, 1])  # parsed: the same checks, the same words
    exp["data"]["channels"] = []
    assert problems_of(exp) == [
        "data.channels: give at least one channel, or leave channels out for all"
    ]


def test_typo_suggests_the_field():
    raw = tiny_experiment("x", optim={"lr": 0.1, "weight_dacay": 1e-4})
    (msg,) = problems_of(raw)
    assert msg == "optim.weight_dacay: unknown field (did you mean 'weight_decay'?)"


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"student": {"depth": 15}}, "student.depth", "15 is not 6n+4"),
        ({"student": {"dim": 2, "view": "signal"}}, "student.dim", "cannot read"),
        (
            {"student": {"view": {"kind": "gaf", "image_size": 128}}},
            "student.view.image_size",
            "larger than the series length",
        ),
        ({"data": {"dataset": "mnist"}}, "data", "unknown dataset 'mnist'"),
        ({"schedule": {"kind": "step", "milestones": [5, 3]}}, "schedule.milestones", "increasing"),
        ({"data": {"dataset": "synthetic-har", "channels": []}}, "data.channels", "at least one"),
        (
            {"schedule": {"kind": "step", "milestones": [1, 9]}},
            "schedule.milestones",
            "past the last epoch",
        ),
        ({"loss": {"kd": {"T": 4}}}, "loss", "needs at least one teacher"),
        ({"loss": {"ce": 0}}, "loss", "nothing to train"),
        ({"seeds": [1, 1]}, "seeds", "repeat"),
        ({"name": "../escape"}, "name", "not a valid name"),
        ({"device": "tpu"}, "device", "pattern"),
    ],
)
def test_single_field_problems(change, path, words):
    msgs = problems_of(tiny_experiment("x", **change))
    assert any(m.startswith(f"{path}:") and words in m for m in msgs), msgs


def test_teacher_cross_checks():
    teacher = tiny_experiment("t", seeds=[0])
    student = tiny_experiment(
        "s", seeds=[0, 1], teachers=[{"experiment": "t"}], loss={"kd": {"T": 4}}
    )
    msgs = problems_of([teacher, student])
    assert any("[1].teachers[0].pick" in m and "seed(s) [1]" in m for m in msgs), msgs
    # "best" needs no matching seeds
    student["teachers"][0]["pick"] = "best"
    validate_spec([teacher, student])
    # a declared model must match what the referenced experiment trains
    student["teachers"][0]["model"] = {"depth": 16, "width": 2}
    assert any("trains WRN10-1(signal)" in m for m in problems_of([teacher, student]))
    # the teacher must see the same data
    del student["teachers"][0]["model"]
    other = copy.deepcopy(teacher)
    other["data"]["seed"] = 5
    assert any("other data" in m for m in problems_of([other, student]))


def test_cycles_and_self_reference():
    a = tiny_experiment("a", teachers=[{"experiment": "b", "pick": "best"}], loss={"kd": {}})
    b = tiny_experiment("b", teachers=[{"experiment": "a", "pick": "best"}], loss={"kd": {}})
    assert any("cycle" in m for m in problems_of([a, b]))
    c = tiny_experiment("c", teachers=[{"experiment": "c"}], loss={"kd": {}})
    assert any("its own teacher" in m for m in problems_of([c]))


def test_model_problems_are_at_the_field_to_change():
    """A check across fields is still reported at the field the user must edit, in every
    experiment of a file and for teacher models too (not at ``experiments[1].student``)."""
    bad = {"depth": 15, "width": 1, "view": "signal"}
    exp = tiny_experiment(
        "s",
        student=bad,
        teachers=[
            {"checkpoint": "t.pt", "model": {**bad, "depth": 10, "dim": 2}},
            {"checkpoint": "u.pt", "model": bad},
        ],
        loss={"kd": {}},
    )
    msgs = problems_of({"experiments": [tiny_experiment("a"), exp]})
    assert "experiments[1].student.depth: 15 is not 6n+4 (e.g. 10, 16, 22, 28, 40)" in msgs
    assert (
        "experiments[1].teachers[1].model.depth: 15 is not 6n+4 (e.g. 10, 16, 22, 28, 40)" in msgs
    )
    dim = "experiments[1].teachers[0].model.dim: a 2-D model cannot read the signal view"
    assert any(m.startswith(dim) for m in msgs), msgs
    assert not any(m.split(":")[0].endswith(("student", "model")) for m in msgs), msgs


def test_checkpoint_teacher_needs_model_and_file(tmp_path):
    exp = tiny_experiment("s", teachers=[{"checkpoint": "t.pt"}], loss={"kd": {}})
    assert any(
        m.startswith("teachers[0].model:") and "needs `model`" in m for m in problems_of(exp)
    )
    exp["teachers"][0]["model"] = {"depth": 16, "width": 3}
    with pytest.raises(SpecError) as info:
        validate_spec(exp, base_dir=tmp_path)
    assert "no such file" in str(info.value)
    (tmp_path / "t.pt").write_bytes(b"x")
    with pytest.raises(SpecError, match="t.pt is not a PyTorch checkpoint"):
        validate_spec(exp, base_dir=tmp_path)
    with zipfile.ZipFile(tmp_path / "t.pt", "w") as archive:  # torch.save's layout
        archive.writestr("t/data.pkl", b"")
    (tmp_path / "t.json").write_text(json.dumps({"model": {"depth": 16, "width": 1}}))
    with pytest.raises(SpecError) as info:
        validate_spec(exp, base_dir=tmp_path)
    assert "holds WRN16-1(signal)" in str(info.value)


def test_group_key_ignores_seeds_name_and_device_only():
    base = validate_spec(tiny_experiment("a")).experiments[0]
    same = validate_spec(tiny_experiment("b", seeds=[5, 6], device="cpu")).experiments[0]
    other = validate_spec(tiny_experiment("a", epochs=3)).experiments[0]
    assert group_key(base) == group_key(same) != group_key(other)


def test_group_key_is_stable_across_processes():
    code = f"from kdtui.spec import load_spec; print(load_spec({QUICKSTART!r}).group_keys)"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(i)},
        ).stdout
        for i in (1, 2)
    }
    assert len(runs) == 1
    # and pinned: a change to the key's recipe splits every user's existing groups
    assert load_spec(QUICKSTART).group_keys["signal-student"] == "390818b26aa7"


def test_student_group_key_follows_teacher_configuration():
    t = tiny_experiment("t")
    s = tiny_experiment("s", teachers=[{"experiment": "t"}], loss={"kd": {}})
    k1 = validate_spec([t, s]).group_keys["s"]
    renamed = validate_spec([{**t, "name": "t2"}, {**s, "teachers": [{"experiment": "t2"}]}])
    assert renamed.group_keys["s"] == k1
    changed = validate_spec([{**t, "epochs": 5}, s]).group_keys["s"]
    assert changed != k1


def test_json_errors_have_a_location(write_spec, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",\n "epochs": }')
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "line 2" in str(info.value)


def test_group_key_holds_input_files_by_where_they_are(tmp_path):
    """A relative path names the same file as the absolute one a run's frozen spec holds:
    re-validating that frozen spec (more seeds, edit as new) must land in the same group,
    and the same file named from another folder must too."""
    import numpy as np

    (tmp_path / "sub").mkdir()
    y = np.arange(8) % 2
    np.savez(
        tmp_path / "d.npz",
        X_train=np.ones((8, 3, 64)),
        y_train=y,
        X_test=np.ones((8, 3, 64)),
        y_test=y,
    )
    exp = tiny_experiment("s", data={"dataset": "npz", "path": "d.npz"})
    relative = validate_spec(exp, base_dir=tmp_path)
    assert relative.experiments[0].data.path == str((tmp_path / "d.npz").resolve())
    frozen = validate_spec(relative.experiments[0].model_dump(mode="json"), base_dir=Path("/"))
    from_sub = validate_spec(
        {**exp, "data": {**exp["data"], "path": "../d.npz"}}, base_dir=tmp_path / "sub"
    )
    assert relative.group_keys == frozen.group_keys == from_sub.group_keys


def test_a_misspelt_teacher_name_gets_the_close_ones():
    kd = {"loss": {"kd": {}}, "teachers": [{"experiment": "gaf-teachr"}]}
    raw = [tiny_experiment("gaf-teacher"), tiny_experiment("student", **kd)]
    assert problems_of(raw) == [
        "[1].teachers[0].experiment: no experiment named 'gaf-teachr' in this file"
        " (close: gaf-teacher)"
    ]
