"""``kdtui table`` and ``kdtui compare``: the results as the terminal, a paper (markdown,
LaTeX) or a script (json, csv) reads them. The statistics live in ``kdtui.results``; this
module parses options and prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.style import Style
from rich.table import Table

from kdtui.clikit import Workspace, err, open_store, out
from kdtui.results import (
    CompareError,
    Comparison,
    GroupRow,
    Metric,
    PivotError,
    build_pivot,
    compare_groups,
    csv_table,
    find_group,
    group_rows,
    group_specs,
    latex_table,
    markdown_table,
    mean_and_mark,
    summarize,
)
from kdtui.results.pivot import (
    Pivot,
    cell_text,
    delta_text,
    notes,
    pivot_csv,
    pivot_latex,
    pivot_markdown,
)
from kdtui.results.pivot import to_json as pivot_json
from kdtui.results.stats import selected_on_note

TABLE_FORMATS = ("table", "json", "markdown", "csv", "latex")
BEST_MARK = "▲"  # after the best mean of a pivot column: bold alone is lost in a pipe


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(2)


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise _fail(f"unknown {option} {value!r} ({', '.join(allowed)})")


def print_rows(rows: list[GroupRow]) -> None:
    """The results table; each group's models and loss go on a dim second line, so the
    numbers keep their columns in an 80-column terminal. A mean over the seeds finished
    so far is marked ``*`` and the group says how many have."""
    if not rows:
        out.print("no results yet")
        return
    partial = False
    chosen = {row.best_selected_on for row in rows} - {None}
    cells = []
    for row in rows:
        best = summarize(row, "best")  # fractions get 4 places
        last, last_mark = mean_and_mark(row, "last")  # of the last epoch, only the mean
        partial = partial or bool(best.mark or last_mark)
        said = row.status_note(progress=True)
        on_test = "°" if len(chosen) > 1 and row.best_selected_on == "test" else ""
        numbers = [str(row.n), best.marked_mean, last + last_mark, best.min, best.max]
        cells.append((row.name + on_test, said, f"{row.label} · {row.loss}", numbers))
    if len(rows) > MANY_ROWS:
        _print_many_rows(cells)
    else:
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("group", ratio=1)
        table.add_column("n", justify="right")
        for col in ("best acc %", "last acc %"):
            table.add_column(col, justify="right", no_wrap=True)
        table.add_column("min", justify="right")
        table.add_column("max", justify="right")
        for name, said, label, numbers in cells:
            note = f"  [yellow]{escape(said)}[/]" if said else ""
            table.add_row(f"[bold]{escape(name)}[/]{note}\n[dim]{escape(label)}[/]", *numbers)
        out.print(table)
    out.print("[dim]mean ± sample std over seeds; best = best epoch, last = last epoch[/]")
    if said_on := selected_on_note(rows, marked=True):
        out.print(f"[dim]{escape(said_on)}[/]")
    if partial:
        out.print("[dim]* the mean of the seeds finished so far: the others still run[/]")


#: Beyond this many groups the table is written by hand: Rich's Table measures and wraps
#: every cell, which takes seconds for a study's thousands of groups.
MANY_ROWS = 200
NUMBER_HEADERS = ("n", "best acc %", "last acc %", "min", "max")


def _print_many_rows(cells: list[tuple[str, str, str, list[str]]]) -> None:
    """``print_rows``'s table for thousands of groups, in milliseconds: the same columns,
    each group on two lines (name and progress; models · loss), a line cut with … where it
    would not fit the terminal."""
    columns = zip(*(c[3] for c in cells), strict=True)
    widths = [max(len(h), *map(len, col)) for h, col in zip(NUMBER_HEADERS, columns, strict=True)]
    numbers = "".join(f"  {{:>{w}}}" for w in widths).format  # one format call per line
    numbers_width = sum(w + 2 for w in widths)
    first = [name + (f"  {said}" if said else "") for name, said, _, _ in cells]
    group = max(len("group"), *map(len, first), *(len(c[2]) for c in cells))
    if out.is_terminal:
        group = max(8, min(group, out.width - numbers_width))
    colour = out.is_terminal and not out.no_color

    def styled(text: str, style: str) -> str:
        return Style.parse(style).render(text, color_system=out.color_system) if colour else text

    def fit(text: str) -> str:
        return text if len(text) <= group else text[: group - 1] + "…"

    lines = [styled("group".ljust(group) + numbers(*NUMBER_HEADERS), "bold")]
    for (name, _, label, values), head in zip(cells, first, strict=True):
        head = fit(head)
        shown = styled(head[: len(name)], "bold") + styled(head[len(name) :], "yellow")
        lines.append(shown + " " * (group - len(head)) + numbers(*values))
        lines.append(styled(fit(label), "dim").rstrip())  # no number columns: nothing after
    out.file.write("\n".join(lines) + "\n")
    out.file.flush()


def print_pivot(pivot: Pivot) -> None:
    """The pivot in the terminal: a cell's Δ on a second line, the best of a column bold
    and marked ▲, the notes under the table."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column(escape(f"{pivot.rows_path} \\ {pivot.cols_path}"))
    for col in pivot.col_labels:
        table.add_column(escape(col), justify="right")
    for r, row_label in enumerate(pivot.row_labels):
        cells = []
        for c in range(len(pivot.col_labels)):
            cell = pivot.cell(r, c)
            if cell is None:
                cells.append("")
                continue
            t = cell_text(pivot, cell)
            text = escape(f"{t.mean} ({t.n}){t.mark}")
            text = f"[bold]{text} {BEST_MARK}[/]" if t.best else text
            if t.delta:
                text += "\n[dim]baseline[/]" if t.delta == "baseline" else f"\n[dim]Δ {t.delta}[/]"
            cells.append(text)
        table.add_row(escape(row_label), *cells)
    out.print(table)
    for line in notes(pivot, best=BEST_MARK):
        out.print(f"[dim]{escape(line)}[/]")


