"""Studies: a spec file's ``defaults`` merged under each experiment, ``grid``s expanded to
their cartesian products, names filled in from ``{path}`` templates.

A study is written short and validated long: ``expand`` turns the file as written into the
plain form ``validate_spec`` reads (every experiment whole, one per grid combination) and
remembers where each expanded field came from, so that every problem found in the
expansion is reported where the user has to change the file —
``experiments[2].grid["loss.kd.T"][1]: must be > 0``, ``defaults.epochs: ...`` — and not at
an index of an expansion they never see.

Rules (the README's "Studies" section says them to users):

- ``defaults`` (object form only) is deep-merged under every experiment: objects merge key by
  key, the experiment's own value wins, lists (``teachers``, ``seeds``, ``channels``) replace
  whole, ``null`` switches a default off, and an object of another kind (another ``dataset``,
  schedule or view ``kind``) replaces the default's rather than mixing fields with it.
- ``grid`` maps a field path (``student.depth``, ``loss.kd.T``, ``teachers[0].experiment``)
  to a list of values; the experiment becomes one experiment per combination, first axis
  outermost. Grid values win over the experiment's own fields and the defaults; an object
  value merges like an experiment over its defaults, so ``{"depth": 28, "width": 3}`` varies
  two fields together.
- A name is a template: ``{path}`` takes the value at that path in the expanded experiment
  (a grid axis, an own field or a default). Names must come out unique across the file.
- A teacher may name a grid experiment by its written template name (``"gaf-WRN{student.depth}
  -{student.width}"``): the student then expands once per experiment of that grid, exactly
  as if it had a grid over ``teachers[j].experiment`` listing their names — "distil from each
  of these teachers", the usual reason to name a family of teachers.

It works on the parsed JSON, before pydantic sees it, and never imports torch.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kdtui.spec.problems import Problem, SpecError

T = TypeVar("T")

#: More expanded experiments than this in one file is a typo (an axis of a thousand values),
#: not a study: refused before the product is built.
MAX_EXPERIMENTS = 10_000

_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*"
#: A field path as grids and name templates write it: ``loss.kd.T``, ``teachers[0].model``.
PATH_PATTERN = rf"^{_SEGMENT}(?:\.{_SEGMENT})*$"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
#: Fields a grid cannot vary, and why.
_NOT_AXES = {
    "name": "the name is the template: put {placeholders} in it",
    "seeds": "seeds are a list already: every seed runs",
    "grid": "a grid inside a grid means nothing",
}
#: Keys that say which kind of object a union holds (data, schedule, view): objects of
#: different kinds replace each other instead of merging.
_TAGS = ("dataset", "kind")

Part = str | int
Parts = tuple[Part, ...]


def parse_path(text: str) -> Parts | None:
    """``"teachers[0].model.depth"`` → ``("teachers", 0, "model", "depth")``; None when the
    text is no field path."""
    if not isinstance(text, str) or not re.fullmatch(PATH_PATTERN, text):
        return None
    parts: list[Part] = []
    for segment in text.split("."):
        name, *indices = segment.replace("]", "").split("[")
        parts.append(name)
        parts.extend(int(i) for i in indices)
    return tuple(parts)


def join_path(prefix: str, parts: Parts) -> str:
    """A path in the style of the validator's problems: ``experiments[2].loss.kd.T``."""
    out = prefix
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _grid_key_path(item_path: str, key: str) -> str:
    return join_path(item_path, ("grid",)) + f"[{json.dumps(key)}]"


# --------------------------------------------------------------------------- merging


def merge(default: Any, own: Any) -> Any:
    """``own`` over ``default``: objects merge key by key (recursively), anything else in
    ``own`` replaces. Objects of different kinds (``dataset`` / ``kind`` differ) replace."""
    if not _mergeable(own, default):
        return copy.deepcopy(own)
    out = copy.deepcopy(default)
    for key, value in own.items():
        out[key] = merge(out[key], value) if key in out else copy.deepcopy(value)
    return out


def _mergeable(own: Any, default: Any) -> bool:
    return (
        isinstance(own, dict)
        and isinstance(default, dict)
        and all(own.get(t, default.get(t)) == default.get(t, own.get(t)) for t in _TAGS)
    )


_MISSING = object()


def _child(node: Any, part: Part) -> Any:
    if isinstance(part, str):
        return node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
    return node[part] if isinstance(node, list) and part < len(node) else _MISSING


