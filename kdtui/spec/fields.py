"""Building blocks shared by every spec model: the strict base, names, seeds, and the error
that a model validator raises at one field's location."""

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

Seed = Annotated[int, Field(ge=0)]


class Strict(BaseModel):
    """Unknown fields are errors: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


def field_error(model: type[BaseModel], field: str, message: str, value: Any) -> ValidationError:
    """An error for a model validator to raise at one field's location: a check that needs
    several fields is still reported at the field the user has to change, e.g.
    ``student.dim``, not at ``student``. (pydantic prefixes the location of an error raised
    as a ValidationError inside a validator; a plain ValueError stays at the model.)"""
    details = InitErrorDetails(
        type=PydanticCustomError("value_error", message), loc=(field,), input=value
    )
    return ValidationError.from_exception_data(model.__name__, [details])