def table_cmd(
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, json, markdown, csv or latex.")
    ] = "table",
    rows_path: Annotated[
        str | None,
        typer.Option(
            "--rows",
            metavar="PATH",
            help="Lay the groups out as a pivot: rows by this spec path, e.g. "
            "teachers[0].experiment, student.depth (needs --cols).",
        ),
    ] = None,
    cols_path: Annotated[
        str | None,
        typer.Option(
            "--cols", metavar="PATH", help="The pivot's columns by this spec path, e.g. loss."
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            metavar="GROUP", help="Pivot: each cell gets Δ to this group (name or key prefix)."
        ),
    ] = None,
    metric: Annotated[
        str, typer.Option(help="Pivot: best (best epoch) or last (last epoch) accuracy.")
    ] = "best",
    workspace: Workspace = None,
) -> None:
    """Results: one row per configuration (group) with n, mean ± std, min, max over seeds;
    with --rows and --cols, the groups as a paper's table (mean ± std (n) per cell)."""
    _choice("format", fmt, TABLE_FORMATS)
    _choice("metric", metric, ("best", "last"))
    pivoting = rows_path is not None or cols_path is not None
    if pivoting and (rows_path is None or cols_path is None):
        raise _fail("--rows and --cols go together: give both")
    if not pivoting and baseline is not None:
        raise _fail("--baseline is for the pivot: give --rows and --cols too")
    store = open_store(workspace)
    runs = store.summaries()  # a lost index comes back (from memory where it cannot be saved)
    rows = group_rows(runs)
    if rows_path is not None and cols_path is not None and rows:  # none: as the flat table
        try:
            pivot = build_pivot(
                rows,
                group_specs(store, runs),
                rows_path,
                cols_path,
                metric,
                baseline,  # type: ignore[arg-type]
            )
        except PivotError as exc:
            raise _fail(str(exc)) from None
        print_pivot_as(pivot, fmt)
        return
    write_as(fmt, rows, {
        "json": lambda r: json.dumps([row.to_json() for row in r], indent=1) + "\n",
        "markdown": markdown_table, "csv": csv_table, "latex": latex_table,
    }, print_rows)  # fmt: skip


