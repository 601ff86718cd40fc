"""Widgets the screens share: the Grid (a table for thousands of rows), the Prompt dialog,
the KeyFooter (rebuilt only when its keys change), the TextInput (every text field: its
keys acted on in the order typed), and (in ``kdtui.widgets.form``, imported where it is
used: it brings pydantic) the form built from the spec's pydantic models."""

from kdtui.widgets.footer import KeyFooter
from kdtui.widgets.grid import STATUS_TONE, Column, Grid, Tone, json_view
from kdtui.widgets.prompt import Field, Prompt
from kdtui.widgets.text_input import TextInput

__all__ = [
    "STATUS_TONE",
    "Column",
    "Field",
    "Grid",
    "KeyFooter",
    "Prompt",
    "TextInput",
    "Tone",
    "json_view",
]
