"""Group keys: a stable hash of what a configuration *is*, tying its seeds together (the
results table averages the runs of one key), and the canonical JSON it is computed from."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from graphlib import TopologicalSorter
from typing import TYPE_CHECKING, Any, Protocol

from kdtui.spec.terms import LATER_TERMS

if TYPE_CHECKING:
    from kdtui.spec.models import Experiment


class _Keyed(Protocol):
    """A group of the store, as far as keys go (``checks.StoreGroup``)."""

    group_key: str


# Fields that say *how* or *where* a configuration runs, not *what* it is: two runs that
# differ only in these belong to the same group (their accuracies are averaged together).
NOT_IN_GROUP_KEY = (
    "name", "description", "seeds", "device", "amp", "channels_last", "compile", "teacher_cache",
    "threads", "nice", "watchdog",
)  # fmt: skip

#: Fields added after the first release, by the part of the experiment that holds them
#: ("" for the experiment itself), with the value that means what leaving them out meant
#: before: they enter the key only at another value, so that adding them left the keys of
#: existing configurations, and so their groups, as they were.
ADDED_LATER: dict[str, dict[str, Any]] = {
    "loss": dict.fromkeys(LATER_TERMS),
    "": {"augment": None},
    "data": {"layout": "NCL", "val": None},
}


def without_neutral(values: dict[str, Any], part: str) -> dict[str, Any]:
    """``values`` (the experiment's ``part``) without the fields added later that hold their
    neutral value: the same configuration, whether it was written before or after them."""
    later = ADDED_LATER.get(part, {})
    return {k: v for k, v in values.items() if k not in later or v != later[k]}


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def group_keys(experiments: list[Experiment], store_refs: Mapping[str, _Keyed]) -> dict[str, str]:
    """Every experiment's group key by name, in file order; a teacher's key enters its
    students' keys, so teachers are keyed first (teacher references have no cycle: validation
    refused them)."""
    by_name = {str(e.name): e for e in experiments}
    graph = {
        name: [str(t.experiment) for t in exp.teachers if t.experiment in by_name]
        for name, exp in by_name.items()
    }
    keys: dict[str, str] = {}
    for name in TopologicalSorter(graph).static_order():
        keys[name] = group_key(by_name[name], _teacher_entries(by_name[name], keys, store_refs))
    return {name: keys[name] for name in by_name}


def _teacher_entries(
    exp: Experiment, keys: dict[str, str], store_refs: Mapping[str, _Keyed]
) -> list[dict[str, Any]]:
    """The teachers as the key holds them: by their group key, not their name."""
    out = []
    for t in exp.teachers:
        if t.experiment in keys:
            ref: str | None = keys[t.experiment]
        elif t.experiment in store_refs:
            ref = store_refs[t.experiment].group_key
        else:
            ref = None
        out.append(
            {
                "group": ref,
                "pick": t.pick,
                "checkpoint": t.checkpoint,
                "model": t.model.model_dump(mode="json") if t.model else None,
                "weight": t.weight,
            }
        )
    return out


def group_key(exp: Experiment, teachers: list[dict[str, Any]] | None = None) -> str:
    """A stable hash of the configuration: the experiment minus seeds, name and run-time
    settings. Teachers enter by their own group key, so renaming a teacher experiment
    does not split its students' groups, while changing its configuration does."""
    body = exp.model_dump(mode="json", exclude=set(NOT_IN_GROUP_KEY))
    for part in ADDED_LATER:
        if part:
            body[part] = without_neutral(body[part], part)
        else:
            body = without_neutral(body, part)
    if teachers is not None:
        body["teachers"] = teachers
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:12]