def _walk(node: Any, parts: Parts) -> Any:
    for part in parts:
        if node is _MISSING:
            break
        node = _child(node, part)
    return node


def _source(own: Any, default: Any, parts: Parts) -> str:
    """Whether the field at ``parts`` of the merged experiment was written in the
    experiment (``own``) or came from the defaults: the deeper of the two along the path,
    the experiment on a tie, and the defaults never below a value the experiment replaced."""
    best, o, d = "own", own, default
    for part in parts:
        o_next = _child(o, part) if o is not _MISSING else _MISSING
        below = d is not _MISSING and (o is _MISSING or _mergeable(o, d))
        d_next = _child(d, part) if below else _MISSING
        if o_next is _MISSING and d_next is _MISSING:
            break
        best = "own" if o_next is not _MISSING else "defaults"
        o, d = o_next, d_next
    return best


def _set(target: dict[str, Any], parts: Parts, value: Any) -> str | None:
    """Put a grid value at ``parts`` of ``target``: merged over what is there (an object
    value sets only the fields it names, so that ``{"depth": 28, "width": 3}`` varies two
    fields together), creating objects and a list's next item on the way. Returns the
    reason when the path cannot be set."""
    node: Any = target
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        where = join_path("", parts[:n]) or "the experiment"
        if isinstance(part, str) and not isinstance(node, dict):
            return f"{where} is not an object here" + _SHORTHAND.get(parts[n - 1], "")
        if isinstance(part, int) and not isinstance(node, list):
            return f"{where} is not a list here"
        if isinstance(part, int) and part > len(node):
            gap = join_path("", parts[: n + 1])
            return f"{where} has {len(node)} item(s) here: {gap} would leave a gap"
        old = _child(node, part)
        if isinstance(part, int) and old is _MISSING:
            node.append(None)
        if last:
            node[part] = copy.deepcopy(value) if old is _MISSING else merge(old, value)
        elif old is _MISSING or old is None:
            node[part] = [] if isinstance(parts[n + 1], int) else {}
        node = node[part]
    return None


_SHORTHAND = {"view": ' (write it as an object, e.g. {"kind": "gaf"})'}


# --------------------------------------------------------------------------- names


def name_value(value: Any) -> str | None:
    """How a value reads inside a name: ``4`` for 4.0, ``0.7``, ``true``; None for what
    cannot be part of a name (objects, lists, null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return None


def _fill(template: str, exp: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The name with its ``{path}`` placeholders filled from ``exp``, or the reasons why not."""
    whys: list[str] = []

    def one(match: re.Match[str]) -> str:
        text = match.group(1)
        parts = parse_path(text)
        if parts is None:
            whys.append(f"{{{text}}} is no field path (e.g. {{loss.kd.T}})")
            return ""
        value: Any = exp
        for part in parts:
            value = _child(value, part)
            if value is _MISSING:
                whys.append(
                    f"{{{text}}}: not set in this experiment (a placeholder names a field "
                    "written in the experiment, its grid or the defaults)"
                )
                return ""
        if (shown := name_value(value)) is None:
            kind = "an object" if isinstance(value, dict) else "a list" if value else "null"
            whys.append(f"{{{text}}} is {kind}: name a field inside it, e.g. {{{text}.depth}}")
            return ""
        if "{" in shown or "}" in shown:
            whys.append(f"{{{text}}} is {shown!r}: braces cannot go into a name")
            return ""
        return shown

    name = _PLACEHOLDER.sub(one, template)
    if not whys and ("{" in name or "}" in name):
        whys.append("a brace without its pair: write placeholders as {field.path}")
    return (None if whys else name), whys


def placeholders(template: str) -> list[Parts]:
    """The field paths a name template names."""
    return [p for text in _PLACEHOLDER.findall(template) if (p := parse_path(text)) is not None]


# --------------------------------------------------------------------------- expansion


@dataclass(frozen=True)
class Axis:
    """One varying field: its path in the experiment, its values, and where each value is
    written in the file (a grid's list item, or the teacher reference that named a grid)."""

    parts: Parts
    values: list[Any]
    written: list[str]
    key_path: str  # where a field path that does not exist is reported


@dataclass
class Origin:
    """Where one expanded experiment comes from: the written experiment, its own fields,
    and the value chosen on each axis."""

    item: int
    item_path: str
    own: Any
    combo: list[tuple[Axis, int]] = field(default_factory=list)
    name: str | None = None


