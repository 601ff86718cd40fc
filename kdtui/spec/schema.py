"""The JSON Schema of spec files (``kdtui schema``), for editor completion and checking."""

from __future__ import annotations

from typing import Any

from kdtui.spec.models import Experiment
from kdtui.spec.study import study_schema


def json_schema() -> dict[str, Any]:
    """JSON Schema of a spec file, in each form validate_spec reads: one experiment, a list
    of them, or ``{"experiments": [...]}`` (with ``defaults``: a study, see spec.study);
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
