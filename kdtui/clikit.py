"""What every ``kdtui`` command shares: consoles, the workspace option, opening the store
(with crash reconciliation), finding runs by id, the words of an invalid spec, and aligned
printing. The number formats live in
``kdtui.fmt`` (the app shows the same text); they are re-exported here for the commands."""

from __future__ import annotations

import contextlib
import gc
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.style import Style

from kdtui import executors, launcher
from kdtui.fmt import fmt_acc, fmt_age, fmt_epoch, plural
from kdtui.store import Store, StoreError, default_workspace, describe_os_error

if TYPE_CHECKING:
    from kdtui.spec import SpecError

__all__ = [
    "STATUS_STYLE",
    "Workspace",
    "check_workspace",
    "err",
    "fmt_acc",
    "fmt_age",
    "find_runs",
    "fmt_epoch",
    "open_store",
    "out",
    "plural",
    "print_grid",
    "print_spec_error",
    "unwrap_help",
]

# Piped into a file or another program, output is not cut to Rich's default 80 columns
# (loss labels are long); COLUMNS, when set, still decides.
PIPED_WIDTH = 200
out = Console(highlight=False)
if not out.is_terminal and "COLUMNS" not in os.environ:
    out.width = PIPED_WIDTH
# soft_wrap: an error stays one line when piped (greppable); a terminal wraps it itself
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether ``name`` was typed on this context's command line (not env var, not default).
    By the source's name: typer vendors click, so its ParameterSource is not importable."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _resolve_workspace(
    ctx: typer.Context, param: typer.CallbackParam, value: Path | None
) -> Path | None:
    """A subcommand's --workspace, else the one given before it (``kdtui -w DIR ls``), else
    KDTUI_WORKSPACE or nothing (``default_workspace``). Every command's option runs this,
    so the top-level option reaches them all, sub-apps included."""
    if param.name is None or _given(ctx, param.name):
        return value
    parent = ctx.parent
    while parent is not None:
        if param.name in parent.params and _given(parent, param.name):
            return parent.params[param.name]
        parent = parent.parent
    return value


Workspace = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="KDTUI_WORKSPACE",
        help="Workspace folder (default ./runs).",
        show_default=False,
        callback=_resolve_workspace,
    ),
]


def whole_paragraphs(text: str) -> str:
    """``text`` with each paragraph on one line (paragraphs stay apart)."""
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(text).split("\n\n"))


def unwrap_help(app: typer.Typer) -> None:
    """Make every command's help (docstrings written over several source lines) read as
    whole paragraphs. Typer's rich help keeps a docstring's single line breaks in the
    command list and in later paragraphs, so at 80 columns a sentence broke where the
    source line did. Called once every command is registered; sub-apps included."""
    for info in app.registered_commands:
        text = info.help or inspect.getdoc(info.callback)
        if text:
            info.help = whole_paragraphs(text)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            unwrap_help(group.typer_instance)


STATUS_STYLE = {
    "queued": "cyan",
    "running": "yellow",
    "done": "green",
    "failed": "red",
    "crashed": "magenta",
    "cancelled": "dim",
}


def check_workspace(root: Path) -> Path:
    """Exit 2 unless ``root`` is, or can become, a folder: a file there (or in its path)
    would otherwise surface as a NotADirectoryError traceback, or as an empty workspace."""
    for path in (root, *root.parents):
        if path.exists():
            if not path.is_dir():
                where = "" if path == root else f" ({path} is a file)"
                err.print(
                    f"[red]error:[/] workspace {escape(str(root))} is not a directory{escape(where)}"
                )
                raise typer.Exit(2)
            break
    return root


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the index is parsed, then move what was
    made to its oldest generation unwalked (``gc.freeze`` + ``unfreeze``). A study's index
    is tens of thousands of dicts and lists, none in a cycle: the collector walked them
    over and over as they were made, then in a full collection, ~30 ms of a 0.3 s ``kdtui
    ls`` at 10,000 runs. Reference counting frees them as before; a later full collection
    still sees them. Nothing is promoted when someone else froze objects (unfreeze would
    release theirs)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()


