"""Outside results: numbers from notes (``import_notes``) or typed by hand (``record``),
stored as ordinary finished runs, each with a run folder, so that results tables and a
rebuilt index see them like any other run (source ``notes:<file>:<line>`` or ``record``)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdtui.notes.blocks import Notes
from kdtui.notes.model import (
    EXTERNAL_DATASET,
    Block,
    Item,
    NotesError,
    Skipped,
    accuracy_problem,
)
from kdtui.results import scales
from kdtui.store import Store, atomic_write, close_names, fold_event, initial_summary, names_key


def source_prefix(path: Path) -> str:
    """How the runs imported from ``path`` start their ``source`` (then the line)."""
    return f"notes:{path.resolve()}:"


def group_key_for(name: str) -> str:
    """The group of outside results with this name: stable across imports and machines."""
    return "notes-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def _slug(text: str, size: int) -> str:
    """A run-id-safe piece of a title (ASCII letters, digits, . _ + -)."""
    return re.sub(r"[^A-Za-z0-9._+]+", "-", text).strip("-._+")[:size].strip("-._+")


def _external_run(
    run_id: str,
    *,
    name: str,
    group_key: str,
    seed: int,
    value: float,
    source: str,
    created: float,
    label: str,
    loss: str = "–",
    dataset: str = EXTERNAL_DATASET,
    **extra: Any,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The frozen spec, end event and index summary of one outside result. The summary is
    built exactly as a rebuild of the index from the run folder would build it."""
    spec = {
        "run_id": run_id,
        "seed": seed,
        "group_key": group_key,
        "created": created,
        "label": label,
        "loss_label": loss,
        "needs": [],
        "source": source,
        "experiment": {"name": name, "epochs": None, "data": {"dataset": dataset}},
        "external": extra,
    }
    event = {
        "type": "end",
        "status": "done",
        "best_acc": value,
        "last_acc": value,
        "time": time.time(),
    }
    summary = initial_summary(spec)
    fold_event(summary, event)
    return spec, event, summary


def _write_runs(
    store: Store, runs: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]
) -> None:
    """Folders first (spec + the one end event), then the index: a crash in between leaves
    folders that ``kdtui doctor`` indexes."""
    for spec, event, _ in runs:
        run_dir = store.run_dir(spec["run_id"])
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "spec.json", json.dumps(spec, indent=2).encode())
        atomic_write(run_dir / "events.jsonl", json.dumps(event).encode() + b"\n")
    store.put_runs([summary for _, _, summary in runs])


@dataclass(frozen=True)
class Imported:
    added: int
    changed: int
    unchanged: int
    removed: int
    skipped: tuple[Skipped, ...] = ()  # numbers not imported, and why


def _written_as(value: Any, item: Item) -> bool:
    """Whether ``value`` is the number ``item`` holds, to the decimals written there."""
    if not isinstance(value, int | float) or item.value is None:
        return False
    digits = item.text.rstrip("% \t").partition(".")[2]
    return round(value, len(digits)) == item.value


def import_notes(store: Store, path: Path, notes: Notes) -> Imported:
    """Every number of every block becomes a finished run of the block's group. Run ids
    come from the file, the block name and the seed index, so importing again updates
    those runs, and runs of this file whose number is gone (blanked, block renamed) go.

    A number is skipped (and reported) when it is no accuracy (nan, inf, outside 0–100),
    or when the store already holds that seed of the group from elsewhere (a recorded
    value, a trained run, another file): importing it would count the seed twice. The
    value ``fill --from-store`` wrote there is that seed itself: counted unchanged."""
    runs = store.runs()
    prefix = source_prefix(path)
    existing = {r["run_id"]: r for r in runs if str(r.get("source", "")).startswith(prefix)}
    plan = _ImportPlan(path, existing, _held_elsewhere(runs, existing))
    for block in notes.blocks:
        plan.block(block)
    _write_runs(store, plan.writes)
    gone = sorted(set(existing) - plan.wanted)
    if gone:
        store.delete_runs(gone)
        for run_id in gone:
            shutil.rmtree(store.run_dir(run_id), ignore_errors=True)
    added = sum(spec["run_id"] not in existing for spec, _, _ in plan.writes)
    skipped = tuple(plan.skipped)
    return Imported(added, len(plan.writes) - added, plan.unchanged, len(gone), skipped)


