"""Widgets the screens share: the Grid (a table for thousands of rows), the Prompt dialog,
the KeyFooter (rebuilt only when its keys change), and (in ``kdtui.widgets.form``, imported
where it is used: it brings pydantic) the form built from the spec's pydantic models."""

from kdtui.widgets.footer import KeyFooter
from kdtui.widgets.grid import STATUS_TONE, Column, Grid, Tone, json_view
from kdtui.widgets.prompt import Field, Prompt

__all__ = ["STATUS_TONE", "Column", "Field", "Grid", "KeyFooter", "Prompt", "Tone", "json_view"]