def open_store(workspace: Path | None, reconcile: bool = True) -> Store:
    """The workspace's store, with crashed runs detected and any recovery announced."""
    store = Store(check_workspace(workspace or default_workspace()))
    with collector_paused():
        store.load()  # a lost or damaged index is rebuilt here, before any command reads it
    try:
        if reconcile and store.index_path.exists():
            for line in executors.reconcile(store):
                err.print(f"[magenta]reconciled[/] {escape(line)}")
        if reconcile and (waiting := launcher.revive_runner(store)):
            err.print(
                f"[magenta]restarted[/] the queue runner: {plural(waiting, 'run')} waited for it"
            )
    except (OSError, StoreError) as exc:  # a read-only workspace, a full disk: reads go on
        text = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        err.print(f"[yellow]kdtui:[/] crashed runs not checked: {escape(text)}")
    for notice in store.notices:
        err.print(f"[yellow]kdtui:[/] {escape(notice)}")
    return store


def print_grid(
    headers: list[str], rows: list[list[str]], *, right: set[int], styles: list[str | None]
) -> None:
    """Aligned columns, written in one go. Rich's Table measures every cell and takes
    seconds for thousands of rows; this takes milliseconds. ``styles[i]`` colours row i's
    second column (the status); the last column is cut to the terminal's width."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fixed = sum(widths[:-1]) + 2 * (len(widths) - 1)
    widths[-1] = max(4, min(widths[-1], out.width - fixed)) if out.is_terminal else widths[-1]
    colour = out.is_terminal and not out.no_color
    # One format for every line (10,000 rows of `kdtui ls` in milliseconds); the coloured
    # column is padded, then styled, once per distinct value.
    aligned = [f"{{:{'>' if i in right else '<'}{w}}}" for i, w in enumerate(widths)]
    plain = "  ".join(aligned)
    styled_fmt = "  ".join(["{}" if i == 1 else a for i, a in enumerate(aligned)])
    rendered: dict[tuple[str, str], str] = {}

    def line(cells: list[str], style: str | None = None) -> str:
        if len(cells[-1]) > widths[-1]:
            cells = [*cells[:-1], cells[-1][: max(0, widths[-1] - 1)] + "…"]
        if not (colour and style and len(cells) > 1):
            return plain.format(*cells).rstrip()
        key = (cells[1], style)
        if key not in rendered:
            rendered[key] = Style.parse(style).render(
                aligned[1].format(cells[1]), color_system=out.color_system
            )
        return styled_fmt.format(cells[0], rendered[key], *cells[2:]).rstrip()

    head = line(headers)
    if colour:
        head = Style(bold=True).render(head, color_system=out.color_system)
    out.file.write(
        "\n".join([head, *(line(r, s) for r, s in zip(rows, styles, strict=True))]) + "\n"
    )
    out.file.flush()


def find_runs(store: Store, refs: list[str]) -> list[dict[str, Any]]:
    """Runs by id or unique id prefix; exits 2 naming any reference that matches none or many."""
    runs = store.runs()
    found = []
    for ref in refs:
        hits = [r for r in runs if r["run_id"] == ref] or [
            r for r in runs if r["run_id"].startswith(ref)
        ]
        if len(hits) != 1:
            ids = ", ".join(r["run_id"] for r in hits[:5]) + (", …" if len(hits) > 5 else "")
            what = f"{len(hits)} runs ({ids}): give more of the id" if hits else "no run"
            err.print(f"[red]error:[/] {escape(ref)!s} matches {escape(what)}")
            raise typer.Exit(2)
        found.append(hits[0])
    return found


def print_spec_error(exc: SpecError) -> None:
    """Every problem of an invalid spec, one per line, under its source."""
    err.print(f"[red]invalid spec[/] {escape(exc.source)}: {plural(len(exc.problems), 'problem')}")
    for problem in exc.problems:
        err.print(f"  {escape(str(problem))}")
