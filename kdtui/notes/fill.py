"""Filling notes: blank seeds from the store's finished runs, and every average line as
``mean ± std (n=k)``. Only the value slots the parser found change; every other byte of the
file comes back as it was."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kdtui.notes.blocks import Notes
from kdtui.notes.model import Block, NotesError, Slot
from kdtui.notes.outside import source_prefix
from kdtui.results import Stats, group_rows
from kdtui.store import Store, close_names


def format_average(values: list[float], precision: int = 4) -> str:
    """``mean ± std (n=k)`` with the sample std; a single value has no spread to show.
    A nan or inf is left out (``n`` counts the values used); with none left, ``–``."""
    s = Stats.of(values)
    if s.mean is None:
        return "–"
    if s.std is None:
        return f"{s.mean:.{precision}f} (n={s.n})"
    return f"{s.mean:.{precision}f} ± {s.std:.{precision}f} (n={s.n})"


@dataclass(frozen=True)
class Filled:
    """What ``fill`` did to one block."""

    block: Block
    seeds: tuple[tuple[int, str, str], ...]  # (seed index, value written, where it came from)
    average: str | None  # the average line's new value, or None when left alone
    note: str  # why a block was left alone, or ""
    changed: bool
    left_out: tuple[str, ...] = ()  # numbers as written that the average leaves out (inf)


def _fractions(values: list[float]) -> bool | None:
    """Whether accuracies are written as fractions (0.6821) rather than percentages."""
    return all(abs(v) <= 1 for v in values) if values else None


def _like_block(value: float, block: Block, precision: int) -> str:
    """A store value written the way the block writes its numbers: percentages stay
    percentages, fractions fractions, and a ``%`` sign where the others have one."""
    fractions = _fractions(block.numbers)
    if fractions is not None and fractions != _fractions([value]):
        value = value / 100 if fractions else value * 100
    written = [s.text for s in block.seeds if s.kind == "number"]
    percent = bool(written) and all(t.endswith("%") for t in written)
    return f"{value:.{precision}f}" + ("%" if percent else "")


def fill(
    notes: Notes,
    *,
    precision: int = 4,
    seed_values: Mapping[str, Mapping[int, tuple[float, str]]] | None = None,
) -> tuple[bytes, list[Filled]]:
    """The notes with blank seeds filled from ``seed_values`` (block name → seed index →
    (value, origin)) and every average line set to ``mean ± std (n=k)``. Only the value
    slots change; a block with no numbers is left alone, so is one without an average line."""
    edits: list[tuple[Slot, str]] = []
    report = []
    for block in notes.blocks:
        wanted = (seed_values or {}).get(block.name, {})
        written: list[tuple[int, str, str]] = []
        values = list(block.numbers)
        for k, seed in enumerate(block.seeds):
            # "nan" written into the notes would no longer parse as a number
            if seed.kind == "blank" and k in wanted and math.isfinite(wanted[k][0]):
                value, origin = wanted[k]
                text = _like_block(value, block, precision)
                written.append((k, text, origin))
                values.append(float(text.rstrip("%")))
                edits.append((seed.slot, text))
        note, avg = "", None
        if not values:
            note = "no numbers yet, left alone"
        elif not any(math.isfinite(v) for v in values):
            note = "no finite numbers, left alone"
        elif block.average is None:
            note = "no average line"
        else:
            avg = format_average(values, precision)
            if avg != block.average.text:
                edits.append((block.average.slot, avg))
        changed = bool(written) or (avg is not None and avg != block.average.text)
        left_out = tuple(
            s.text for s in block.seeds if s.value is not None and not math.isfinite(s.value)
        )
        report.append(Filled(block, tuple(written), avg, note, changed, left_out))
    data = notes.data
    for slot, text in sorted(edits, key=lambda e: e[0].start, reverse=True):
        data = data[: slot.start] + (slot.pad + text).encode() + data[slot.end :]
    return data, report


def load_mapping(path: Path) -> dict[str, str]:
    """A JSON object: block name in the notes → store group name or group key."""
    try:
        mapping = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotesError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise NotesError(f"{path}: not a JSON mapping ({exc})") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise NotesError(f'{path}: expected {{"block name": "group name or key", ...}}')
    return mapping


@dataclass(frozen=True)
class Unmatched:
    """A block with blank seeds whose title names no group of the store (and ``--map``
    names none for it): its blanks stay blank unless the user maps it."""

    block: Block
    close: tuple[str, ...]  # group names of the store that look like the title


def values_from_store(
    store: Store,
    path: Path,
    notes: Notes,
    mapping: Mapping[str, str] | None = None,
    metric: Literal["best", "last"] = "best",
) -> tuple[dict[str, dict[int, tuple[float, str]]], list[str]]:
    """``match_store`` without the blocks that matched nothing."""
    values, problems, _ = match_store(store, path, notes, mapping, metric)
    return values, problems


def match_store(
    store: Store,
    path: Path,
    notes: Notes,
    mapping: Mapping[str, str] | None = None,
    metric: Literal["best", "last"] = "best",
) -> tuple[dict[str, dict[int, tuple[float, str]]], list[str], list[Unmatched]]:
    """For each block with blank seeds, the finished runs of its group in the store, by
    seed (seed k fills blank item k). The group is the one named like the block (or given
    by ``mapping``); this file's own imported runs do not count. Returns the values, one
    line per problem (a block that could not be matched, a ``mapping`` entry naming no
    block of the notes or no group of the store, a nan or inf seed, left blank) and the
    blocks whose title matches no group, with the names close to it."""
    everything = store.runs()
    own = source_prefix(path)
    runs = [r for r in everything if not str(r.get("source", "")).startswith(own)]
    rows = group_rows(runs)
    by_run = {
        (r["group_key"], r.get("seed")): r["run_id"] for r in runs if r.get("status") == "done"
    }
    values: dict[str, dict[int, tuple[float, str]]] = {}
    problems = []
    unmatched = []
    titles = {b.name for b in notes.blocks}
    # A typo in the mapping would otherwise only show as a blank that stays blank.
    known = {r.get("name") for r in everything} | {r.get("group_key") for r in everything}
    unknown = sorted({v for v in (mapping or {}).values() if v not in known})
    for target in unknown:
        problems.append(f"--map names group {target!r}, which is nowhere in the store")
    for name in sorted(set(mapping or {}) - {b.name for b in notes.blocks}):
        problems.append(f"--map names block {name!r}, which is not in the notes")
    for block in notes.blocks:
        if not block.blanks:
            continue
        target = (mapping or {}).get(block.name, block.name)
        keys = {r.get("group_key") for r in runs if r.get("name") == target}
        keys |= {r.get("group_key") for r in runs if r.get("group_key") == target}
        if len(keys) > 1:
            problems.append(
                f"line {block.line} {block.name}: {target!r} matches {len(keys)} groups ({', '.join(sorted(k[:12] for k in keys))}); pick one with --map"
            )
            continue
        row = next((r for r in rows if r.group_key in keys), None)
        if row is None:
            if block.name in (mapping or {}) and target not in unknown:
                problems.append(f"line {block.line} {block.name}: no group {target!r} in the store")
            elif block.name not in (mapping or {}):
                # a group named like another block is that block's, not a likely meaning
                close = [n for n in close_names(block.name, runs) if n not in titles]
                unmatched.append(Unmatched(block, tuple(close)))
            continue
        by_seed = row.best_by_seed if metric == "best" else row.last_by_seed
        blank = {k for k, s in enumerate(block.seeds) if s.kind == "blank"}
        for seed in sorted(blank & {k for k, v in by_seed.items() if not math.isfinite(v)}):
            problems.append(
                f"line {block.line} {block.name}: seed {seed} is {by_seed[seed]} in the store, left blank"
            )
        values[block.name] = {
            seed: (value, by_run.get((row.group_key, seed), row.group_key))
            for seed, value in by_seed.items()
            if math.isfinite(value)
        }
    return values, problems, unmatched
