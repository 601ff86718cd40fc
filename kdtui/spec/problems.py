"""Problems found in a spec, each at the JSON path of the field to change, and the words
that turn pydantic's errors into a researcher's (``experiments[1].loss.kd.T: must be > 0``)."""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from kdtui.spec.models import UNION_TAGS, Experiment


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(Exception):
    """Every problem found in a spec, each with its JSON path."""

    def __init__(self, problems: list[Problem], source: str = "spec"):
        self.problems = problems
        self.source = source
        super().__init__(
            f"{source}: {len(problems)} problem{'s' * (len(problems) != 1)}\n"
            + "\n".join(map(str, problems))
        )


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation holds, through unions, lists and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models_in(arg)


@functools.cache
def all_field_names() -> frozenset[str]:
    """Every field name of every model an experiment holds, for "did you mean" hints."""
    names: set[str] = set()
    todo: list[type[BaseModel]] = [Experiment]
    seen: set[type[BaseModel]] = set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(name)
            todo.extend(_models_in(info.annotation))
    return frozenset(names)


def json_path(prefix: str, loc: Iterable[str | int]) -> str:
    """``prefix`` + a pydantic location as the user reads it: ``experiments[1].loss.kd.T``."""
    parts: list[str | int] = []
    loc = list(loc)
    for i, item in enumerate(loc):
        # pydantic puts a discriminated union's tag into the location; users never wrote it.
        if i and isinstance(item, str) and item in UNION_TAGS.get(str(loc[i - 1]), ()):
            continue
        parts.append(item)
    out = prefix
    for item in parts:
        out += f"[{item}]" if isinstance(item, int) else (f".{item}" if out else item)
    return out


def message(err: dict[str, Any]) -> str:
    """One pydantic error in words (bounds with the value given, close names for typos)."""
    kind, ctx = err["type"], err.get("ctx", {})
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}.get(kind, "<=")
        bound = next(iter(ctx.values()))
        return f"must be {op} {bound} (got {err['input']!r})"
    if kind == "extra_forbidden":
        field = str(err["loc"][-1])
        close = difflib.get_close_matches(field, all_field_names(), n=1)
        return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return "required field is missing"
    if kind == "finite_number":
        value = _as_json(err["input"])
        beyond = " (a number beyond ±1.8e308 reads as Infinity)" if "Infinity" in value else ""
        return f"must be a finite number, not {value}{beyond}"
    if kind == "int_type":  # strict integers (seeds): a string or a boolean is no seed
        return f"must be a whole number, not {_as_json(err['input'])}"
    if kind == "union_tag_invalid":
        what = str(ctx.get("discriminator", "kind")).strip("'")
        return f"unknown {what} {ctx.get('tag')!r} (expected one of {ctx.get('expected_tags')})"
    if (
        kind == "string_pattern_mismatch"
        and err["loc"]
        and err["loc"][-1] in ("name", "experiment")
    ):
        return (
            f"{err['input']!r} is not a valid name: a letter or digit first, then letters,"
            " digits and . _ + - (80 at most)"
        )
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def _as_json(value: Any) -> str:
    """A value as the spec file writes it (true, "0", Infinity), short."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def problems_from(exc: ValidationError, prefix: str) -> list[Problem]:
    """Every error of a pydantic validation, at its path under ``prefix``."""
    return [Problem(json_path(prefix, e["loc"]), message(e)) for e in exc.errors()]
