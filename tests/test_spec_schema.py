"""``kdtui schema`` describes the files validate_spec reads: editors check specs against it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_experiment

from kdtui.spec import ModelSpec, json_schema, validate_spec

EXAMPLES = sorted(Path("examples").glob("*.json"))
VIEW_KINDS = {"signal", "gaf", "mtf", "rp", "image"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_examples_exist():
    assert len(EXAMPLES) >= 5


def test_root_takes_every_form_validate_spec_reads():
    """One experiment, a list of them, or {"experiments": [...]}: not one experiment only."""
    schema = json_schema()
    forms = schema["anyOf"]
    experiment = {"$ref": "#/$defs/Experiment"}
    assert experiment in forms
    assert {"type": "array", "items": experiment, "minItems": 1} in forms
    # the object form; a study's (with defaults) is another, tested in test_study.py
    (wrapper,) = [
        f for f in forms if f.get("type") == "object" and "defaults" not in f["properties"]
    ]
    assert wrapper["required"] == ["experiments"]
    assert wrapper["additionalProperties"] is False
    assert wrapper["properties"]["experiments"]["items"] == experiment
    assert "additionalProperties" not in schema  # the root is no experiment itself
    assert schema["$defs"]["Experiment"]["additionalProperties"] is False
    assert {"data", "student"} <= set(schema["$defs"]["Experiment"]["required"])
    # every reference resolves inside the document
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in schema["$defs"]


def test_view_schema_takes_the_shorthand():
    """``"view": "signal"`` (README, examples) is accepted by the validator, so by the schema."""
    view = json_schema()["$defs"]["ModelSpec"]["properties"]["view"]
    (short,) = [f for f in view["anyOf"] if f.get("type") == "string"]
    assert set(short["enum"]) == VIEW_KINDS
    (full,) = [f for f in view["anyOf"] if "oneOf" in f]
    assert set(full["discriminator"]["mapping"]) == VIEW_KINDS
    for kind in short["enum"]:  # and each shorthand does validate
        assert ModelSpec.model_validate({"view": kind}).view.kind == kind


# --------------------------------------------------------------------------- with jsonschema


@pytest.fixture
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_matches_the_schema(validator, path):
    raw = json.loads(path.read_text())
    assert [e.message for e in validator.iter_errors(raw)] == []


def test_each_form_and_shorthand_matches(validator):
    one = tiny_experiment("a", student={"depth": 10, "view": "gaf"})
    for raw in (one, [one, tiny_experiment("b")], {"experiments": [one]}):
        validate_spec(raw)  # what the validator accepts ...
        assert validator.is_valid(raw), raw  # ... the schema accepts


@pytest.mark.parametrize(
    "raw",
    [
        tiny_experiment("a", colour="red"),  # unknown field
        tiny_experiment("a", student={"depth": 10, "view": "sgnal"}),  # unknown view kind
        tiny_experiment("a", student={"depth": 10, "view": {"kind": "gaf", "size": 3}}),
        [tiny_experiment("a", optim={"lr": 0.1, "weight_dacay": 0})],
        tiny_experiment("a", seeds=[0, 0]),  # a seed twice
        tiny_experiment("a", seeds=[]),
        {"experiments": [tiny_experiment("a")], "version": 2},  # unknown top-level field
        {"experiments": []},
        [],
        "a string",
    ],
)
def test_bad_specs_fail_the_schema(validator, raw):
    assert not validator.is_valid(raw)