@dataclass
class Expansion:
    """The file as ``validate_spec`` reads it, the study's own problems, and the way back
    from a problem of the expansion to the place in the file as written."""

    raw: Any
    problems: list[Problem]
    origins: list[Origin]
    defaults: Any
    prefix: str | None  # the expanded file's experiment prefix, as validate_spec writes it

    @property
    def counts(self) -> tuple[int, int]:
        """Written experiments and expanded experiments."""
        return len({o.item for o in self.origins}), len(self.origins)

    def written(self, problems: list[Problem]) -> list[Problem]:
        """``problems`` of the expansion at their paths in the file as written. A problem
        that several expanded experiments share at one written place is said once; it names
        the experiments it concerns when it does not concern all that share that place."""
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for problem in problems:
            found = self._locate(problem.path)
            if found is None:
                groups.setdefault((problem.path, problem.message), {"names": None})
                continue
            k, rest = found
            if rest is None:  # a path this module does not parse: keep it under the item
                path = self.origins[k].item_path + problem.path[len(self._exp_path(k)) :]
            else:
                path = self._map(self.origins[k], rest, problem.message)
            entry = groups.setdefault((path, problem.message), {"names": [], "rest": rest})
            if entry["names"] is not None:
                entry["names"].append(k)
        out = []
        for (path, message), entry in groups.items():
            ks, rest = entry["names"], entry.get("rest")
            if ks and rest is not None:
                sharers = [
                    k for k, o in enumerate(self.origins) if self._map(o, rest, message) == path
                ]
                if len(sharers) > 1 and set(ks) != set(sharers):
                    message += f" (in {_names([self.origins[k].name for k in ks])})"
            out.append(Problem(path, message))
        return out

    def _exp_path(self, k: int) -> str:
        return "" if self.prefix is None else f"{self.prefix}[{k}]"

    def _locate(self, path: str) -> tuple[int, Parts | None] | None:
        """The expanded experiment a problem path is in, and the path inside it."""
        if not self.origins:
            return None
        if self.prefix is None:
            k, inner = 0, path
        else:
            m = re.match(rf"^{re.escape(self.prefix)}\[(\d+)\]\.?(.*)$", path)
            if m is None or int(m.group(1)) >= len(self.origins):
                return None
            k, inner = int(m.group(1)), m.group(2)
        return k, (() if inner == "" else parse_path(inner))

    def _map(self, origin: Origin, rest: Parts, message: str) -> str:
        for axis, i in origin.combo:
            n = len(axis.parts)
            if rest[:n] == axis.parts:
                if rest == axis.parts and message.startswith("unknown field"):
                    return axis.key_path
                # inside an object value: the value's own fields, else what it merged over
                below = _walk(merge(self.defaults, origin.own), axis.parts)
                if _source(axis.values[i], below, rest[n:]) == "own":
                    return join_path(axis.written[i], rest[n:])
        if rest and _source(origin.own, self.defaults, rest) == "defaults":
            return join_path("defaults", rest)
        return join_path(origin.item_path, rest)


def _names(names: list[str | None]) -> str:
    shown = [repr(n) for n in names[:3]]
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(shown) + more


def is_study(raw: Any) -> bool:
    """Whether ``raw`` uses defaults, grids or name templates (else it is read as it is)."""
    if isinstance(raw, dict) and "defaults" in raw:
        return True
    items = raw.get("experiments") if isinstance(raw, dict) else raw
    if isinstance(raw, dict) and "experiments" not in raw:
        items = [raw]
    if not isinstance(items, list):
        return False
    return any(
        isinstance(item, dict)
        and ("grid" in item or (isinstance(item.get("name"), str) and "{" in item["name"]))
        for item in items
    )


def checked(raw: Any, validate: Callable[[Any], T], source: str) -> T:
    """``validate`` (the validator of plain files) on the expansion of ``raw``; a SpecError
    holds the study's own problems and the validator's, all at their written paths."""
    study = expand(raw)
    if study.problems and not study.origins:  # nothing left to validate: say only why
        raise SpecError(study.problems, source)
    try:
        result = validate(study.raw)
    except SpecError as exc:
        raise SpecError(study.problems + study.written(exc.problems), source) from None
    if study.problems:
        raise SpecError(study.problems, source)
    return result


