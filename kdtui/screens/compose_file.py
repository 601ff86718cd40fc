"""The spec file the composer edits, as written: its experiments (grids and name templates
kept), its ``defaults``, and the shape it was written in, so that saving writes the same
compact file back (nothing expanded, nothing added). Pure logic, no widgets: the composer
asks it which entry a problem belongs to, how the file counts once expanded, and which
names are still free.

Entries are numbered as in the list beside the form: ``DEFAULTS`` (-1) is the file's
``defaults``, 0.. its experiments.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kdtui.spec import Experiment, Problem, study

DEFAULTS = -1  # the defaults entry, first in the list
Shape = Literal["single", "list", "object"]
_TEACHER_REF = re.compile(r"^teachers\[\d+\]\.experiment$")
_ITEM = re.compile(r"^\[(\d+)\]")


def default_seeds() -> list[int]:
    """The seeds an experiment runs when neither it nor the defaults name any."""
    factory = Experiment.model_fields["seeds"].default_factory
    return list(factory()) if factory else [0]  # type: ignore[call-arg]


@dataclass
class Counts:
    """A file as it expands: written experiments, configurations (expanded experiments),
    runs, and each written experiment's configurations by name."""

    written: int
    configurations: int
    runs: int
    names: dict[int, list[str]] = field(default_factory=dict)
    runs_of: dict[int, int] = field(default_factory=dict)

    def text(self) -> str:
        """``5 experiments → 11 configurations, 33 runs``."""
        exp = f"{self.written} experiment{'s' * (self.written != 1)}"
        conf = f"{self.configurations} configuration{'s' * (self.configurations != 1)}"
        return f"{exp} → {conf}, {self.runs} run{'s' * (self.runs != 1)}"


def counts(raw: Any, written: int) -> Counts:
    """How ``raw`` (a file's JSON) expands. Experiments the expansion cannot build (a
    name that collides, a broken grid) are not counted; the problems say why."""
    expansion = study.expand(raw)
    items = expansion.raw
    if isinstance(items, dict) and "experiments" in items:
        items = items["experiments"]
    if not isinstance(items, list):
        items = [items]
    out = Counts(written, len(expansion.origins), 0)
    for exp, origin in zip(items, expansion.origins, strict=False):
        seeds = exp.get("seeds") if isinstance(exp, dict) else None
        n = len(seeds) if isinstance(seeds, list) else len(default_seeds())
        out.runs += n
        out.runs_of[origin.item] = out.runs_of.get(origin.item, 0) + n
        out.names.setdefault(origin.item, []).append(origin.name or "?")
    return out


def fresh_name(base: str, taken: set[str]) -> str:
    """``base`` when no one uses it, else ``base-v2``, ``base-v3``, ... (``kd-v2`` goes on
    to ``kd-v3``): a copy never takes a name that already names an experiment or a group.
    A bare number is no version: ``gaf-WRN16-1`` is WRN16-1, and its copy ``gaf-WRN16-1-v2``
    (``gaf-WRN16-2`` would read as another width)."""
    if base not in taken:
        return base
    stem, n = base, 2
    if m := re.fullmatch(r"(.+)-v(\d+)", base):
        stem, n = m.group(1), int(m.group(2)) + 1
    while f"{stem}-v{n}" in taken:
        n += 1
    return f"{stem}-v{n}"


