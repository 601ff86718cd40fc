"""The JSON Schema of spec files (``kdtui schema``), for editor completion and checking:
plain files from the models, and studies (``defaults``, ``grid``, name templates) on top.

Only ``kdtui schema`` asks for it, so nothing else imports this module: the package
``kdtui.spec`` loads it when ``json_schema`` is first used. Validation never needs it."""

from __future__ import annotations

import copy
from typing import Any

from kdtui.spec.models import Experiment
from kdtui.spec.study import PATH_PATTERN


def json_schema() -> dict[str, Any]:
    """JSON Schema of a spec file, in each form validate_spec reads: one experiment, a list
    of them, or ``{"experiments": [...]}`` (with ``defaults``: a study, see spec.study and study_schema below);
    editors check the files against it, so it must accept every file that validates (the
    checks across fields and files it cannot express)."""
    experiment = Experiment.model_json_schema()
    defs = experiment.pop("$defs", {})
    experiment["title"] = "kdtui experiment"
    defs["Experiment"] = experiment
    ref = {"$ref": "#/$defs/Experiment"}
    several = {"type": "array", "items": ref, "minItems": 1}
    plain = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "kdtui spec",
        "description": 'One experiment, a list of experiments, or {"experiments": [...]}; '
        "each experiment needs a unique `name` when a file holds several.",
        "anyOf": [
            ref,
            several,
            {
                "type": "object",
                "properties": {"experiments": several},
                "required": ["experiments"],
                "additionalProperties": False,
            },
        ],
        "$defs": defs,
    }
    return study_schema(plain)


# --------------------------------------------------------------------------- studies

#: A name with at least one ``{path}`` placeholder (``kd-T{loss.kd.T}``).
TEMPLATE_PATTERN = r"^[A-Za-z0-9._+{}\[\]-]*\{[A-Za-z_][A-Za-z0-9_.\[\]]*\}[A-Za-z0-9._+{}\[\]-]*$"
_GRID_SCHEMA = {
    "type": "object",
    "title": "Grid",
    "description": "Field path (student.depth, loss.kd.T, teachers[0].experiment) → the values "
    "it takes; the experiment expands to every combination, named by its `name` template.",
    "propertyNames": {"pattern": PATH_PATTERN},
    "additionalProperties": {"type": "array", "minItems": 1},
}


def study_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (the plain files' JSON Schema, with an ``Experiment`` definition) made to
    accept studies: name templates, ``grid`` on experiments, and the object form with
    ``defaults``, whose experiments may leave any field to the defaults (so nothing in them
    is required, at any depth)."""
    out = copy.deepcopy(schema)
    defs = out["$defs"]
    template = {
        "type": "string",
        "pattern": TEMPLATE_PATTERN,
        "description": "A name template: {path} takes that field's value, e.g. kd-T{loss.kd.T}.",
    }
    _or(defs["Experiment"]["properties"], "name", template)
    teacher_ref = dict(template, description="A grid experiment by its name template: each.")
    _or(defs["TeacherSpec"]["properties"], "experiment", teacher_ref)
    defs["Experiment"]["properties"]["grid"] = _GRID_SCHEMA
    partial = {f"{name}Partial": _partial(node) for name, node in defs.items()}
    defaults = copy.deepcopy(partial["ExperimentPartial"])
    for key in ("name", "grid"):
        defaults["properties"].pop(key)
    defaults.update(
        title="kdtui defaults",
        description="Fields merged under every experiment of the file (its own values win; "
        "objects merge, lists replace, null switches a default off).",
    )
    defs.update(partial, Defaults=defaults)
    out["anyOf"].append(
        {
            "type": "object",
            "properties": {
                "defaults": {"$ref": "#/$defs/Defaults"},
                "experiments": {
                    "type": "array",
                    "items": {"$ref": "#/$defs/ExperimentPartial"},
                    "minItems": 1,
                },
            },
            "required": ["defaults", "experiments"],
            "additionalProperties": False,
        }
    )
    return out


def _or(properties: dict[str, Any], key: str, option: dict[str, Any]) -> None:
    node = properties[key]
    if "anyOf" in node:
        node["anyOf"].insert(1, option)
    else:
        properties[key] = {"anyOf": [node, option]}


def _partial(node: Any) -> Any:
    """A schema node with nothing required (at any depth), references to the partial
    definitions, and discriminated unions as plain ``anyOf`` (a partial object may match
    several members)."""
    if isinstance(node, list):
        return [_partial(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("required", "discriminator"):
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            out[key] = value + "Partial"
        else:
            out["anyOf" if key == "oneOf" else key] = _partial(value)
    return out
