"""``kdtui todo add/ls/done/rm``: the checklist from the shell. What an item is and how a
linked one ticks itself is ``kdtui.todo``, which the app's TODO screen shares."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from kdtui.clikit import Workspace, err, open_store, out
from kdtui.store import Store
from kdtui.todo import DEFAULT_TARGET, close_hint, group_known, todo_items

todo_app = typer.Typer(help="The checklist of experiments still to run.", no_args_is_help=True)


def find_todo(store: Store, ref: str) -> dict[str, Any]:
    """A todo by id or unique id prefix; exits 2 otherwise."""
    todos = store.todos() if store.index_path.exists() else []
    hits = [t for t in todos if t["id"] == ref] or [t for t in todos if t["id"].startswith(ref)]
    if len(hits) != 1:
        err.print(
            f"[red]error:[/] {escape(ref)} matches {'no todo' if not hits else f'{len(hits)} todos'}"
        )
        raise typer.Exit(2)
    return hits[0]


def check_group(store: Store, group: str) -> None:
    """Exit 2 unless ``group`` names a run or a group key of the store: a typo would make
    an item that never ticks."""
    runs = store.runs() if store.index_path.exists() else []
    if group_known(group, runs):
        return
    hint = close_hint(group, runs) or (" (no runs yet)" if not runs else "")
    err.print(
        f"[red]error:[/] --group {escape(repr(group))} matches no experiment name or group key"
        f" in {escape(str(store.root))}{escape(hint)}; --new links a group not run yet"
    )
    raise typer.Exit(2)


@todo_app.command("add")
def add(
    text: Annotated[str, typer.Argument(help="What to do.")],
    group: Annotated[
        str | None,
        typer.Option("--group", "-g", help="Link to an experiment name or group key."),
    ] = None,
    target: Annotated[
        int | None, typer.Option("--target", "-n", min=1, help="Seeds to finish (default 3).")
    ] = None,
    new: Annotated[
        bool,
        typer.Option("--new", help="With --group: a group with no runs yet (no name check)."),
    ] = False,
    workspace: Workspace = None,
) -> None:
    """Add an item; with --group it ticks itself once that many seeds are done."""
    if (target is not None or new) and not group:
        err.print(f"[red]error:[/] {'--target' if target is not None else '--new'} needs --group")
        raise typer.Exit(2)
    text = text.strip()
    if not text:
        err.print("[red]error:[/] say what to do: the item's text is empty")
        raise typer.Exit(2)
    store = open_store(workspace, reconcile=False)
    if group and not new:
        check_group(store, group)
    fields = {"group": group, "target": target or DEFAULT_TARGET} if group else {}
    todo = store.add_todo(text, **fields)
    out.print(f"added {todo['id']}")


@todo_app.command("ls")
def ls(
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    workspace: Workspace = None,
) -> None:
    """List items with their progress."""
    if fmt not in ("table", "json"):
        err.print(f"[red]error:[/] unknown format {fmt!r} (table, json)")
        raise typer.Exit(2)
    store = open_store(workspace, reconcile=False)
    exists = store.index_path.exists()
    items = todo_items(store.todos() if exists else [], store.runs() if exists else [])
    if fmt == "json":
        sys.stdout.write(json.dumps([asdict(i) for i in items], indent=1) + "\n")
        return
    if not items:
        out.print('nothing to do: [bold]kdtui todo add "..."[/]')
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("id", "", "item", "progress"):
        table.add_column(col, no_wrap=col != "item")
    for i in items:
        table.add_row(
            i.id,
            "[green]✓[/]" if i.done else "☐",
            escape(i.text) + (f" [dim]({escape(i.group)})[/]" if i.group else ""),
            i.progress_text,
        )
    out.print(table)


@todo_app.command("done")
def done(
    todo_id: Annotated[str, typer.Argument(metavar="ID", help="Item id or a unique prefix.")],
    undo: Annotated[bool, typer.Option("--undo", help="Untick instead.")] = False,
    unlink: Annotated[
        bool,
        typer.Option(
            "--unlink",
            help="With --undo: drop the item's group, so that it no longer ticks itself.",
        ),
    ] = False,
    workspace: Workspace = None,
) -> None:
    """Tick an item (or untick it with --undo)."""
    if unlink and not undo:
        err.print("[red]error:[/] --unlink needs --undo")
        raise typer.Exit(2)
    store = open_store(workspace, reconcile=False)
    todo = find_todo(store, todo_id)
    fields = {"group": None, "target": None} if unlink and todo.get("group") else {}
    store.update_todo(todo["id"], done=not undo, **fields)
    if undo and not fields and todo.get("group"):
        runs = store.runs() if store.index_path.exists() else []
        (item,) = todo_items([{**todo, "done": False}], runs)
        if item.done:  # ticked by its group's results, not by hand: an untick cannot hold
            out.print(
                f"{todo['id']} stays ticked: it is linked to {escape(repr(item.group))}, whose "
                f"{item.progress_text} seeds are done, and ticks itself; unlink it to untick: "
                f"[bold]kdtui todo done {todo['id']} --undo --unlink[/]",
                soft_wrap=True,
            )
            return
    was = f" (no longer linked to {escape(repr(todo['group']))})" if fields else ""
    out.print(
        f"{'unticked' if undo else 'ticked'} {todo['id']}: {escape(todo['text'])}{was}",
        soft_wrap=True,
    )


@todo_app.command("rm")
def rm(
    todo_id: Annotated[str, typer.Argument(metavar="ID", help="Item id or a unique prefix.")],
    workspace: Workspace = None,
) -> None:
    """Delete an item."""
    store = open_store(workspace, reconcile=False)
    todo = find_todo(store, todo_id)
    store.delete_todo(todo["id"])
    out.print(f"deleted {todo['id']}: {escape(todo['text'])}")
