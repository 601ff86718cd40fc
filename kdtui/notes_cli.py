"""``kdtui notes import|fill``, ``kdtui record`` and ``kdtui todo import``: the notes round
trip on the command line. The work is in ``kdtui.notes``; this module reads arguments and
prints what happened."""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from kdtui.clikit import Workspace, err, open_store, out
from kdtui.notes import (
    DEFAULT_LABELS,
    Filled,
    Notes,
    NotesError,
    Skipped,
    Unmatched,
    accuracy_problem,
    fill,
    import_notes,
    import_todos,
    load_mapping,
    match_store,
    parse_number,
    read_notes,
)
from kdtui.notes import record as record_result
from kdtui.store import atomic_write

BLOCK_HELP = (
    "A result block is a title (a list item, a heading, or the line right above the list) "
    "with a list under it: one number per seed (blank items are seeds not run yet) and a last "
    "item '<label> :' for the average. Markdown bullets and HTML <ul>/<li> lists both work."
)

NOTES_HELP = "Markdown notes ⇄ the store: import past results, fill in their averages."
notes_app = typer.Typer(
    help=f"{NOTES_HELP} {BLOCK_HELP}",
    short_help=NOTES_HELP,
    no_args_is_help=True,
    add_completion=False,
)

NotesFile = Annotated[Path, typer.Argument(metavar="NOTES.md", help="The markdown notes file.")]
Labels = Annotated[
    list[str] | None,
    typer.Option(
        "--label",
        "-l",
        help=f"Another average label, besides {', '.join(DEFAULT_LABELS)} (repeatable).",
        show_default=False,
    ),
]