def expand(raw: Any) -> Expansion:
    """The study ``raw`` (parsed JSON) expanded: see the module's docstring for the rules."""
    problems: list[Problem] = []
    defaults: Any = _MISSING
    if isinstance(raw, dict) and "experiments" in raw:
        body = {k: v for k, v in raw.items() if k != "defaults"}
        items, item_prefix, out_prefix = raw["experiments"], "experiments", "experiments"
        if "defaults" in raw:
            defaults = _checked_defaults(raw["defaults"], problems)
    elif isinstance(raw, list):
        body, items, item_prefix, out_prefix = None, raw, "", ""
    else:
        body, items, item_prefix, out_prefix = None, [raw], None, None
    if not isinstance(items, list):  # the validator says what is wrong with it
        return Expansion(raw if defaults is _MISSING else body, problems, [], defaults, None)

    def item_path(i: int) -> str:
        return "" if item_prefix is None else f"{item_prefix}[{i}]"

    templates: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and "{" in name:
            templates.setdefault(name, i)
    expander = _Expander(items, item_path, defaults, templates, problems)
    expanded: list[tuple[Any, Origin]] = []
    for i in range(len(items)):
        expanded.extend(expander.item(i))
    expanded = _unique(expanded, problems)
    if len(expanded) > MAX_EXPERIMENTS:
        problems.append(
            Problem(
                item_prefix or "",
                f"{len(expanded)} experiments after expansion; at most {MAX_EXPERIMENTS}",
            )
        )
        expanded = expanded[:MAX_EXPERIMENTS]
    experiments = [e for e, _ in expanded]
    origins = [o for _, o in expanded]
    if body is not None:
        out: Any = {**body, "experiments": experiments}
    elif item_prefix is None and len(experiments) == 1:
        out, out_prefix = experiments[0], None  # a lone experiment stays lone: its default name
    else:
        out, out_prefix = experiments, ""
    return Expansion(out, _dedup(problems), origins, defaults, out_prefix)


def _checked_defaults(value: Any, problems: list[Problem]) -> Any:
    if not isinstance(value, dict):
        problems.append(Problem("defaults", "must be an object of experiment fields"))
        return _MISSING
    out = dict(value)
    for key, why in (("name", "each experiment names itself"), ("grid", "a grid belongs to an experiment")):  # fmt: skip
        if key in out:
            problems.append(Problem(f"defaults.{key}", why))
            del out[key]
    return out