def _held_elsewhere(
    runs: list[dict[str, Any]], existing: dict[str, dict[str, Any]]
) -> dict[tuple[Any, Any], dict[str, Any]]:
    """(group key, seed) → the latest finished run not imported from this file."""
    elsewhere = {}
    for r in sorted(runs, key=lambda r: r.get("created") or 0):  # the latest one is named
        if r.get("status") == "done" and r["run_id"] not in existing:
            elsewhere[(r.get("group_key"), r.get("seed"))] = r
    return elsewhere


@dataclass
class _ImportPlan:
    """What importing one file does, block by block: the runs to write, the run ids it
    keeps, the numbers already there as they are, and the numbers skipped with why."""

    path: Path
    existing: dict[str, dict[str, Any]]  # this file's runs in the store, by run id
    elsewhere: dict[tuple[Any, Any], dict[str, Any]]
    writes: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = field(
        default_factory=list
    )
    wanted: set[str] = field(default_factory=set)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    def block(self, block: Block) -> None:
        tag = hashlib.sha256(str(self.path.resolve()).encode() + b"\0" + block.name.encode())
        stem = "-".join(p for p in ("notes", _slug(block.name, 40), tag.hexdigest()[:10]) if p)
        group_key = group_key_for(block.name)
        for seed, item in enumerate(block.seeds):
            if item.value is None:
                continue
            verdict = _admit(block, seed, item, self.elsewhere.get((group_key, seed)))
            if isinstance(verdict, Skipped):
                self.skipped.append(verdict)
            elif verdict:
                self.unchanged += 1  # the value `fill --from-store` wrote here: nothing to say
            else:
                self.number(block, seed, item, f"{stem}-s{seed}", group_key)

    def number(self, block: Block, seed: int, item: Item, run_id: str, group_key: str) -> None:
        """One number to import: written unless its run holds it already."""
        self.wanted.add(run_id)
        old = self.existing.get(run_id)
        source = f"{source_prefix(self.path)}{item.line}"
        self.created += 1e-6  # keeps the file's order when sorting by creation time
        if old and (old.get("best_acc"), old.get("source"), old.get("name")) == (
            item.value,
            source,
            block.name,
        ):
            self.unchanged += 1
            return
        assert item.value is not None
        self.writes.append(
            _external_run(
                run_id,
                name=block.name,
                group_key=group_key,
                seed=seed,
                value=item.value,
                source=source,
                created=old["created"] if old else self.created,
                label=f"from {self.path.name}",
                file=str(self.path.resolve()),
                line=item.line,
                text=item.text,
            )
        )


def _admit(block: Block, seed: int, item: Item, other: dict[str, Any] | None) -> Skipped | bool:
    """Whether a number is imported: False to import it, True when the store holds it as
    that seed already (from ``fill --from-store``), or why it is skipped."""
    assert item.value is not None
    problem = accuracy_problem(item.value, item.text)
    if problem:
        return Skipped(item.line, block.name, f"seed {seed}: {problem}")
    if other is None:
        return False
    if _written_as(other.get("best_acc"), item):
        return True
    reason = f"seed {seed} of {block.name} is already in the store as run {other['run_id']}"
    return Skipped(item.line, None, reason)