def _say(message: str) -> None:
    """One line of output, never re-wrapped, so it stays greppable when piped."""
    out.print(message, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(2)


def _read(path: Path, labels: list[str] | None) -> Notes:
    try:
        return read_notes(path, (*DEFAULT_LABELS, *(labels or ())))
    except NotesError as exc:
        raise _fail(str(exc)) from None


def _print_skipped(notes: Notes) -> None:
    n = len(notes.skipped)
    _print_skips(f"{n} list{'s' * (n != 1)} that look{'s' * (n == 1)} like results", notes.skipped)


def _print_skips(what: str, skipped: Sequence[Skipped]) -> None:
    """``skipped WHAT:`` and a line each (file line, block title, why)."""
    if skipped:
        _say(f"skipped {what}:")
    for s in skipped:
        title = f"{s.title}: " if s.title else ""
        _say(f"  line {s.line}  {escape(title + s.reason)}")


def _no_blocks(path: Path, notes: Notes) -> bool:
    """Say so when the file has no result blocks; else warn of blocks whose numbers mix
    fractions and percentages (imported and averaged as written, the user decides)."""
    for b in notes.blocks:
        if b.mixed_scale:
            err.print(f"[yellow]warning:[/] line {b.line}  {escape(b.name)}: {b.mixed_scale}")
    if notes.blocks:
        return False
    _say(f"no result blocks in {escape(str(path))}. {BLOCK_HELP}")
    _print_skipped(notes)
    return True


@notes_app.command("import")
def import_cmd(notes_file: NotesFile, label: Labels = None, workspace: Workspace = None) -> None:
    """Import every result block as a group of finished runs (one per number).

    Importing the same file again updates those runs in place, and drops the runs of
    numbers that are no longer in it. A number that is no accuracy, or a seed the store
    already holds from elsewhere (a recorded value, a trained run), is skipped and listed."""
    notes = _read(notes_file, label)
    if _no_blocks(notes_file, notes):
        return
    store = open_store(workspace)
    # The store first: output piped into `head` may end the process at any print. A store
    # that cannot be written is kdtui's main's to say: one line, exit 1, as everywhere.
    done = import_notes(store, notes_file, notes)
    n_numbers = sum(len(b.numbers) for b in notes.blocks)
    n_blanks = sum(b.blanks for b in notes.blocks)
    _say(
        f"{escape(str(notes_file))}: {len(notes.blocks)} result blocks, "
        f"{n_numbers} numbers, {n_blanks} blank seeds"
    )
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("line", justify="right")
    table.add_column("block", ratio=1)
    table.add_column("numbers", justify="right")
    table.add_column("blank", justify="right")
    table.add_column("average")
    for b in notes.blocks:
        avg = "none" if b.average is None else (b.average.text or "empty")
        table.add_row(str(b.line), escape(b.name), str(len(b.numbers)), str(b.blanks), escape(avg))
    out.print(table)
    _print_skipped(notes)
    n = len(done.skipped)
    _print_skips(f"{n} number{'s' * (n != 1)}", done.skipped)
    _say(
        f"runs in {escape(str(store.root))}: {done.added} added, {done.changed} changed, "
        f"{done.unchanged} unchanged, {done.removed} removed"
    )


@notes_app.command("fill")
def fill_cmd(
    notes_file: NotesFile,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Print a unified diff; change nothing.")
    ] = False,
    from_store: Annotated[
        bool,
        typer.Option(
            "--from-store",
            help="First fill blank seed items from finished runs of the group named like the "
            "block (blank item k takes seed k).",
        ),
    ] = False,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--map",
            metavar="FILE.json",
            help='With --from-store: {"block name": "group name or key"} for blocks named '
            "differently from their group.",
        ),
    ] = None,
    metric: Annotated[
        str, typer.Option(help="With --from-store: best or last epoch accuracy.")
    ] = "best",
    precision: Annotated[
        int, typer.Option(min=0, max=12, help="Decimals written for means, stds and seeds.")
    ] = 4,
    label: Labels = None,
    workspace: Workspace = None,
) -> None:
    """Write 'mean ± std (n=k)' (sample std) on each block's average line.

    Only the values change: every other byte of the file stays as it was, a backup goes
    next to it (NOTES.md.bak), and running it again changes nothing. Blocks with no numbers
    are left alone."""
    if metric not in ("best", "last"):
        raise _fail(f"unknown metric {metric!r} (best, last)")
    if mapping and not from_store:
        raise _fail("--map only applies with --from-store")
    notes = _read(notes_file, label)
    if _no_blocks(notes_file, notes):
        return
    values = None
    if from_store:
        which: Literal["best", "last"] = "best" if metric == "best" else "last"
        values = _store_values(notes_file, notes, mapping, which, workspace)
    new, report = fill(notes, precision=precision, seed_values=values)
    if dry_run:
        _print_diff(notes_file, notes.data, new)
        n = sum(f.changed for f in report)
        err.print(f"dry run: nothing written ({n} block{'s' * (n != 1)} would change)")
        return
    _print_filled(report)
    if new == notes.data:
        _say(f"nothing to change in {escape(str(notes_file))}")
        return
    try:
        backup = _write_with_backup(notes_file, notes.data, new)
    except OSError as exc:
        raise _fail(f"{notes_file}: not written ({exc.strerror}): {exc.filename}") from None
    _say(f"wrote {escape(str(notes_file))} (backup: {escape(str(backup))})")


def _print_filled(report: Sequence[Filled]) -> None:
    """A line per block (its new average, or why it was left alone), a line per seed filled."""
    for f in report:
        old = f.block.average.text if f.block.average else ""
        what = f.note or f.average or ""
        if f.average and old and old != f.average:
            what += f" (was {old})"
        if f.left_out:
            what += f"; left out, not finite: {', '.join(f.left_out)}"
        state = "" if f.changed or f.note else "  [dim]unchanged[/]"
        _say(f"  line {f.block.line}  {escape(f.block.name)}: {escape(what)}{state}")
        for seed, text, origin in f.seeds:
            _say(f"      seed {seed} ← {escape(text)} ({escape(origin)})")


def _store_values(
    path: Path,
    notes: Notes,
    mapping_file: Path | None,
    metric: Literal["best", "last"],
    workspace: Path | None,
) -> dict[str, dict[int, tuple[float, str]]]:
    try:
        mapping = load_mapping(mapping_file) if mapping_file else None
    except NotesError as exc:
        raise _fail(str(exc)) from None
    store = open_store(workspace)
    if not store.index_path.exists():
        raise _fail(
            f"no results store in {store.root} (--workspace, or run some experiments first)"
        )
    values, problems, unmatched = match_store(store, path, notes, mapping, metric)
    for line in problems:
        err.print(f"[yellow]--from-store:[/] {escape(line)}")
    _print_unmatched(unmatched)
    return values


