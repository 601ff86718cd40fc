"""``kdtui check SPEC``: what a spec file — a study with defaults and grids above all —
expands to, validated as ``kdtui run`` validates it, with nothing written anywhere."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kdtui.clikit import Workspace, check_workspace, out, plural, print_grid
from kdtui.store import Store, default_workspace

if TYPE_CHECKING:  # the spec models cost ~0.15 s to import: only the command pays for them
    from kdtui.spec import LoadedSpec


class CheckFormat(str, Enum):
    table = "table"
    json = "json"


def check(
    spec: Annotated[Path, typer.Argument(help="Spec JSON, e.g. a study with defaults and grids.")],
    fmt: Annotated[
        CheckFormat, typer.Option("--format", "-f", help="table or json (a list of objects).")
    ] = CheckFormat.table,
    workspace: Workspace = None,
) -> None:
    """Validate a spec and list the experiments it expands to, writing nothing.

    One line per experiment (name, group key, seeds, teachers, runs); no run, no workspace
    is made. Exits 2 on an invalid spec, with the problems `kdtui run` would print."""
    from kdtui import launcher
    from kdtui.clikit import print_spec_error
    from kdtui.spec import SpecError, load_spec

    # Teachers may be groups of the store; the store is only read (no reconciling, no
    # queue runner revived), and a workspace that does not exist stays so.
    store = Store(check_workspace(workspace or default_workspace()))
    try:
        loaded = load_spec(spec, store_lookup=launcher.store_lookup(store))
    except SpecError as exc:
        print_spec_error(exc)
        raise typer.Exit(2) from None
    rows = expanded_rows(loaded)
    if fmt == CheckFormat.json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    print_grid(
        ["experiment", "group", "seeds", "runs", "teachers"],
        [
            [
                r["name"],
                r["group_key"],
                ",".join(map(str, r["seeds"])),
                str(r["runs"]),
                teachers_text(r["teachers"]),
            ]
            for r in rows
        ],
        right={3},
        styles=[None] * len(rows),
    )
    runs = sum(r["runs"] for r in rows)
    out.print(f"{plural(len(rows), 'experiment')}, {plural(runs, 'run')}; nothing written")


def expanded_rows(loaded: LoadedSpec) -> list[dict[str, Any]]:
    """One object per experiment of the validated (expanded) spec, in file order."""
    return [
        {
            "name": exp.name,
            "group_key": loaded.group_keys[str(exp.name)],
            "seeds": list(exp.seeds),
            "runs": len(exp.seeds),
            "teachers": [_teacher(t) for t in exp.teachers],
            "label": exp.label(),
            "loss": exp.loss_label(),
        }
        for exp in loaded.experiments
    ]


def _teacher(teacher: Any) -> dict[str, Any]:
    return {
        "experiment": teacher.experiment,
        "checkpoint": teacher.checkpoint,
        "pick": teacher.pick,
        "weight": teacher.weight,
    }


def teachers_text(teachers: list[dict[str, Any]]) -> str:
    """``gaf-16-3``, ``0.7·gaf-16-3 + 0.3·sig-16-3``, ``best of gaf`` or the checkpoint's
    file name; ``–`` for none."""
    weighted = any(t["weight"] != 1 for t in teachers)
    parts = []
    for t in teachers:
        ref = t["experiment"] or Path(str(t["checkpoint"])).name
        pick = "best of " if t["experiment"] and t["pick"] == "best" else ""
        parts.append((f"{t['weight']:g}·" if weighted else "") + pick + ref)
    return " + ".join(parts) or "–"