def record(
    store: Store,
    group: str,
    value: float,
    *,
    seed: int | None = None,
    note: str | None = None,
    force: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """Add one outside result by hand to the group named (or keyed) ``group``: an existing
    group keeps its labels; a new name starts an outside group like an imported block.
    Recording the same group and seed again replaces the value. Returns the run summary and
    the warnings a user should see: a new group whose name looks like an existing one (a
    typo?), a value put beside seeds that kdtui trained. A value that is no accuracy (nan,
    inf, outside 0–100), or on another scale (percent or fraction) than the group's unless
    ``force``, is refused with a NotesError."""
    problem = accuracy_problem(value)
    if problem:
        raise NotesError(problem)
    with store.batch():  # the next free seed is chosen and taken in one locked step
        return _record(store, group, value, seed, note, force)


def _record(
    store: Store, group: str, value: float, seed: int | None, note: str | None, force: bool
) -> tuple[dict[str, Any], list[str]]:
    """``record`` under the workspace lock: what the store holds decides the seed, and the
    run's folder and summary are written before anyone else can take it."""
    runs = store.runs()
    key = _group_key_named(group, runs)
    members = [r for r in runs if r.get("group_key") == key]
    warnings = []
    if not members and (close := close_names(group, runs)):
        warnings.append(f"{group!r} is a new group (close: {', '.join(close)})")
    if seed is None and any(r.get("source", "kdtui") == "kdtui" for r in members):
        warnings.append(f"{group!r} has runs trained by kdtui: this value joins their mean")
    if seed is None:
        used = {r.get("seed") for r in members}
        seed = next(s for s in range(len(used) + 1) if s not in used)
    warnings += _seed_replaced(group, members, seed, value)
    _check_scale(group, members, seed, value, force)
    like = max(members, key=lambda r: r.get("created", 0)) if members else {}
    name = like.get("name", group)
    run_id = "-".join(p for p in ("record", _slug(name, 40), key[-10:], f"s{seed}") if p)
    run = _external_run(
        run_id,
        name=name,
        group_key=key,
        seed=seed,
        value=value,
        source="record",
        created=time.time(),
        label=like.get("label") or "recorded by hand",
        loss=like.get("loss") or "–",
        dataset=like.get("dataset") or EXTERNAL_DATASET,
        note=note,
    )
    _write_runs(store, [run])
    return run[2], warnings


def _group_key_named(group: str, runs: list[dict[str, Any]]) -> str:
    """The key of the one group named ``group`` (or keyed by it, a prefix will do), or a
    new outside group's key; a name shared by several groups is refused."""
    keys = sorted(
        {
            r["group_key"]
            for r in runs
            if group == r.get("name") or names_key(group, r.get("group_key") or "")
        }
    )
    if len(keys) > 1:
        raise NotesError(
            f"{group!r} names {len(keys)} groups ({', '.join(k[:12] for k in keys)}); give its group key instead"
        )
    return keys[0] if keys else group_key_for(group)


def _seed_replaced(group: str, members: list[dict[str, Any]], seed: int, value: float) -> list[str]:
    """Only a value recorded by hand is replaced by another (and said, when it differs);
    a seed trained or imported is refused."""
    held = [r for r in members if r.get("seed") == seed and r.get("source") != "record"]
    if held:
        raise NotesError(
            f"seed {seed} of {group!r} is run {held[0]['run_id']} "
            f"(from {held[0].get('source')}); record another seed"
        )
    replaced = [r for r in members if r.get("seed") == seed and r.get("source") == "record"]
    if replaced and replaced[0].get("best_acc") != value:
        return [f"seed {seed} was {replaced[0].get('best_acc')} (recorded before): replaced"]
    return []


def _check_scale(
    group: str, members: list[dict[str, Any]], seed: int, value: float, force: bool
) -> None:
    """Refuse a fraction among percentages or the reverse (unless ``force``): 0.7 beside
    70s would make the group's mean mean nothing."""
    theirs = scales(
        r["best_acc"]
        for r in members
        if r.get("status") == "done" and r.get("best_acc") is not None and r["seed"] != seed
    )
    mine = scales([value])
    if force or not mine or not theirs or not mine.isdisjoint(theirs):
        return
    kind, other = (
        ("fractions", value / 100) if "fraction" in theirs else ("percentages", value * 100)
    )
    raise NotesError(
        f"the other results of {group!r} are {kind}: write {other:g}, or --force for {value:g}"
    )
