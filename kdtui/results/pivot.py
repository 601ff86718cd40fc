"""The results as a paper's table: groups laid out by two spec paths that vary among them
(rows ``teachers[0].experiment``, columns ``loss``), a cell per group, mean ± std (n), the
best cell of each column marked, and optionally Δ to a baseline group.

A path is read from each group's frozen ``spec.json`` (one run's, not every run's: the seeds
of a group share their configuration). Where one cell would hold several groups (the
teachers and the baseline all train with CE and no teacher), that row is split by what
tells them apart, rather than averaging different configurations together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kdtui.results.stats import (
    GroupRow,
    Metric,
    Stats,
    Summary,
    scales,
    selected_on_note,
    summarize,
)
from kdtui.store import Store

MISSING_LABEL = "–"
_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")
#: What a path's value is shown as when it is an object: the short labels of the tables.
_LABELLED = ("student", "teachers", "teachers[]", "teachers[].model", "loss", "augment", "data")


class PivotError(ValueError):
    """A pivot that cannot be laid out; the message is one line for the user."""


# ---------------------------------------------------------------------- spec paths

PathParts = tuple[str | int, ...]


def parse_path(path: str) -> PathParts:
    """``teachers[0].experiment`` → ``("teachers", 0, "experiment")``."""
    parts: list[str | int] = []
    for piece in path.split("."):
        match = _PART.fullmatch(piece)
        if match is None:
            raise PivotError(
                f"{path!r} is not a spec path (e.g. student.depth, loss.kd.T, "
                "teachers[0].experiment)"
            )
        parts.append(match.group(1))
        parts += [int(i) for i in _INDEX.findall(match.group(2))]
    return tuple(parts)


def path_text(parts: PathParts) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a path a spec does not have (told apart from a null value)


def value_at(spec: Any, parts: PathParts) -> Any:
    """The value at ``parts`` in a frozen experiment, or ``MISSING``."""
    for part in parts:
        if isinstance(part, int):
            if not isinstance(spec, list) or part >= len(spec):
                return MISSING
        elif not isinstance(spec, dict) or part not in spec:
            return MISSING
        spec = spec[part]
    return spec


def _normal(value: Any) -> str:
    """A value as a comparable text: absent, null and empty are one 'nothing'."""
    if value is MISSING or value in (None, [], {}):
        return "null"
    return json.dumps(value, sort_keys=True)


def _leaves(spec: Any, prefix: PathParts = ()) -> Iterable[tuple[PathParts, Any]]:
    if isinstance(spec, dict) and spec:
        for key, value in spec.items():
            yield from _leaves(value, (*prefix, key))
    elif isinstance(spec, list) and spec and any(isinstance(v, dict | list) for v in spec):
        for i, value in enumerate(spec):
            yield from _leaves(value, (*prefix, i))
    else:  # a number, a text, a list of numbers (seeds, groups, milestones), nothing
        yield prefix, spec


def varying_paths(specs: Iterable[dict[str, Any]]) -> list[str]:
    """The leaf paths whose value differs among ``specs`` (name, seeds and run-time
    settings left out: they are not part of a configuration): first those with two values
    or more, then those only some specs have (``teachers[0].pick`` beside no teacher)."""
    from kdtui.spec import NOT_IN_GROUP_KEY  # pydantic: imported when a pivot is asked for

    specs = list(specs)
    seen: dict[PathParts, None] = {}
    for spec in specs:
        for parts, value in _leaves(spec):
            if parts and parts[0] not in NOT_IN_GROUP_KEY and _normal(value) != "null":
                seen.setdefault(parts)
    values = {parts: {_normal(value_at(spec, parts)) for spec in specs} for parts in seen}
    several = [p for p, v in values.items() if len(v - {"null"}) > 1]
    some = [p for p, v in values.items() if len(v) > 1 and len(v - {"null"}) == 1]
    return [path_text(p) for p in several + some]


def axis_paths(specs: Iterable[dict[str, Any]]) -> list[str]:
    """The paths a pivot can lay ``specs`` out by: each varying path lifted to the
    labelled object above it (``student``, ``teachers``, ``loss``) first, then the varying
    paths themselves (``loss.kd.T``), in spec order."""
    specs = list(specs)
    varying = varying_paths(specs)
    return list(dict.fromkeys([*(_lift(parse_path(p), specs) for p in varying), *varying]))


def _shape(parts: PathParts) -> str:
    """``teachers[0].model`` → ``teachers[].model``: the path's kind, for its label."""
    return "".join("[]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def _fmt_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def label(parts: PathParts, value: Any) -> str:
    """A value as the tables show it: a loss as ``CE+KD(T=4,w=0.7)``, a model as
    ``WRN16-3(gaf)``, a teacher by the experiment it names, a number as typed."""
    if value is MISSING or value is None:
        return MISSING_LABEL
    shape = _shape(parts)
    if isinstance(value, list):
        if shape == "teachers":
            return " + ".join(label((*parts, i), t) for i, t in enumerate(value)) or "none"
        return ", ".join(_fmt_scalar(v) for v in value)
    if not isinstance(value, dict):
        return _fmt_scalar(value)
    try:
        return _object_label(shape, value)
    except (ValueError, TypeError, KeyError, AttributeError):
        pass  # a spec of another version: shown as it is
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _object_label(shape: str, value: dict[str, Any]) -> str:
    # the spec's own models make the labels, so a table here reads like every other
    from kdtui import spec

    if shape == "teachers[]":
        if value.get("experiment"):
            name = str(value["experiment"])
        else:
            name = spec.ModelSpec.model_validate(value["model"]).label()
        weight = value.get("weight", 1)
        return name if weight == 1 else f"{weight:g}·{name}"
    if shape in ("student", "teachers[].model"):
        return spec.ModelSpec.model_validate(value).label()
    if shape == "loss":
        return spec.LossSpec.model_validate(value).label()
    if shape.startswith("loss.") and shape.count(".") == 1:  # one term: KD(T=4,w=0.7)
        term = shape.split(".")[1]
        return getattr(spec.LossSpec.model_validate({"ce": 0, term: value}), term).label()
    if shape == "augment":
        return spec.AugmentSpec.model_validate(value).label()
    if shape == "data" and "dataset" in value:
        return str(value["dataset"])
    if shape == "schedule" and "kind" in value:
        return str(value["kind"])
    raise ValueError(shape)


def _order(values: list[tuple[str, Any]]) -> list[str]:
    """Labels in the order a table reads best: nothing first (the no-teacher baseline),
    numbers by size, anything else as the groups first appeared."""
    first: dict[str, Any] = {}
    for text, raw in values:
        first.setdefault(text, raw)

    def nothing(raw: Any) -> bool:
        return raw is MISSING or raw is None

    numbers = all(
        isinstance(v, int | float) and not isinstance(v, bool)
        for v in first.values()
        if not nothing(v)
    )
    return sorted(  # stable: appearance within equal keys
        first,
        key=lambda t: (not nothing(first[t]), first[t] if numbers and not nothing(first[t]) else 0),
    )


# ---------------------------------------------------------------------- reading specs


def group_specs(store: Store, runs: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each group's frozen experiment, read from one run folder (its newest run's): the
    seeds of a group share their configuration. A folder without a readable spec (a
    result recorded from elsewhere, a damaged file) gives an empty one."""
    newest: dict[str, dict[str, Any]] = {}
    for run in runs:
        key = run.get("group_key")
        if key and (key not in newest or run.get("created", 0) >= newest[key].get("created", 0)):
            newest[key] = run
    specs = {}
    for key, run in newest.items():
        try:
            experiment = store.read_spec(run["run_id"]).get("experiment")
        except (OSError, ValueError, AttributeError):
            experiment = None
        specs[key] = experiment if isinstance(experiment, dict) else {}
    return specs


# ---------------------------------------------------------------------- the pivot


@dataclass
class Cell:
    group: GroupRow
    stats: Stats
    summary: Summary
    digits: int
    delta: float | None = None  # mean − the baseline's mean
    best: bool = False  # the highest mean of its column


@dataclass
class Pivot:
    rows_path: str
    cols_path: str
    metric: Metric
    row_labels: list[str]
    col_labels: list[str]
    cells: dict[tuple[int, int], Cell]
    baseline: GroupRow | None = None
    split: dict[str, list[str]] = field(default_factory=dict)  # row → paths that split it
    no_delta: list[str] = field(default_factory=list)  # groups on another scale than the baseline

    def cell(self, r: int, c: int) -> Cell | None:
        return self.cells.get((r, c))

    def baseline_stats(self) -> Stats | None:
        if self.baseline is None:
            return None
        return self.baseline.best if self.metric == "best" else self.baseline.last


def find_group(rows: list[GroupRow], ref: str, what: str = "group") -> GroupRow:
    """A group by name (as the table shows it) or group key prefix; PivotError naming the
    candidates when ``ref`` finds none or several."""
    hits = [r for r in rows if r.name == ref] or [
        r for r in rows if r.name.split(" [")[0] == ref or r.group_key.startswith(ref)
    ]
    if len(hits) == 1:
        return hits[0]
    if hits:
        keys = ", ".join(f"{r.group_key[:12]} ({r.name})" for r in hits[:6])
        raise PivotError(f"{what} {ref!r} names {len(hits)} groups: {keys}; give a key prefix")
    import difflib

    close = difflib.get_close_matches(ref, [r.name for r in rows], n=4, cutoff=0.6)
    hint = f" (close: {', '.join(close)})" if close else ""
    raise PivotError(f"{what} {ref!r}: no group has this name or key prefix{hint}")


def _check_axis(option: str, path: str, values: list[Any], varying: list[str]) -> None:
    shown = ", ".join(varying[:12]) + (", …" if len(varying) > 12 else "")
    vary = f"paths that vary: {shown}" if varying else "no path varies among the groups"
    if all(v is MISSING for v in values):
        raise PivotError(f"{option} {path}: no group's spec has this path; {vary}")
    if len({_normal(v) for v in values}) < 2:
        raise PivotError(f"{option} {path}: the same in every group; {vary}")


def build_pivot(
    rows: list[GroupRow],
    specs: dict[str, dict[str, Any]],
    rows_path: str,
    cols_path: str,
    metric: Metric = "best",
    baseline: str | None = None,
    digits: int = 2,
) -> Pivot:
    """Lay ``rows`` (groups) out by two spec paths. Raises PivotError (one line) for a path
    that is malformed, that no group has or that does not vary, and for a baseline that
    names no group or several."""
    if not rows:
        raise PivotError("no results yet")
    row_parts, col_parts = parse_path(rows_path), parse_path(cols_path)
    if row_parts == col_parts:
        raise PivotError(f"--rows and --cols both name {rows_path}: choose two paths")
    group_spec = {r.group_key: specs.get(r.group_key, {}) for r in rows}
    varying = varying_paths(group_spec.values())
    row_values = [value_at(group_spec[r.group_key], row_parts) for r in rows]
    col_values = [value_at(group_spec[r.group_key], col_parts) for r in rows]
    _check_axis("--rows", rows_path, row_values, varying)
    _check_axis("--cols", cols_path, col_values, varying)
    base = find_group(rows, baseline, "--baseline") if baseline is not None else None

    row_of = [label(row_parts, v) for v in row_values]
    col_of = [label(col_parts, v) for v in col_values]
    split = _split_rows(rows, group_spec, row_of, col_of, varying)
    for i, r in enumerate(rows):
        if extra := split.get(row_of[i]):
            spec = group_spec[r.group_key]
            apart = [label(parse_path(p), value_at(spec, parse_path(p))) for p in extra]
            row_of[i] = " · ".join([row_of[i], *apart])
    row_labels = _order(list(zip(row_of, row_values, strict=True)))
    col_labels = _order(list(zip(col_of, col_values, strict=True)))
    pivot = Pivot(rows_path, cols_path, metric, row_labels, col_labels, {}, base, split)
    base_stats = pivot.baseline_stats()
    for i, r in enumerate(rows):
        at = (row_labels.index(row_of[i]), col_labels.index(col_of[i]))
        if at in pivot.cells:  # split rows leave none: a safeguard, never a silent mean
            other = pivot.cells[at].group.name
            raise PivotError(
                f"groups {other} and {r.name} fall in one cell ({row_of[i]}, {col_of[i]})"
            )
        stats = r.best if metric == "best" else r.last
        cell = Cell(r, stats, summarize(r, metric, digits), r.digits(digits))
        if (
            base is not None
            and base_stats is not None
            and None not in (base_stats.mean, stats.mean)
        ):
            cell.delta = delta_to(r, base, metric)
            if cell.delta is None:  # 0.74 against 72.1: no difference to take
                pivot.no_delta.append(r.name)
        pivot.cells[at] = cell
    for c in range(len(col_labels)):
        column = [x for (_, cc), x in pivot.cells.items() if cc == c and x.stats.mean is not None]
        if column:
            top = max(x.stats.mean for x in column if x.stats.mean is not None)
            for x in column:
                x.best = x.stats.mean == top
    return pivot


def _values(row: GroupRow, metric: Metric) -> Iterable[float]:
    return (row.best_by_seed if metric == "best" else row.last_by_seed).values()


def delta_to(row: GroupRow, base: GroupRow, metric: Metric = "best") -> float | None:
    """mean(row) − mean(base) of ``metric``; None when either has no mean yet or when
    they are written on different scales (0.74 against 72.1: no difference to take)."""
    mean, base_mean = ((r.best if metric == "best" else r.last).mean for r in (row, base))
    if mean is None or base_mean is None:
        return None
    scale, base_scale = scales(_values(row, metric)), scales(_values(base, metric))
    if scale and base_scale and scale != base_scale:
        return None
    return mean - base_mean


def _split_rows(
    rows: list[GroupRow],
    group_spec: dict[str, dict[str, Any]],
    row_of: list[str],
    col_of: list[str],
    varying: list[str],
) -> dict[str, list[str]]:
    """Per row label whose cells would hold several groups, the fewest paths that tell
    those groups apart, each lifted to the labelled object above it (``student`` rather
    than ``student.depth``, ``student.width``) when that label tells them apart too; the
    experiment's name where nothing else does."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for i, r in enumerate(rows):
        cells.setdefault((row_of[i], col_of[i]), []).append(group_spec[r.group_key])
    collided: dict[str, list[list[dict[str, Any]]]] = {}
    for (row, _), specs in cells.items():
        if len(specs) > 1:
            collided.setdefault(row, []).append(specs)
    return {row: telling_paths(cells_of_row, varying) for row, cells_of_row in collided.items()}


def telling_paths(sets: list[list[dict[str, Any]]], varying: list[str]) -> list[str]:
    """The fewest paths, in spec order, that tell the specs of each set apart, each lifted
    to the labelled object above it (``student`` rather than ``student.depth``,
    ``student.width``) when that label tells them apart too; the experiment's name where
    nothing else does."""
    candidates: list[str] = []
    for specs in sets:
        for path in varying:
            parts = parse_path(path)
            lifted = _lift(parts, specs)
            if len({_normal(value_at(s, parts)) for s in specs}) > 1 and lifted not in candidates:
                candidates.append(lifted)
    chosen: list[str] = []
    for path in candidates:
        if all(_told_apart(specs, chosen) == len(specs) for specs in sets):
            break
        if any(_told_apart(c, [*chosen, path]) > _told_apart(c, chosen) for c in sets):
            chosen.append(path)
    if not all(_told_apart(specs, chosen) == len(specs) for specs in sets):
        chosen.append("name")  # they differ only where no label shows it
    return chosen


def telling_labels(specs: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """Groups (key → frozen experiment) labelled by what differs between them, as a pivot
    row is split: the fewest paths that tell them all apart, and per group its labels at
    those paths joined by " · ". The path with the most different labels comes first, so
    that a label cut short in 80 columns still tells most groups apart
    (``CE+KD(T=4,w=0.7) · WRN16-1(signal)`` beside ``CE+KD(T=8,w=0.7) · …``)."""
    if len(specs) < 2:
        return [], {}
    paths = telling_paths([list(specs.values())], varying_paths(specs.values()))
    texts = {
        p: {key: label(parse_path(p), value_at(spec, parse_path(p))) for key, spec in specs.items()}
        for p in paths
    }
    paths.sort(key=lambda p: -len(set(texts[p].values())))  # stable: spec order within ties
    return paths, {key: " · ".join(texts[p][key] for p in paths) for key in specs}


def _told_apart(specs: list[dict[str, Any]], paths: list[str]) -> int:
    """How many different labels ``specs`` show at ``paths`` together."""
    return len(
        {tuple(label(parse_path(p), value_at(s, parse_path(p))) for p in paths) for s in specs}
    )


def _lift(parts: PathParts, specs: list[dict[str, Any]]) -> str:
    for n in range(1, len(parts) + 1):
        above = parts[:n]
        labelled = _shape(above) in _LABELLED or (
            _shape(above).startswith("loss.") and _shape(above).count(".") == 1
        )
        if labelled and len({label(above, value_at(s, above)) for s in specs}) > 1:
            return path_text(above)
    return path_text(parts)


# ---------------------------------------------------------------------- as text


def delta_text(delta: float, digits: int) -> str:
    """A signed difference, ``+0.83`` or ``−0.10`` (a minus sign, not a hyphen)."""
    return f"{delta:+.{digits}f}".replace("-", "−")


@dataclass(frozen=True)
class CellText:
    """A cell in parts, each format styling them its own way."""

    mean: str  # "86.90 ± 1.74"
    n: int
    mark: str  # PARTIAL_MARK or ""
    delta: str  # "+0.83", "baseline" or ""
    best: bool


def cell_text(pivot: Pivot, cell: Cell) -> CellText:
    if pivot.baseline is not None and cell.group is pivot.baseline:
        delta = "baseline"
    elif cell.delta is not None:
        delta = delta_text(cell.delta, cell.digits)
    else:
        delta = ""
    return CellText(cell.summary.mean, cell.stats.n, cell.summary.mark, delta, cell.best)


def notes(pivot: Pivot, best: str = "bold") -> list[str]:
    """The lines under the table: how to read it, then what each marked cell lacks."""
    what = "best-epoch" if pivot.metric == "best" else "last-epoch"
    lines = [f"mean ± std (n) of the {what} accuracy over seeds; {best}: best of its column"]
    if pivot.metric == "best" and (on := selected_on_note(c.group for c in pivot.cells.values())):
        lines.append(on)
    base = pivot.baseline_stats()
    if pivot.baseline is not None and base is not None and base.mean is not None:
        mean = f"{base.mean:.{pivot.baseline.digits(2)}f}"
        lines.append(f"Δ: mean − the mean of baseline {pivot.baseline.name} ({mean})")
    elif pivot.baseline is not None:
        lines.append(f"Δ: baseline {pivot.baseline.name} has no finished seed yet")
    if pivot.no_delta:
        lines.append(f"no Δ for {', '.join(pivot.no_delta)}: accuracies on another scale")
    for row, paths in pivot.split.items():
        lines.append(f"row {row} split by {', '.join(paths)} (its groups differ there)")
    for _, cell in sorted(pivot.cells.items()):
        if cell.summary.progress:  # seeds to come (marked), failed, cancelled, not finite
            lead = f"{cell.summary.mark} " if cell.summary.mark else ""
            lines.append(f"{lead}{cell.group.name}: {cell.summary.progress}")
    return lines


def to_json(pivot: Pivot) -> dict[str, Any]:
    """The pivot for ``--format json``: labels, then one object per cell with numbers
    rounded to 6 decimals (null where there is none)."""
    from kdtui.results.stats import _round

    base = pivot.baseline
    return {
        "rows_path": pivot.rows_path,
        "cols_path": pivot.cols_path,
        "metric": pivot.metric,
        "rows": pivot.row_labels,
        "cols": pivot.col_labels,
        "split": pivot.split,
        "baseline": None
        if base is None
        else {
            "name": base.name,
            "group_key": base.group_key,
            "mean": _round(pivot.baseline_stats().mean),  # type: ignore[union-attr]
        },
        "cells": [
            {
                "row": pivot.row_labels[r],
                "col": pivot.col_labels[c],
                "name": cell.group.name,
                "group_key": cell.group.group_key,
                **cell.stats.rounded(),
                "delta": _round(cell.delta),
                "best": cell.best,
                "partial": bool(cell.summary.mark),
                "finished": cell.group.n,
                "pending": len(cell.group.pending_seeds),
                "note": cell.summary.progress,
                "best_selected_on": cell.group.best_selected_on,
            }
            for (r, c), cell in sorted(pivot.cells.items())
        ],
    }


def _grid(pivot: Pivot, fmt: Callable[[CellText], str], empty: str) -> list[list[str]]:
    return [
        [
            fmt(cell_text(pivot, cell)) if (cell := pivot.cell(r, c)) else empty
            for c in range(len(pivot.col_labels))
        ]
        for r in range(len(pivot.row_labels))
    ]


def pivot_markdown(pivot: Pivot) -> str:
    """A markdown table: the best mean of each column in bold, the notes under it."""

    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("*", "\\*")

    def fmt(t: CellText) -> str:
        text = f"{f'**{t.mean}**' if t.best else t.mean} ({t.n}){esc(t.mark)}"
        if t.delta == "baseline":
            return text + " (baseline)"
        return text + (f" Δ {t.delta}" if t.delta else "")

    head = [f"{esc(pivot.rows_path)} \\ {esc(pivot.cols_path)}", *map(esc, pivot.col_labels)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label_, cells in zip(pivot.row_labels, _grid(pivot, fmt, ""), strict=True):
        lines.append("| " + " | ".join([esc(label_), *cells]) + " |")
    return "\n".join(lines) + "\n\n" + "".join(f"- {esc(n)}\n" for n in notes(pivot))


def pivot_latex(pivot: Pivot) -> str:
    """A booktabs ``tabular`` ready for a caption: the rows path heads the first column,
    the columns path spans the others, the best mean of each column in \\textbf, the notes
    under \\bottomrule."""
    from kdtui.results.exports import latex_escape as esc

    def fmt(t: CellText) -> str:
        mean = rf"\textbf{{{esc(t.mean)}}}" if t.best else esc(t.mean)
        text = f"{mean} ({t.n}){t.mark}"
        if t.delta == "baseline":
            return text + " (baseline)"
        return text + (rf" $\Delta$ {esc(t.delta)}" if t.delta else "")

    ncols = len(pivot.col_labels)
    lines = [
        f"% {esc(notes(pivot)[0])}",
        rf"\begin{{tabular}}{{l{'r' * ncols}}}",
        r"\toprule",
        rf" & \multicolumn{{{ncols}}}{{c}}{{{esc(pivot.cols_path)}}} \\",
        rf"\cmidrule(lr){{2-{ncols + 1}}}",
        " & ".join([esc(pivot.rows_path), *map(esc, pivot.col_labels)]) + r" \\",
        r"\midrule",
    ]
    for label_, cells in zip(pivot.row_labels, _grid(pivot, fmt, ""), strict=True):
        lines.append(" & ".join([esc(label_), *cells]) + r" \\")
    lines.append(r"\bottomrule")
    for note in notes(pivot)[1:]:
        lines.append(rf"\multicolumn{{{ncols + 1}}}{{l}}{{\footnotesize {esc(note)}}} \\")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def pivot_csv(pivot: Pivot) -> str:
    """One line per cell (a tidy table for a spreadsheet's own pivot), numbers unformatted
    beyond 6 decimals."""
    import csv
    import io

    doc = to_json(pivot)
    head = ["row", "col", "name", "group_key", "n", "mean", "std", "min", "max", "delta"]
    head += ["best", "finished", "pending", "note"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for cell in doc["cells"]:
        writer.writerow(["" if cell[k] is None else cell[k] for k in head])
    return buf.getvalue()


__all__ = [
    "Cell",
    "CellText",
    "Pivot",
    "PivotError",
    "axis_paths",
    "build_pivot",
    "cell_text",
    "delta_to",
    "find_group",
    "group_specs",
    "label",
    "notes",
    "parse_path",
    "pivot_csv",
    "pivot_latex",
    "pivot_markdown",
    "telling_labels",
    "telling_paths",
    "to_json",
    "value_at",
    "varying_paths",
]
