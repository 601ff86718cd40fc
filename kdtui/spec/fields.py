"""Building blocks shared by every spec model: the strict base, names, seeds, and the error
that a model validator raises at one field's location.

Every float of a spec must be finite: ``Infinity``, ``NaN`` or ``1e309`` (which JSON reads as
infinity) as a learning rate or a loss weight would only make a run diverge hours later. The
base class refuses them once, for every float field of every model (``allow_inf_nan``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$"
Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="Letters, digits and . _ + - (no slashes): used in run folder names.",
    ),
]

#: The largest seed: the seeds of numpy's legacy RandomState and of many tools are 32-bit.
MAX_SEED = 2**32 - 1
Seed = Annotated[
    int,
    # strict: "0" or true in a seed list is a slip, not a seed, and is said rather than coerced
    Field(ge=0, le=MAX_SEED, strict=True),
]


class Strict(BaseModel):
    """Unknown fields are errors (a typo must not be silently ignored); floats are finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def field_error(model: type[BaseModel], field: str, message: str, value: Any) -> ValidationError:
    """An error for a model validator to raise at one field's location: a check that needs
    several fields is still reported at the field the user has to change, e.g.
    ``student.dim``, not at ``student``. (pydantic prefixes the location of an error raised
    as a ValidationError inside a validator; a plain ValueError stays at the model.)"""
    details = InitErrorDetails(
        type=PydanticCustomError("value_error", message), loc=(field,), input=value
    )
    return ValidationError.from_exception_data(model.__name__, [details])
