"""Spec fields of the method zoo: loss terms, augmentation, image data; errors with JSON paths."""

from __future__ import annotations

import json
import zipfile

import pytest
from conftest import run_cli, tiny_experiment

from kdtui.spec import SpecError, load_spec, validate_spec


def problems_of(raw, **kw) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        validate_spec(raw, **kw)
    return {p.path: p.message for p in info.value.problems}


def pair(**student_over):
    """A GAF teacher and a signal student that learns from it."""
    teacher = tiny_experiment(
        "t", student={"depth": 10, "width": 2, "view": {"kind": "gaf", "image_size": 16}}
    )
    student = tiny_experiment("s", teachers=[{"experiment": "t"}], **student_over)
    return [teacher, student]


def test_terms_have_literature_defaults():
    loss = validate_spec(pair(loss={"at": {}, "sp": {}, "amd": {}, "dask": {}, "amc": {}}))
    spec = loss.by_name("s").loss
    assert (spec.at.weight, spec.at.p, spec.at.groups) == (1000, 2, [0, 1, 2])
    assert (spec.sp.weight, spec.sp.groups) == (3000, [2])
    assert (spec.amd.margin, spec.amd.scale, spec.amd.local, spec.amd.groups) == (
        1.35,
        64,
        False,
        [0, 1, 2],
    )
    assert (spec.dask.weight, spec.dask.w_distance, spec.dask.w_angle, spec.dask.w_semantic) == (
        25,
        1,
        2,
        1,
    )
    assert (spec.amc.weight, spec.amc.margin) == (0.1, 0.5)
    assert spec.teacher_terms() == ["at", "sp", "amd", "dask"]
    assert spec.terms() == ["at", "sp", "amd", "dask", "amc"]
    assert spec.label() == (
        "CE+AT(p=2,w=1000,g=0,1,2)+SP(w=3000,g=2)+AMD-g(m=1.35,s=64,w=1000,g=0,1,2)"
        "+DASK(d=1,a=2,s=1,w=25)+AMC(m=0.5,w=0.1)"
    )


def test_field_problems_come_all_at_once_with_paths():
    got = problems_of(
        pair(
            loss={
                "at": {"p": 0, "groups": []},
                "sp": {"groups": [1, 1]},
                "amd": {"margin": -1, "locale": True},
                "dask": {"w_angle": -2},
                "amc": {"margin": 0},
            },
            augment={"mixup": {"alpha": 0}, "cutmix": {"prob": 2}},
        )
    )
    assert got["[1].loss.at.p"].startswith("must be > 0")
    assert "at least 1 item" in got["[1].loss.at.groups"]
    assert got["[1].loss.sp.groups"] == "groups must not repeat"
    assert got["[1].loss.amd.margin"].startswith("must be > 0")
    assert got["[1].loss.amd.locale"] == "unknown field (did you mean 'local'?)"
    assert got["[1].loss.dask.w_angle"].startswith("must be >= 0")
    assert got["[1].loss.amc.margin"].startswith("must be > 0")
    assert got["[1].augment.mixup.alpha"].startswith("must be > 0")
    assert got["[1].augment.cutmix.prob"].startswith("must be <= 1")


def test_augment_takes_exactly_one_method():
    for augment in ({}, {"mixup": {}, "cutmix": {}}):
        got = problems_of(tiny_experiment("x", augment=augment))
        assert got == {"augment": "give exactly one of `mixup` or `cutmix`"}
    exp = validate_spec(tiny_experiment("x", augment={"cutmix": {"prob": 0.5}})).experiments[0]
    assert exp.loss_label() == "CE · cutmix(α=1,p=0.5)"


def test_groups_out_of_range_name_both_models():
    got = problems_of(pair(loss={"at": {"groups": [0, 3]}}))
    assert got == {
        "[1].loss.at.groups[1]": "group 3 is not in both models: student WRN10-1(signal) has "
        "groups 0..2, teacher WRN10-2(gaf) has 0..2"
    }