class _Expander:
    """Expands the file's experiments one by one, each once (memoised): a student that
    names a grid of teachers by its template needs that grid's names first."""

    def __init__(
        self,
        items: list[Any],
        item_path: Any,
        defaults: Any,
        templates: dict[str, int],
        problems: list[Problem],
    ) -> None:
        self.items, self.item_path, self.defaults = items, item_path, defaults
        self.templates, self.problems = templates, problems
        self.done: dict[int, list[tuple[Any, Origin]]] = {}
        self.busy: set[int] = set()

    def item(self, i: int) -> list[tuple[Any, Origin]]:
        if i in self.done:
            return self.done[i]
        self.busy.add(i)
        try:
            self.done[i] = list(self._expand(i))
        finally:
            self.busy.discard(i)
        return self.done[i]

    def _expand(self, i: int) -> Iterator[tuple[Any, Origin]]:
        item, at = self.items[i], self.item_path(i)
        if not isinstance(item, dict):
            yield item, Origin(i, at, item)  # the validator says what it should be
            return
        own = {k: v for k, v in item.items() if k != "grid"}
        merged = own if self.defaults is _MISSING else merge(self.defaults, own)
        axes = self._grid_axes(item.get("grid", _MISSING), at)
        axes += self._teacher_axes(merged, axes, at)
        total = math.prod(len(a.values) for a in axes)
        if total > MAX_EXPERIMENTS:
            where = join_path(at, ("grid",))
            self.problems.append(
                Problem(where, f"{total} combinations; at most {MAX_EXPERIMENTS} in a file")
            )
            return
        template = merged.get("name")
        varying = [a for a in axes if len(a.values) > 1]
        if varying and not isinstance(template, str):
            example = join_path("", varying[0].parts)
            self.problems.append(
                Problem(
                    join_path(at, ("name",)),
                    f'a grid needs a name template, e.g. "{item.get("name") or "exp"}-{{{example}}}"',
                )
            )
            return
        bad_axes: set[int] = set()
        for combo in itertools.product(*(range(len(a.values)) for a in axes)):
            exp = copy.deepcopy(merged)
            for n, (axis, v) in enumerate(zip(axes, combo, strict=True)):
                if n not in bad_axes and (why := _set(exp, axis.parts, axis.values[v])):
                    self.problems.append(Problem(axis.key_path, why))
                    bad_axes.add(n)
            origin = Origin(i, at, own, list(zip(axes, combo, strict=True)))
            if isinstance(template, str) and "{" in template:
                name, whys = _fill(template, exp)
                if name is None:
                    self.problems.extend(Problem(join_path(at, ("name",)), w) for w in whys)
                    continue
                exp["name"] = name
            origin.name = exp.get("name") if isinstance(exp.get("name"), str) else None
            yield exp, origin

    def _grid_axes(self, grid: Any, at: str) -> list[Axis]:
        if grid is _MISSING:
            return []
        where = join_path(at, ("grid",))
        if not isinstance(grid, dict):
            self.problems.append(
                Problem(where, 'must be an object: field path → list of values, e.g. {"loss.kd.T": [2, 4]}')
            )  # fmt: skip
            return []
        axes: list[Axis] = []
        for key, values in grid.items():
            key_path = _grid_key_path(at, key)
            parts = parse_path(key)
            if parts is None:
                self.problems.append(
                    Problem(key_path, "not a field path (e.g. loss.kd.T or teachers[0].experiment)")
                )
                continue
            if parts[0] in _NOT_AXES:
                why = _NOT_AXES[str(parts[0])]
                self.problems.append(Problem(key_path, f"a grid cannot vary {parts[0]}: {why}"))
                continue
            if clash := next((a for a in axes if _overlap(a.parts, parts)), None):
                other = join_path("", clash.parts)
                self.problems.append(Problem(key_path, f"overlaps the axis {other!r}"))
                continue
            if not isinstance(values, list) or not values:
                self.problems.append(Problem(key_path, "must be a non-empty list of values"))
                continue
            seen: dict[str, int] = {}  # a repeated value is said once, and left out
            for j, value in enumerate(values):
                text = json.dumps(value, sort_keys=True)
                if text in seen:
                    self.problems.append(
                        Problem(f"{key_path}[{j}]", f"repeats the value at [{seen[text]}]")
                    )
                seen.setdefault(text, j)
            kept = list(seen.values())
            written = [f"{key_path}[{j}]" for j in kept]
            axes.append(Axis(parts, [values[j] for j in kept], written, key_path))
        return axes

    def _teacher_axes(self, merged: dict[str, Any], axes: list[Axis], at: str) -> list[Axis]:
        """A teacher naming a grid by its template name: an axis over that grid's names."""
        teachers = merged.get("teachers")
        out = []
        for j, teacher in enumerate(teachers if isinstance(teachers, list) else []):
            ref = teacher.get("experiment") if isinstance(teacher, dict) else None
            parts: Parts = ("teachers", j, "experiment")
            if (
                not isinstance(ref, str)
                or ref not in self.templates
                or any(_overlap(a.parts, parts) for a in axes)
            ):
                continue
            source = self.templates[ref]
            if source in self.busy:
                continue  # a cycle: the validator reports the reference as it stands
            names = list(dict.fromkeys(o.name for _, o in self.item(source) if o.name))
            if names:
                written = join_path(at, parts)
                out.append(Axis(parts, names, [written] * len(names), written))
        return out


def _overlap(a: Parts, b: Parts) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _unique(
    expanded: list[tuple[Any, Origin]], problems: list[Problem]
) -> list[tuple[Any, Origin]]:
    """Drop every experiment whose name an earlier one has, saying where to make it unique:
    at the grid that produced the repeat (or at the name, for an experiment without one)."""
    first: dict[str, Origin] = {}
    out = []
    for exp, origin in expanded:
        name = origin.name
        if name is None or name not in first:
            if name is not None:
                first[name] = origin
            out.append((exp, origin))
            continue
        earlier = first[name]
        grid = any(len(a.values) > 1 for a, _ in origin.combo)
        where = join_path(origin.item_path, ("grid" if grid else "name",))
        if earlier.item == origin.item:
            template = origin.own.get("name", "") if isinstance(origin.own, dict) else ""
            named = placeholders(template) if isinstance(template, str) else []
            missing = [
                join_path("", a.parts)
                for a, _ in origin.combo
                if len(a.values) > 1 and not any(_overlap(a.parts, p) for p in named)
            ]
            hint = (
                f"; put the varying field in the name, e.g. {{{missing[0]}}}"
                if missing
                else "; two values read the same in the name"
            )
            problems.append(
                Problem(where, f"{name!r} comes out of more than one combination{hint}")
            )
        else:
            problems.append(Problem(where, f"{name!r} is also the name of {earlier.item_path}"))
    return out


def _dedup(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