def _print_unmatched(unmatched: Sequence[Unmatched]) -> None:
    """Name the blocks whose title matches no group (their blanks stay blank) and show the
    ``--map`` that would name their groups, with the store's close names where there are
    some: otherwise a fill only says how many blocks changed."""
    if not unmatched:
        return
    n = len(unmatched)
    err.print(
        f"[yellow]--from-store:[/] {n} block{'s' * (n != 1)} with blank seeds "
        f"match{'es' * (n == 1)} no group of the store by title (their own imported "
        "numbers aside):",
        soft_wrap=True,
    )
    for u in unmatched:
        close = f" (close: {', '.join(u.close)})" if u.close else ""
        err.print(f"  line {u.block.line}  {escape(u.block.name)}{escape(close)}", soft_wrap=True)
    example = {u.block.name: u.close[0] for u in unmatched if u.close}
    example = example or {unmatched[0].block.name: "GROUP"}
    err.print(
        "  name their groups (as in kdtui table) with --map FILE.json, e.g. "
        + escape(json.dumps(example, ensure_ascii=False)),
        soft_wrap=True,
    )


def _print_diff(path: Path, old: bytes, new: bytes) -> None:
    diff = difflib.unified_diff(
        old.decode().splitlines(keepends=True),
        new.decode().splitlines(keepends=True),
        fromfile=str(path),
        tofile=f"{path} (filled)",
    )
    sys.stdout.writelines(line if line.endswith("\n") else line + "\n" for line in diff)


def _write_with_backup(path: Path, old: bytes, new: bytes) -> Path:
    """The old bytes to NOTES.md.bak, then the new file in place, both atomically and
    with the file's permissions (a symlink's target is what gets written)."""
    target = path.resolve()
    backup = path.with_name(path.name + ".bak")
    mode = target.stat().st_mode & 0o7777
    for dest, data in ((backup, old), (target, new)):
        atomic_write(dest, data)
        os.chmod(dest, mode)
    return backup


def record(
    group: Annotated[
        str,
        typer.Argument(
            help="Group name (as in kdtui table) or group key; a new name starts a group."
        ),
    ],
    value: Annotated[
        str, typer.Argument(help="The accuracy, as you would write it (68.2063, 0.6821, 68.2%).")
    ],
    seed: Annotated[
        int | None, typer.Option(min=0, help="Seed index (default: the group's first free one).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Where this number comes from.")] = None,
    force: Annotated[
        bool,
        typer.Option(help="Record it even on another scale (fraction, percent) than the group's."),
    ] = False,
    workspace: Workspace = None,
) -> None:
    """Add an outside result by hand: a finished run of GROUP with this accuracy. A
    recorded value is removed again with `kdtui rm RUN`."""
    number = parse_number(value)
    if number is None:
        raise _fail(f"not a number: {value!r}")
    problem = accuracy_problem(number, value.strip())  # before a workspace is created
    if problem:
        raise _fail(problem)
    store = open_store(workspace)
    try:
        run, warnings = record_result(store, group, number, seed=seed, note=note, force=force)
    except NotesError as exc:  # a store that cannot be written: kdtui's main, exit 1
        raise _fail(str(exc)) from None
    _say(
        f"recorded {escape(value.strip())} as seed {run['seed']} of {escape(run['name'])} "
        f"(group {run['group_key'][:12]}, run {run['run_id']})"
    )
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")


def todo_import(
    notes_file: NotesFile,
    section: Annotated[
        str, typer.Option("--section", "-s", help="The heading whose list items become TODOs.")
    ],
    workspace: Workspace = None,
) -> None:
    """Turn the list items under a heading into TODO items.

    Nested items go into their item's text; '- \\[x] ...' items come in ticked; items
    imported before are skipped."""
    notes = _read(notes_file, None)
    try:
        items = notes.todo_section(section)
    except NotesError as exc:
        raise _fail(f"{notes_file}: {exc}") from None
    if not items:
        _say(f"no list items under {escape(section)!r} in {escape(str(notes_file))}")
        return
    store = open_store(workspace)
    added, skipped = import_todos(store, notes_file, section, items)  # write errors: exit 1
    _say(
        f"{added} TODO item{'s' * (added != 1)} added from {escape(section)!r}, "
        f"{skipped} already imported"
    )