@dataclass
class SpecDoc:
    """A spec file being edited. ``experiments`` and ``defaults`` hold what was written;
    the form of the selected entry is the newer value of that entry until the composer
    stores it back (``with_entry``)."""

    experiments: list[dict[str, Any]]
    defaults: dict[str, Any] = field(default_factory=dict)
    shape: Shape = "single"
    top: dict[str, Any] = field(default_factory=dict)  # the object form's keys, in order
    path: Path | None = None  # the file it was loaded from or saved to

    @classmethod
    def from_raw(cls, raw: Any, path: Path | None = None) -> SpecDoc:
        """A file's JSON, in any of its three forms. Raises ValueError, in words, for what
        the composer cannot show as a list of experiments."""
        if isinstance(raw, dict) and ("experiments" in raw or "defaults" in raw):
            items, shape, top = raw.get("experiments", []), "object", dict(raw)
        elif isinstance(raw, list):
            items, shape, top = raw, "list", {}
        elif isinstance(raw, dict):
            items, shape, top = [raw], "single", {}
        else:
            raise ValueError("not a spec: expected an experiment object or a list of them")
        where = "experiments" if shape == "object" else ""
        if not isinstance(items, list):
            raise ValueError(f"{where or 'the file'}: must be a list of experiments")
        if not items:
            raise ValueError(f"{where or 'the file'}: no experiment in it")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ValueError(f"{where}[{i}]: not an experiment object (fix it in an editor)")
        defaults = top.get("defaults", {})
        if not isinstance(defaults, dict):
            raise ValueError("defaults: must be an object of experiment fields")
        return cls(copy.deepcopy(items), copy.deepcopy(defaults), shape, top, path)

    # ------------------------------------------------------------------ the file

    def layout(self, n: int | None = None, defaults: dict[str, Any] | None = None) -> Shape:
        """The shape the file is written in now: a lone experiment or a list grows into the
        object form once it has defaults (and a lone one once it has company)."""
        n = len(self.experiments) if n is None else n
        defaults = self.defaults if defaults is None else defaults
        if defaults or self.shape == "object":
            return "object"
        if self.shape == "single" and n == 1:
            return "single"
        return "list"

    def value(self, entry: int | None = None, entry_value: Any = None) -> Any:
        """The file as it is written (compact: defaults and grids kept), with ``entry``'s
        value replaced by ``entry_value`` (the form's, not stored back yet)."""
        experiments, defaults = self.experiments, self.defaults
        if entry == DEFAULTS:
            defaults = entry_value
        elif entry is not None:
            experiments = [*experiments[:entry], entry_value, *experiments[entry + 1 :]]
        shape = self.layout(len(experiments), defaults)
        if shape == "single":
            return experiments[0]
        if shape == "list":
            return experiments
        out: dict[str, Any] = {}
        if defaults and "defaults" not in self.top:
            out["defaults"] = defaults
        for key, value in self.top.items():
            if key == "defaults":
                if defaults:
                    out[key] = defaults
            else:
                out[key] = experiments if key == "experiments" else value
        out.setdefault("experiments", experiments)
        return out

    def store(self, entry: int, value: dict[str, Any]) -> None:
        """Keep the form's value of ``entry`` (before the form shows another entry)."""
        if entry == DEFAULTS:
            self.defaults = value
        else:
            self.experiments[entry] = value

    def prefix(self, entry: int) -> str:
        """Where ``entry`` is in the file as written now (problem paths start with it)."""
        if entry == DEFAULTS:
            return "defaults"
        shape = self.layout()
        return (
            ""
            if shape == "single"
            else f"[{entry}]"
            if shape == "list"
            else f"experiments[{entry}]"
        )

    def locate(self, path: str) -> tuple[int | None, str]:
        """The entry a problem path of the file is in, and the path inside that entry
        (None: the file's own, e.g. ``experiments: no experiments``)."""
        shape = self.layout()
        if shape == "single":
            return 0, path
        if shape == "object":
            if path == "defaults" or path.startswith(("defaults.", "defaults[")):
                return DEFAULTS, path[len("defaults") :].lstrip(".")
            if not path.startswith("experiments["):
                return None, path
            path = path[len("experiments") :]
        m = _ITEM.match(path)
        if m is None or int(m.group(1)) >= len(self.experiments):
            return None, path
        return int(m.group(1)), path[m.end() :].lstrip(".")

    def route(self, problems: list[Problem]) -> dict[int | None, list[Problem]]:
        """``problems`` (paths in the file) by entry, each at its path inside the entry."""
        out: dict[int | None, list[Problem]] = {}
        for p in problems:
            entry, rest = self.locate(p.path)
            out.setdefault(entry, []).append(p if entry is None else Problem(rest, p.message))
        return out

    # ------------------------------------------------------------------ names

    def names(self) -> list[str]:
        """The experiments' names as written (templates too)."""
        return [str(e.get("name") or "") for e in self.experiments]

    def taken(self, expanded: Counts | None = None) -> set[str]:
        """Every name the file uses: written ones and, when given, expanded ones."""
        out = {n for n in self.names() if n}
        for names in expanded.names.values() if expanded else ():
            out.update(names)
        return out

    def rename(self, entry: int, new: str) -> int:
        """Rename an experiment and follow the references to it: teachers naming it, and
        grid values of ``teachers[j].experiment`` axes; a grid experiment's expanded names
        are followed too (``gaf-WRN16-1`` when ``gaf-WRN{student.depth}-{student.width}``
        becomes ``gafT-WRN{...}``). Returns how many references changed."""
        old = self.experiments[entry].get("name")
        before = counts(self.value(), len(self.experiments)).names.get(entry, [])
        self.experiments[entry]["name"] = new
        after = counts(self.value(), len(self.experiments)).names.get(entry, [])
        renamed = {old: new} if isinstance(old, str) else {}
        if len(before) == len(after):
            renamed.update({b: a for b, a in zip(before, after, strict=True) if b != a})
        changed = 0
        for j, exp in enumerate([self.defaults, *self.experiments]):
            if j - 1 == entry:
                continue
            for teacher in exp.get("teachers") or []:
                if isinstance(teacher, dict) and teacher.get("experiment") in renamed:
                    teacher["experiment"] = renamed[teacher["experiment"]]
                    changed += 1
            grid = exp.get("grid")
            for key, values in grid.items() if isinstance(grid, dict) else ():
                if _TEACHER_REF.match(key) and isinstance(values, list):
                    for k, value in enumerate(values):
                        if isinstance(value, str) and value in renamed:
                            values[k] = renamed[value]
                            changed += 1
        return changed


def dumps(value: Any, width: int = 120) -> str:
    """JSON as people write spec files: an object or list on one line when it fits in
    ``width`` columns, else one item a line (``examples/study.json``'s style)."""
    return _dump(value, 0, width) + "\n"


def _dump(value: Any, indent: int, width: int) -> str:
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or not value or indent + len(flat) <= width:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [
            f"{pad}{json.dumps(k, ensure_ascii=False)}: " + _dump(v, indent + 2, width).lstrip()
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + _dump(v, indent + 2, width) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
