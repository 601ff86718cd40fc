"""Studies: defaults merged under experiments, grids expanded to their products, templated
names, and every problem at its place in the file as written."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_experiment

from kdtui.spec import SpecError, json_schema, load_spec, validate_spec
from kdtui.spec.study import expand, is_study, merge, name_value, parse_path

STUDY = Path("examples/study.json")


def tiny(name: str | None = None, /, **over: Any) -> dict[str, Any]:
    """An experiment with only what a study's experiment writes: the rest is in defaults."""
    exp = {"name": name, **over}
    return {k: v for k, v in exp.items() if v is not None}


DEFAULTS = {k: v for k, v in tiny_experiment("x").items() if k != "name"}


def study(*experiments: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    return copy.deepcopy({"defaults": {**DEFAULTS, **defaults}, "experiments": list(experiments)})


def problems(raw: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        validate_spec(raw)
    return [str(p) for p in info.value.problems]


def names(raw: Any) -> list[str]:
    return [str(e.name) for e in validate_spec(raw).experiments]


# --------------------------------------------------------------------------- products


def test_a_grid_expands_to_its_product_first_axis_outermost():
    exp = tiny(
        "s{student.depth}-w{student.width}",
        grid={"student.depth": [10, 16], "student.width": [1, 2]},
    )
    loaded = validate_spec(study(exp, seeds=[0, 1, 2]))
    assert [e.name for e in loaded.experiments] == ["s10-w1", "s10-w2", "s16-w1", "s16-w2"]
    assert [(e.student.depth, e.student.width) for e in loaded.experiments] == [
        (10, 1), (10, 2), (16, 1), (16, 2),
    ]  # fmt: skip
    assert all(e.seeds == [0, 1, 2] for e in loaded.experiments)
    assert len(set(loaded.group_keys.values())) == 4


def test_a_grid_works_in_every_form_of_file():
    one = tiny_experiment("s{student.depth}", grid={"student.depth": [10, 16]})
    assert names(one) == ["s10", "s16"]
    assert names([one, tiny_experiment("b")]) == ["s10", "s16", "b"]
    assert names({"experiments": [one]}) == ["s10", "s16"]
    # one combination of a lone experiment stays lone: the file's stem still names it
    del one["name"]
    one["grid"] = {"student.depth": [16]}
    assert [e.name for e in validate_spec(one, default_name="mine").experiments] == ["mine"]


def test_a_file_without_defaults_or_grids_is_read_as_before():
    raw = [tiny_experiment("a", epochs=0), tiny_experiment("b")]
    assert not is_study(raw)
    assert problems(raw) == ["[0].epochs: must be >= 1 (got 0)"]


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("value", "shown"),
    [(4, "4"), (4.0, "4"), (0.7, "0.7"), (1e-05, "1e-05"), (True, "true"), ("gaf", "gaf")],
)
def test_values_read_in_names_as_written(value, shown):
    assert name_value(value) == shown


def test_placeholders_take_grid_own_and_default_values():
    exp = tiny(
        "kd-{teachers[0].experiment}-T{loss.kd.T}-e{epochs}-{data.dataset}",
        teachers=[{"experiment": "t"}],
        loss={"ce": 0.3, "kd": {"weight": 0.7}},
        grid={"teachers[0].experiment": ["t"], "loss.kd.T": [2, 4.0]},
    )
    got = names(study(tiny("t"), exp))
    assert got == ["t", "kd-t-T2-e2-synthetic-har", "kd-t-T4-e2-synthetic-har"]


def test_a_placeholder_that_names_nothing_is_said_at_the_name():
    exp = tiny("s{loss.kd.T}", grid={"student.depth": [10, 16]})
    assert problems(study(exp)) == [
        "experiments[0].name: {loss.kd.T}: not set in this experiment (a placeholder names "
        "a field written in the experiment, its grid or the defaults)"
    ]
    exp = tiny("s{student}", grid={"student.depth": [10, 16]})
    assert problems(study(exp)) == [
        "experiments[0].name: {student} is an object: name a field inside it, e.g. {student.depth}"
    ]
    assert problems(study(tiny("s{epochs"))) == [
        "experiments[0].name: a brace without its pair: write placeholders as {field.path}"
    ]


def test_names_that_repeat_inside_a_grid_are_said_at_the_grid():
    exp = tiny("kd-{student.depth}", grid={"student.depth": [10, 16], "student.width": [1, 2]})
    assert problems(study(exp)) == [
        "experiments[0].grid: 'kd-10' comes out of more than one combination; put the varying "
        "field in the name, e.g. {student.width}",
        "experiments[0].grid: 'kd-16' comes out of more than one combination; put the varying "
        "field in the name, e.g. {student.width}",
    ]


def test_names_that_repeat_across_experiments_are_said_where_they_come_from():
    grid = tiny("s{student.depth}", grid={"student.depth": [10, 16]})
    assert problems(study(tiny("s16"), grid)) == [
        "experiments[1].grid: 's16' is also the name of experiments[0]"
    ]
    assert problems(study(grid, tiny("s16"))) == [
        "experiments[1].name: 's16' is also the name of experiments[0]"
    ]


def test_a_grid_without_a_name_template_is_refused():
    assert problems(study(tiny(grid={"student.depth": [10, 16]}))) == [
        'experiments[0].name: a grid needs a name template, e.g. "exp-{student.depth}"'
    ]


# --------------------------------------------------------------------------- problems


def test_a_bad_grid_value_is_said_at_the_value():
    exp = tiny("kd-T{loss.kd.T}", teachers=[{"experiment": "t"}], grid={"loss.kd.T": [4, -1]})
    raw = study(tiny("t", loss={"kd": None}), exp, loss={"ce": 0.3, "kd": {}})
    assert problems(raw) == ['experiments[1].grid["loss.kd.T"][1]: must be > 0.0 (got -1)']


def test_an_object_value_varies_its_fields_together_and_keeps_the_rest():
    exp = tiny("s{student.depth}-{student.width}", grid={"student": [{"depth": 16, "width": 3}, {"depth": 28}]})  # fmt: skip
    loaded = validate_spec(study(exp))
    assert [e.student.label() for e in loaded.experiments] == ["WRN16-3(signal)", "WRN28-1(signal)"]


def test_a_problem_inside_an_object_value_is_said_inside_it():
    exp = tiny("s{student.width}", grid={"student": [{"depth": 10}, {"depth": 11, "width": 2}]})
    raw = study(exp)
    assert problems(raw) == [
        'experiments[0].grid["student"][1].depth: 11 is not 6n+4 (e.g. 10, 16, 22, 28, 40)'
    ]
    # a field the value does not name is said where it is written
    raw["defaults"]["student"]["dropout"] = 2
    assert problems(raw) == [
        "defaults.student.dropout: must be < 1.0 (got 2)",
        'experiments[0].grid["student"][1].depth: 11 is not 6n+4 (e.g. 10, 16, 22, 28, 40)',
    ]


def test_a_bad_default_is_said_once_at_the_defaults():
    grid = tiny("s{student.depth}", grid={"student.depth": [10, 16]})
    assert problems(study(grid, tiny("b"), epochs=0, batch_sise=3)) == [
        "defaults.epochs: must be >= 1 (got 0)",
        "defaults.batch_sise: unknown field (did you mean 'batch_size'?)",
    ]


def test_an_experiments_own_value_is_said_at_the_experiment():
    grid = tiny("s{student.width}", student={"depth": 11}, grid={"student.width": [1, 2]})
    assert problems(study(tiny("b"), grid)) == [
        "experiments[1].student.depth: 11 is not 6n+4 (e.g. 10, 16, 22, 28, 40)"
    ]


def test_a_default_that_fails_only_some_experiments_names_them():
    """KD in the defaults needs a teacher: the experiment without one is named."""
    student = tiny("kd-{teachers[0].experiment}", grid={"teachers[0].experiment": ["t1", "t2"]})
    raw = study(tiny("t1", loss={"kd": None}), tiny("t2", loss={"kd": None}), student, tiny("b"))
    raw["defaults"]["loss"] = {"ce": 0.3, "kd": {"T": 4}}
    assert problems(raw) == ["defaults.loss: kd needs at least one teacher (in 'b')"]


def test_grid_paths_that_cannot_be_set_are_said_at_the_key():
    exp = tiny(
        "s{student.depth}",
        grid={
            "student.depth": [10, 16, 10],
            "loss.kd.TT": [1],
            "teachers[2].pick": ["best"],
            "9lives": [1],
            "seeds": [[0], [1]],
            "optim": {"lr": 0.1},
            "student": [{}],
        },
    )
    assert problems(study(exp)) == [
        'experiments[0].grid["student.depth"][2]: repeats the value at [0]',
        'experiments[0].grid["9lives"]: not a field path (e.g. loss.kd.T or teachers[0].experiment)',
        'experiments[0].grid["seeds"]: a grid cannot vary seeds: seeds are a list already: every seed runs',
        'experiments[0].grid["optim"]: must be a non-empty list of values',
        "experiments[0].grid[\"student\"]: overlaps the axis 'student.depth'",
        'experiments[0].grid["teachers[2].pick"]: teachers has 0 item(s) here: teachers[2] '
        "would leave a gap",
        "experiments[0].grid[\"loss.kd.TT\"]: unknown field (did you mean 'T'?)",
    ]


def test_defaults_cannot_name_or_grid():
    raw = study(tiny("a"), name="x", grid={"epochs": [1]})
    assert problems(raw) == [
        "defaults.name: each experiment names itself",
        "defaults.grid: a grid belongs to an experiment",
    ]
    assert problems({"defaults": [1], "experiments": [tiny_experiment("a")]}) == [
        "defaults: must be an object of experiment fields"
    ]
    assert problems({"defaults": {}, "experiments": "all"}) == [
        "experiments: Input should be a valid list"
    ]
    assert problems({"defaults": {}, "experiments": [tiny_experiment("a")], "version": 2}) == [
        "version: unknown field"
    ]


def test_a_product_too_large_is_refused_before_it_is_built():
    exp = tiny("s{epochs}-{batch_size}", grid={"epochs": list(range(1, 202)), "batch_size": list(range(2, 102))})  # fmt: skip
    assert problems(study(exp)) == [
        "experiments[0].grid: 20100 combinations; at most 10000 in a file"
    ]


# --------------------------------------------------------------------------- defaults


def test_merge_own_wins_objects_merge_lists_replace_null_removes_kinds_replace():
    default = {
        "optim": {"lr": 0.1, "momentum": 0.9},
        "seeds": [0, 1, 2],
        "loss": {"ce": 0.3, "kd": {"T": 4}},
        "schedule": {"kind": "cosine", "min_lr": 0.001},
    }
    own = {
        "optim": {"lr": 0.05},
        "seeds": [7],
        "loss": {"kd": None},
        "schedule": {"kind": "step", "milestones": [1]},
    }
    assert merge(default, own) == {
        "optim": {"lr": 0.05, "momentum": 0.9},
        "seeds": [7],
        "loss": {"ce": 0.3, "kd": None},
        "schedule": {"kind": "step", "milestones": [1]},
    }
    assert default["optim"] == {"lr": 0.1, "momentum": 0.9}  # nothing shared or changed


def test_defaults_precedence_in_a_validated_study():
    raw = study(
        tiny("a"),
        tiny("b", epochs=3, optim={"momentum": 0.5}, schedule={"kind": "step", "milestones": [1]}),
        tiny("c{epochs}", epochs=3, grid={"epochs": [4]}),  # the grid wins over its own value
        optim={"lr": 0.2, "momentum": 0.8},
    )
    a, b, c = validate_spec(raw).experiments
    assert (a.epochs, a.optim.lr, a.optim.momentum, a.schedule.kind) == (2, 0.2, 0.8, "cosine")
    assert (b.epochs, b.optim.lr, b.optim.momentum, b.schedule.kind) == (3, 0.2, 0.5, "step")
    assert (c.name, c.epochs) == ("c4", 4)


def test_a_study_has_the_group_keys_of_the_same_experiments_written_out():
    """Defaults and grids are a way of writing: the groups are those of the long form."""
    short = validate_spec(study(tiny("s{student.depth}", grid={"student.depth": [10, 16]})))
    long = validate_spec(
        [
            tiny_experiment("s10"),
            tiny_experiment("s16", student={"depth": 16, "width": 1, "view": "signal"}),
        ]  # fmt: skip
    )
    assert short.group_keys == long.group_keys


# --------------------------------------------------------------------------- teachers


def test_students_grid_over_the_teachers_of_the_same_file():
    teachers = tiny("t{student.depth}", loss={"kd": None}, grid={"student.depth": [10, 16]})
    student = tiny(
        "kd-{teachers[0].experiment}",
        loss={"ce": 0.3, "kd": {"T": 4}},
        grid={"teachers[0].experiment": ["t10", "t16"]},
    )
    loaded = validate_spec(study(teachers, student))
    kd = loaded.experiments[2:]
    assert [(e.name, e.teachers[0].experiment) for e in kd] == [
        ("kd-t10", "t10"),
        ("kd-t16", "t16"),
    ]
    assert [e.teachers[0].model.depth for e in kd] == [10, 16]


def test_a_teacher_naming_a_grid_by_its_template_means_each_of_its_experiments():
    teachers = tiny("t{student.depth}", grid={"student.depth": [10, 16]})
    student = tiny(
        "kd-{teachers[0].experiment}",
        teachers=[{"experiment": "t{student.depth}"}],
        loss={"ce": 0.3, "kd": {"T": 4}},
    )
    # the student comes before its teachers in the file: order does not matter
    loaded = validate_spec(study(student, teachers))
    assert [e.name for e in loaded.experiments] == ["kd-t10", "kd-t16", "t10", "t16"]
    assert [e.teachers[0].experiment for e in loaded.experiments[:2]] == ["t10", "t16"]
    # a problem of the reference is said where the reference is written
    student["teachers"][0]["pick"] = "worst"
    assert problems(study(student, teachers)) == [
        "experiments[0].teachers[0].pick: Input should be 'same-seed' or 'best'"
    ]


# --------------------------------------------------------------------------- schema


@pytest.fixture
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_the_schema_takes_studies(validator):
    raw = json.loads(STUDY.read_text())
    assert [e.message for e in validator.iter_errors(raw)] == []
    template = study(
        tiny("t{student.depth}", grid={"student.depth": [10, 16]}),
        tiny("kd", teachers=[{"experiment": "t{student.depth}"}], data={"channels": [0]}),
    )
    assert validator.is_valid(template)


@pytest.mark.parametrize(
    "raw",
    [
        study(tiny("a"), epocs=3),  # unknown default
        study(tiny("a", grid={"loss.kd.T": 4})),  # a grid value that is no list
        study(tiny("a", grid={"loss..T": [4]})),  # no field path
        study(tiny("a", colour="red")),
        {"defaults": {}, "experiments": [], "version": 2},
    ],
)
def test_the_schema_refuses_bad_studies(validator, raw):
    assert not validator.is_valid(raw)


# --------------------------------------------------------------------------- the example


def test_the_study_example_is_short_and_expands_to_the_labs_study():
    assert len(STUDY.read_text().splitlines()) <= 40
    loaded = load_spec(STUDY)
    by_name = {e.name: e for e in loaded.experiments}
    gaf = [f"gaf-WRN{d}-{w}" for d in (16, 28) for w in (1, 3)]
    kd = [f"kd-{t}" for t in gaf]
    assert list(by_name) == [*gaf, "signal-WRN16-3", "signal-WRN16-1", *kd, "kd-two-teachers"]
    assert all(e.seeds == [0, 1, 2] for e in loaded.experiments)
    assert sum(len(e.seeds) for e in loaded.experiments) == 33
    for name in gaf:
        assert by_name[name].student.view.kind == "gaf" and not by_name[name].teachers
        assert by_name[name].student.label() == name.removeprefix("gaf-") + "(gaf)"
    assert not by_name["signal-WRN16-1"].teachers  # the baseline
    for name, teacher in zip(kd, gaf, strict=True):
        exp = by_name[name]
        assert exp.label() == f"{teacher.removeprefix('gaf-')}(gaf) → WRN16-1(signal)"
        assert exp.loss.kd is not None and exp.loss.kd.T == 4 and exp.loss.kd.weight == 0.7
    two = by_name["kd-two-teachers"]
    assert two.label() == "0.7·WRN16-3(gaf) + 0.3·WRN16-3(signal) → WRN16-1(signal)"
    students = [by_name[n] for n in [*kd, "kd-two-teachers", "signal-WRN16-1"]]
    assert {(e.student.label(), e.data.dataset) for e in students} == {
        ("WRN16-1(signal)", "synthetic-har")
    }
    assert all(e.data.val is not None for e in loaded.experiments)  # best chosen on validation


def test_parse_path():
    assert parse_path("teachers[0].model.depth") == ("teachers", 0, "model", "depth")
    assert parse_path("loss.kd.T") == ("loss", "kd", "T")
    assert parse_path("a..b") is None and parse_path("a[x]") is None
    assert parse_path("epochs\n") is None


def test_expansion_remembers_where_each_experiment_was_written():
    raw = study(tiny("a"), tiny("s{student.depth}", grid={"student.depth": [10, 16]}))
    assert expand(raw).counts == (2, 3)