def test_local_amd_on_maps_too_small_names_both_models():
    teacher, student = pair(loss={"amd": {"local": True, "groups": [1, 2]}})
    teacher["student"]["view"]["image_size"] = 4  # groups of 4×4, 2×2, 1×1
    got = problems_of([teacher, student])
    assert list(got) == ["[1].loss.amd.local"]
    assert "group 2" in got["[1].loss.amd.local"]
    assert (
        "student WRN10-1(signal) (16) and teacher WRN10-2(gaf) (1×1) align to 1"
        in got["[1].loss.amd.local"]
    )
    student["loss"]["amd"]["groups"] = [1]  # 32 vs 2×2 aligns to length 4: four segments
    validate_spec([teacher, student])


def test_teacher_and_student_side_terms():
    assert problems_of(tiny_experiment("x", loss={"sp": {}})) == {
        "loss": "sp needs at least one teacher"
    }
    amc_only = validate_spec(tiny_experiment("x", loss={"ce": 0, "amc": {}}))  # no teacher needed
    assert amc_only.experiments[0].loss.label() == "AMC(m=0.5,w=0.1)"
    got = problems_of(pair(loss={"amc": {}}))
    assert "no loss term uses them" in got["[1].teachers"]


def test_image_view_and_image_data_go_together(tmp_path):
    (tmp_path / "c").mkdir()
    got = problems_of(tiny_experiment("x", student={"view": "image"}), base_dir=tmp_path)
    assert got == {
        "student.view": 'WRN16-1(image): the "image" view needs an image dataset (cifar10, '
        "image-folder), and synthetic-har holds signals"
    }
    exp = tiny_experiment(
        "x",
        data={"dataset": "cifar10", "path": "c"},
        student={"view": "image"},
        teachers=[{"checkpoint": "t.pt", "model": {"view": {"kind": "mtf", "image_size": 8}}}],
        loss={"kd": {}},
    )
    with zipfile.ZipFile(tmp_path / "t.pt", "w") as archive:  # torch.save's layout
        archive.writestr("t/data.pkl", b"")
    got = problems_of(exp, base_dir=tmp_path)
    assert got == {
        "teachers[0].model.view": 'cifar10 holds images: WRN16-1(mtf) must read them with the "image" view'
    }


def test_mtf_and_rp_views_are_in_the_spec():
    for view in (
        {"kind": "mtf", "image_size": 16, "n_bins": 4},
        {"kind": "rp", "image_size": 16},
        "mtf",
        "rp",
    ):
        exp = validate_spec(tiny_experiment("x", student={"depth": 10, "width": 1, "view": view}))
        assert exp.experiments[0].student.dim == 2


def test_new_fields_enter_the_group_key_only_when_set():
    base = validate_spec(tiny_experiment("a")).group_keys["a"]
    explicit_none = validate_spec(
        tiny_experiment("a", loss={"ce": 1, "at": None, "amc": None}, augment=None)
    ).group_keys["a"]
    assert explicit_none == base
    assert validate_spec(tiny_experiment("a", loss={"amc": {}})).group_keys["a"] != base
    assert validate_spec(tiny_experiment("a", augment={"mixup": {}})).group_keys["a"] != base


def test_teacher_weights_show_in_the_label():
    teacher, student = pair(loss={"kd": {}})
    other = tiny_experiment("u")
    student["teachers"] = [{"experiment": "t", "weight": 0.7}, {"experiment": "u", "weight": 0.3}]
    spec = validate_spec([teacher, other, student])
    assert spec.by_name("s").label() == "0.7·WRN10-2(gaf) + 0.3·WRN10-1(signal) → WRN10-1(signal)"


def test_examples_validate_and_schema_lists_the_new_fields(workspace):
    from pathlib import Path

    for path in sorted(Path("examples").glob("*.json")):
        if "cifar10" in path.name:
            got = problems_of(json.loads(path.read_text()), base_dir=path.parent)
            assert all("no such folder" in m for m in got.values()), got
        else:
            load_spec(path)
    schema = json.loads(run_cli("schema", workspace=workspace).stdout)
    loss = schema["$defs"]["LossSpec"]["properties"]
    assert {"kd", "at", "sp", "amd", "dask", "amc"} <= set(loss)
    assert "augment" in schema["$defs"]["Experiment"]["properties"]
