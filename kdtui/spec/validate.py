"""Loading and validating a spec file, with every problem reported at once.

A spec file holds one experiment, a list of experiments, or ``{"experiments": [...]}``.
Validation is two passes: pydantic checks each experiment's fields, then the checks across
fields, experiments, files and the store (``checks.py``) run on every experiment — the full
set on those that parsed, the file and reference checks on those that did not. All problems
come back together as ``SpecError.problems``; nothing is returned unless there are none.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from kdtui.spec import study
from kdtui.spec.checks import (
    FileContext,
    StoreGroup,
    StoreLookup,
    experiment_problems,
    raw_problems,
)
from kdtui.spec.keys import group_keys
from kdtui.spec.models import Experiment, SpecFile
from kdtui.spec.problems import Problem, SpecError, problems_from


@dataclass
class LoadedSpec:
    """A validated spec: experiments in file order, resolved teacher models, group keys."""

    experiments: list[Experiment]
    group_keys: dict[str, str]  # experiment name -> group key
    base_dir: Path
    source: str
    store_refs: dict[str, StoreGroup]  # teacher references resolved from the store

    def by_name(self, name: str) -> Experiment:
        return next(e for e in self.experiments if e.name == name)


_experiment_adapter = TypeAdapter(Experiment)


def read_spec_file(path: str | Path) -> Any:
    """Read JSON, turning I/O and syntax errors into a SpecError with a location."""
    path = Path(path)

    def fail(why: str) -> SpecError:
        return SpecError([Problem("", why)], str(path))

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise fail(f"not a text file (byte {exc.start} is not UTF-8): expected JSON") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
    except RecursionError as exc:  # e.g. '[' * 100000: Python's parser recurses per level
        raise fail("not a spec: JSON nested too deeply (thousands of levels)") from exc


def load_spec(path: str | Path, store_lookup: StoreLookup | None = None) -> LoadedSpec:
    """Load and validate a spec file; raise SpecError with every problem found."""
    path = Path(path)
    return validate_spec(
        read_spec_file(path),
        base_dir=path.parent,
        source=str(path),
        default_name=path.stem,
        store_lookup=store_lookup,
    )


def validate_spec(
    raw: Any,
    *,
    base_dir: Path = Path("."),
    source: str = "spec",
    default_name: str = "experiment",
    store_lookup: StoreLookup | None = None,
) -> LoadedSpec:
    """Validate already-parsed JSON (the TUI's composer calls this as the user types). A
    study (defaults, grids, name templates) is expanded first; its problems come back at
    their places in the file as written."""
    if study.is_study(raw):
        again = functools.partial(
            validate_spec,
            base_dir=base_dir,
            source=source,
            default_name=default_name,
            store_lookup=store_lookup,
        )
        return study.checked(raw, again, source)  # the expansion is no study: no recursion
    items, prefix = _items(raw, source)

    def path_of(i: int) -> str:
        return "" if prefix is None else f"{prefix}[{i}]"

    problems: list[Problem] = []
    parsed = _parse(items, path_of, problems)
    if not items:
        problems.append(Problem(prefix or "", "no experiments"))
    problems += _name_problems(parsed, prefix is None, default_name, path_of)
    ctx = FileContext(
        parsed=parsed,
        names_in_file={exp.name: i for i, exp in parsed.items() if exp.name},
        raw_names={item.get("name"): i for i, item in enumerate(items) if isinstance(item, dict)},
        base_dir=base_dir,
        store_lookup=store_lookup,
    )
    for i, item in enumerate(items):
        if i not in parsed and isinstance(item, dict):
            problems += raw_problems(item, path_of(i), ctx)
    for i, exp in parsed.items():
        problems += experiment_problems(exp, path_of(i), ctx)
    problems += _cycle_problems(parsed, ctx.names_in_file, path_of)
    if problems:
        raise SpecError(problems, source)

    experiments = [parsed[i] for i in sorted(parsed)]
    for exp in experiments:
        _resolve_inputs(exp, base_dir)
    keys = group_keys(experiments, ctx.store_refs)
    return LoadedSpec(experiments, keys, base_dir.resolve(), source, ctx.store_refs)


def _items(raw: Any, source: str) -> tuple[list[Any], str | None]:
    """The experiments of a file in any of its three forms, and the JSON path of their list
    (None for a lone experiment)."""
    if isinstance(raw, dict) and "experiments" in raw:
        try:
            return SpecFile.model_validate(raw).experiments, "experiments"
        except ValidationError as exc:
            raise SpecError(problems_from(exc, ""), source) from exc
    if isinstance(raw, list):
        return raw, ""
    if isinstance(raw, dict):
        return [raw], None
    raise SpecError([Problem("", "expected an experiment object or a list of them")], source)


def _parse(
    items: list[Any], path_of: Callable[[int], str], problems: list[Problem]
) -> dict[int, Experiment]:
    """The items whose fields all parse, by position; the others' problems go to
    ``problems``."""
    parsed: dict[int, Experiment] = {}
    for i, item in enumerate(items):
        try:
            parsed[i] = _experiment_adapter.validate_python(item)
        except ValidationError as exc:
            problems.extend(problems_from(exc, path_of(i)))
    return parsed


def _name_problems(
    parsed: dict[int, Experiment],
    alone: bool,
    default_name: str,
    path_of: Callable[[int], str],
) -> list[Problem]:
    """Names: the file's name for a lone experiment, required and unique otherwise."""
    out: list[Problem] = []
    seen: dict[str, int] = {}
    for i, exp in parsed.items():
        if exp.name is None:
            if alone:
                exp.name = re.sub(r"[^A-Za-z0-9._+-]", "-", default_name)[:80] or "experiment"
            else:
                out.append(
                    Problem(f"{path_of(i)}.name", "required when a file holds several experiments")
                )
                continue
        if exp.name in seen:
            out.append(
                Problem(
                    f"{path_of(i)}.name",
                    f"duplicate name {exp.name!r} (also {path_of(seen[exp.name])})",
                )
            )
        seen.setdefault(exp.name, i)
    return out


def _resolve_inputs(exp: Experiment, base_dir: Path) -> None:
    """Make input paths (data files, teacher checkpoints) absolute. They enter the group key
    and the runs' frozen specs this way, so the same file named from another folder, or a
    frozen spec validated again for more seeds, stays in the same group."""
    if isinstance(getattr(exp.data, "path", None), str):
        exp.data.path = str((base_dir / exp.data.path).expanduser().resolve())
    for t in exp.teachers:
        if t.checkpoint:
            t.checkpoint = str((base_dir / t.checkpoint).expanduser().resolve())


def _cycle_problems(
    parsed: dict[int, Experiment], names: dict[str, int], path_of: Callable[[int], str]
) -> list[Problem]:
    """One problem at each experiment that lies on a cycle of teacher references: the
    members of the strongly connected components of more than one experiment (Tarjan's
    algorithm, without recursion, in time linear in the references)."""
    edges = {
        str(exp.name): [
            str(t.experiment)
            for t in exp.teachers
            if t.experiment in names and t.experiment != exp.name
        ]
        for exp in parsed.values()
        if exp.name
    }
    on_cycle = {name for scc in _components(edges) if len(scc) > 1 for name in scc}
    return [
        Problem(
            f"{path_of(names[name])}.teachers", f"teacher references form a cycle through {name!r}"
        )
        for name in edges
        if name in on_cycle
    ]


def _components(edges: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of a graph (Tarjan 1972, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges.get(nxt, ()))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    scc = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        scc.append(member)
                        if member == node:
                            break
                    out.append(scc)
    return out