def print_pivot_as(pivot: Pivot, fmt: str) -> None:
    write_as(fmt, pivot, {
        "json": lambda p: json.dumps(pivot_json(p), indent=1) + "\n",
        "markdown": pivot_markdown, "csv": pivot_csv, "latex": pivot_latex,
    }, print_pivot)  # fmt: skip


def write_as(
    fmt: str,
    table: Any,
    writers: dict[str, Callable[[Any], str]],
    print_table: Callable[[Any], None],
) -> None:
    """One table in one format: a file format's text to stdout, else the terminal grid."""
    writer = writers.get(fmt)
    if writer is None:
        print_table(table)
    else:
        sys.stdout.write(writer(table))


def compare_cmd(
    group_a: Annotated[str, typer.Argument(metavar="A", help="A group: name or key prefix.")],
    group_b: Annotated[
        str, typer.Argument(metavar="B", help="The group compared with A: Δ = mean(B) − mean(A).")
    ],
    metric: Annotated[
        str, typer.Option(help="best (best epoch) or last (last epoch) accuracy.")
    ] = "best",
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    workspace: Workspace = None,
) -> None:
    """Compare two groups: Δ of the means, its 95 % bootstrap interval and a t-test's
    p-value, paired by seed when both hold the same seeds, Welch's otherwise."""
    _choice("format", fmt, ("table", "json"))
    _choice("metric", metric, ("best", "last"))
    store = open_store(workspace)
    rows = group_rows(store.runs() if store.index_path.exists() else [])
    try:
        a, b = find_group(rows, group_a, "A"), find_group(rows, group_b, "B")
        if a is b:
            raise CompareError(f"A and B are the same group ({a.name})")
        result = compare_groups(a, b, metric)  # type: ignore[arg-type]
    except (PivotError, CompareError) as exc:
        raise _fail(str(exc)) from None
    if fmt == "json":
        sys.stdout.write(json.dumps(result.to_json(), indent=1) + "\n")
    else:
        print_comparison(result)


def _p_text(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def print_comparison(c: Comparison) -> None:
    digits = c.digits
    what: dict[Metric, str] = {"best": "best-epoch", "last": "last-epoch"}
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col, justify in (("", "left"), ("group", "left"), ("n", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    table.add_column(f"{what[c.metric]} acc (mean ± std)", justify="right")
    table.add_column("seeds")
    for side, row, by_seed in (("A", c.a, c.a_by_seed), ("B", c.b, c.b_by_seed)):
        stats = c.stats_a if side == "A" else c.stats_b
        seeds = ", ".join(map(str, by_seed)) or "–"
        table.add_row(side, escape(row.name), str(stats.n), stats.mean_pm_std(digits), seeds)
    out.print(table)
    if c.delta is None:
        out.print("Δ: none, a group has no finished seed")
    else:
        out.print(f"Δ = mean(B) − mean(A) = {delta_text(c.delta, digits)}")
    if c.ci95 is not None:
        lo, hi = (delta_text(v, digits) for v in c.ci95)
        of = "the per-seed differences" if c.paired else "each group"
        out.print(f"95 % CI of Δ: [{lo}, {hi}]  ({c.ci_method} bootstrap of {of})")
    if c.p_value is not None:
        test = (
            f"paired t-test over {len(c.a_by_seed)} seeds"
            if c.test == "paired-t"
            else "Welch's t-test: the groups hold different seeds"
        )
        out.print(f"p = {_p_text(c.p_value)}  ({test})")
    if c.why:
        out.print(f"[yellow]no p-value{'' if c.ci95 else ', no interval'}:[/] {escape(c.why)}")
    for note in c.notes:
        out.print(f"[dim]{escape(note)}[/]")
