"""The ``kdtui`` command line (typer + rich). Never imports torch: training happens in
engine processes started by the queue runner."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from kdtui import __version__, launcher
from kdtui.analysis_cli import analyze
from kdtui.check_cli import check
from kdtui.clikit import (
    STATUS_STYLE,
    Workspace,
    check_workspace,
    err,
    find_runs,
    fmt_acc,
    fmt_age,
    fmt_epoch,
    open_store,
    out,
    plural,
    print_grid,
    print_spec_error,
    unwrap_help,
)
from kdtui.executors import ExecutorError, LocalExecutor, reconcile
from kdtui.executors.local import revive_runner, runner_alive
from kdtui.fmt import fmt_metric
from kdtui.follow_cli import follow, leave_or_cancel
from kdtui.needs import waiting_students
from kdtui.notes_cli import notes_app, record, todo_import
from kdtui.results import group_rows, run_selected_on
from kdtui.results.stats import SELECTED_ON
from kdtui.results_cli import compare_cmd, print_rows, table_cmd
from kdtui.safefs import symlinks_in
from kdtui.store import (
    ACTIVE,
    STATUSES,
    TRASH,
    Store,
    StoreError,
    default_workspace,
    describe_os_error,
)
from kdtui.todo_cli import todo_app

app = typer.Typer(
    help="kdtui: knowledge-distillation experiments from the terminal. "
    "Run without a command to open the app.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(notes_app, name="notes")
app.add_typer(todo_app, name="todo")
todo_app.command("import")(todo_import)
app.command("record")(record)
app.command("check")(check)
app.command("analyze")(analyze)


# ---------------------------------------------------------------------- run


class ExecutorName(str, Enum):
    local = "local"
    slurm = "slurm"


# Each option of `kdtui run`, beside the check of its value.

ExecutorOpt = Annotated[
    ExecutorName,
    typer.Option(help="local: this machine's queue runner; slurm: one sbatch job per run."),
]
JobsOpt = Annotated[
    int | None, typer.Option("--jobs", "-j", min=1, help="Runs at a time on CPU (default 1).")
]
GpusOpt = Annotated[str | None, typer.Option(help="GPUs to use, e.g. 0,1 (default: all).")]
PerGpuOpt = Annotated[int | None, typer.Option(min=1, help="Runs sharing one GPU.")]


def local_executor(jobs: int | None, gpus: str | None, per_gpu: int | None) -> LocalExecutor:
    """--jobs, --gpus, --per-gpu: GPUs this machine does not show are refused (the runner
    would silently train on CPU, or on fewer GPUs)."""
    gpu_ids = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else None
    if gpu_ids:
        check_gpus(gpu_ids, f"--gpus {','.join(gpu_ids)}")
    elif per_gpu is not None:  # runs per GPU, on a machine that may show none
        check_gpus([], "--per-gpu")
    return LocalExecutor(jobs, gpu_ids, per_gpu)


def check_gpus(wanted: list[str], asked: str) -> None:
    """Raise ExecutorError unless every GPU in ``wanted`` (or, for none, some GPU) is
    visible, naming what is."""
    from kdtui.runner import discover_gpus  # nvidia-smi or CUDA_VISIBLE_DEVICES, no torch

    visible = discover_gpus()
    missing = [g for g in wanted if g not in visible]
    if visible and not missing:
        return
    if visible:
        raise ExecutorError(
            f"{asked}: GPU {', '.join(missing)} not visible (visible: {', '.join(visible)})"
        )
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        why = "CUDA_VISIBLE_DEVICES empty"
    elif shutil.which("nvidia-smi") is None:
        why = "nvidia-smi not found"
    else:
        why = "nvidia-smi lists none"
    raise ExecutorError(f"{asked}: no GPU visible ({why})")


PartitionOpt = Annotated[str | None, typer.Option(help="Slurm partition (sbatch --partition).")]
GpusPerRunOpt = Annotated[
    int | None,
    typer.Option(min=0, help="GPUs per Slurm job (--gres=gpu:N; default 1, 0 for CPU)."),
]
TimeOpt = Annotated[
    str | None,
    typer.Option("--time", help="Slurm time limit per run (sbatch --time), e.g. 04:00:00."),
]
SlurmOptOpt = Annotated[
    list[str] | None,
    typer.Option(
        metavar="KEY=VALUE", help="Another sbatch option, repeatable: --slurm-opt account=lab."
    ),
]


def refuse_foreign(executor: ExecutorName, local: dict[str, Any], slurm: dict[str, Any]) -> None:
    """Options of the other executor are a mistake, not something to ignore."""
    other = slurm if executor == ExecutorName.local else local
    if foreign := [k for k, v in other.items() if v is not None]:
        raise ExecutorError(f"{', '.join(foreign)}: not an option of --executor {executor.value}")


@app.command()
def run(
    spec: Annotated[
        Path, typer.Argument(help='Spec JSON: one experiment, a list, or {"experiments": [...]}.')
    ],
    jobs: JobsOpt = None,
    gpus: GpusOpt = None,
    per_gpu: PerGpuOpt = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Enqueue and return at once; the runs go on.")
    ] = False,
    skip_done: Annotated[
        bool,
        typer.Option(
            "--skip-done",
            help="Leave out seeds the store has done (or queued, running): run a file again "
            "to train only what is missing.",
        ),
    ] = False,
    executor: ExecutorOpt = ExecutorName.local,
    partition: PartitionOpt = None,
    gpus_per_run: GpusPerRunOpt = None,
    time_limit: TimeOpt = None,
    slurm_opt: SlurmOptOpt = None,
    workspace: Workspace = None,
) -> None:
    """Validate a spec, queue its runs (experiment × seed), follow them, print the results.
    Slurm defaults can live in WORKSPACE/slurm.json (see the README)."""
    from kdtui.spec import SpecError  # pydantic (~0.15 s): only this command pays for it

    store = open_store(workspace)
    local = {"--jobs": jobs, "--gpus": gpus, "--per-gpu": per_gpu}
    slurm = {"--partition": partition, "--gpus-per-run": gpus_per_run, "--time": time_limit}
    try:
        refuse_foreign(executor, local, {**slurm, "--slurm-opt": slurm_opt})
        ex = (
            local_executor(jobs, gpus, per_gpu)
            if executor == ExecutorName.local
            else launcher.choose_executor(
                store, "slurm", partition=partition, gpus_per_run=gpus_per_run,
                time_limit=time_limit, extra=slurm_opt,
            )
        )  # fmt: skip
        launch = launcher.prepare_launch(
            store, spec, ex, skip_done=skip_done, log=lambda line: out.print(escape(line))
        )
    except SpecError as exc:
        print_spec_error(exc)
        raise typer.Exit(2) from None
    except ExecutorError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    for note in launch.notes(skip_hint=" (--skip-done leaves them out)"):
        err.print(f"[yellow]note:[/] {escape(note)}")
    if launch.skipped:
        out.print(f"skipped, in the store already: {escape(launcher.seeds_text(launch.again))}")
    keys = launch.group_keys()
    if not launch.run_ids:
        out.print("nothing to run: every seed is in the store")
        print_rows(group_rows([r for r in launch.stored if r.get("group_key") in keys]))
        return
    present_queued(store, launch, detach)


def present_queued(store: Store, launch: launcher.Launch, detach: bool) -> None:
    """Say what was queued; unless detached, follow the runs and print the results table
    (earlier seeds of the same groups too); exit 1 when a run did not end done."""
    run_ids, jobs = launch.run_ids, launch.job_ids
    out.print(
        f"queued {plural(len(run_ids), 'run')} ({plural(len(launch.loaded.experiments), 'experiment')})"
        f" in {store.root}" + (f" as Slurm jobs {', '.join(jobs)}" if jobs else "")
    )
    if detach:
        out.print(
            "detached: follow with [bold]kdtui ls[/] or [bold]kdtui[/]; results with [bold]kdtui table[/]"
        )
        return
    try:
        follow(store, run_ids)
    except KeyboardInterrupt:
        leave_or_cancel(store, run_ids)
        raise typer.Exit(130) from None
    runs = store.runs()
    print_rows(group_rows([r for r in runs if r.get("group_key") in launch.group_keys()]))
    bad = [r for r in runs if r["run_id"] in set(run_ids) and r["status"] != "done"]
    for r in bad:
        err.print(f"[red]{r['status']}[/] {r['run_id']}: {escape(str(r.get('error') or ''))}")
    raise typer.Exit(1 if bad else 0)


# ---------------------------------------------------------------------- reading


@app.command("ls")
def ls(
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    status: Annotated[
        str | None, typer.Option(help=f"Only runs with this status: {', '.join(STATUSES)}.")
    ] = None,
    workspace: Workspace = None,
) -> None:
    """List runs: status, group, seed, epoch, accuracy, device, age, reason."""
    if fmt not in ("table", "json"):
        err.print(f"[red]error:[/] unknown format {fmt!r} (table, json)")
        raise typer.Exit(2)
    if status is not None and status not in STATUSES:
        err.print(f"[red]error:[/] unknown status {status!r} ({', '.join(STATUSES)})")
        raise typer.Exit(2)
    store = open_store(workspace)
    every = store.summaries()  # a lost index comes back (from memory where it cannot be saved)
    runs = [r for r in every if status is None or r.get("status") == status]
    if fmt == "json":
        sys.stdout.write(json.dumps([rounded_accs(r) for r in runs]) + "\n")
        return
    if not runs:
        out.print(
            f"no {status} runs"
            if every
            else "no runs yet: [bold]kdtui run examples/quickstart.json[/]"
        )
        return
    rows, styles = [], []
    on = {r["run_id"]: run_selected_on(r) for r in runs if r.get("best_acc") is not None}
    chosen = set(on.values()) - {None}
    for r in runs:
        s = r.get("status", "?")
        note = r.get("error") or ("" if s in ("done", "queued") else r.get("label", ""))
        if s == "queued" and r.get("slurm_reason"):
            note = f"Slurm: {r['slurm_reason']}"
        mark = "°" if len(chosen) > 1 and on.get(r["run_id"]) == "test" else ""
        rows.append([
            r["run_id"], s, str(r.get("seed", "")),
            fmt_epoch(r),
            fmt_acc(r.get("acc")),
            fmt_acc(r.get("best_acc")) + mark,
            str(r.get("device") or "–"), fmt_age(r.get("created")), str(note),
        ])  # fmt: skip
        styles.append(STATUS_STYLE.get(s))
    headers = ["run", "status", "seed", "epoch", "acc", "best", "device", "age", "note"]
    print_grid(headers, rows, right={2, 3, 4, 5}, styles=styles)
    if chosen:  # where the "best" column's epochs were chosen, as `kdtui table` says it
        out.print(f"[dim]{escape(SELECTED_ON[frozenset(chosen)])}[/]")


def rounded_accs(run: dict[str, Any]) -> dict[str, Any]:
    """The summary as JSON wants it: accuracies to 6 decimals (they are float32 in the
    engine, and 30.000001907348633 is noise, not precision), and a number that is not
    finite (a diverged run's loss) as null, since NaN is not JSON."""

    def clean(k: str, v: Any) -> Any:
        if not isinstance(v, float):
            return v
        if not math.isfinite(v):
            return None
        return round(v, 6) if k == "acc" or k.endswith("_acc") else v

    return {k: clean(k, v) for k, v in run.items()}


@app.command()
def show(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id or a unique prefix.")],
    workspace: Workspace = None,
) -> None:
    """One run: its summary, teachers, frozen spec and epochs."""
    store = open_store(workspace)
    (r,) = find_runs(store, [run_ref])
    s = r.get("status", "?")
    out.print(
        f"[bold]{r['run_id']}[/]  [{STATUS_STYLE.get(s, '')}]{s}[/]  {escape(r.get('label', ''))}  loss {escape(r.get('loss', ''))}"
    )
    outside = r.get("source", "kdtui") != "kdtui"  # trained elsewhere: no executor, no epochs
    for key in (
        "group_key",
        "seed",
        "device",
        "host",
        "pid",
        "executor",
        "job_id",
        "node",
        "slurm_state",
        "slurm_reason",
        "epoch",
        "best_acc",
        "best_epoch",
        "last_acc",
        "nll",
        "ece",
        "error",
        "source",
    ):
        if r.get(key) is not None and not (outside and key in ("executor", "epoch")):
            out.print(f"  {key:<11} {escape(fmt_metric(key, r[key]))}")
            if key == "best_acc" and (on := run_selected_on(r)):  # test-chosen flatters it
                out.print(f"  {'':<11} [dim]{escape(SELECTED_ON[frozenset({on})])}[/]")
    for t in r.get("teacher_runs") or []:
        out.print(
            f"  teacher     {escape(t['model'])} weight {t['weight']:g} ← {escape(t.get('run_id') or t['checkpoint'])}"
        )
    run_dir = store.run_dir(r["run_id"])
    spec_path = run_dir / "spec.json"
    frozen = json.loads(spec_path.read_text()) if spec_path.exists() else {}
    for key, value in (frozen.get("external") or {}).items():  # where an outside result is from
        if value is not None:
            out.print(f"  {key:<11} {escape(str(value))}")
    out.print(f"  folder      {run_dir}")
    epochs = [e for e in store.events(r["run_id"]) if e.get("type") == "epoch"]
    if epochs:
        table = Table(
            "epoch", "train loss", "acc", "nll", "ece", "lr", "s", box=None, header_style="bold"
        )
        for e in epochs[-10:]:
            table.add_row(
                str(e.get("epoch", "–")),
                _number(e.get("train_loss"), ".4f"),
                fmt_acc(e.get("acc")),
                _number(e.get("nll"), ".3f"),
                _number(e.get("ece"), ".3f"),
                _number(e.get("lr"), ".2g"),
                _number(e.get("seconds"), ".2f"),
            )
        out.print(table)
    if frozen:
        out.print_json(json.dumps(frozen["experiment"]))


def _number(value: Any, spec: str) -> str:
    """An epoch's number as ``show`` prints it; a field the event lacks (an older engine,
    an imported or hand-written event) or that is no number shows as –."""
    return format(value, spec) if isinstance(value, int | float) else "–"


app.command("table")(table_cmd)
app.command("compare")(compare_cmd)


@app.command()
def schema() -> None:
    """Print the JSON Schema of an experiment, for editor completion."""
    from kdtui.spec import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


# ---------------------------------------------------------------------- lifecycle


@app.command()
def stop(
    runs: Annotated[
        list[str] | None, typer.Argument(metavar="RUN...", help="Run ids or prefixes.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every queued or running run.")] = False,
    workspace: Workspace = None,
) -> None:
    """Cancel runs: queued ones at once, running ones after their current batch (a Slurm
    run through scancel)."""
    store = open_store(workspace)
    targets = (
        [r for r in store.runs() if r["status"] in ("queued", "running")]
        if all_
        else find_runs(store, _named(runs, "--all"))
    )
    stopped = launcher.stop_runs(store, [r["run_id"] for r in targets])
    out.print(f"cancelling {plural(len(stopped), 'run')}" if stopped else "nothing to stop")


@app.command()
def resume(
    runs: Annotated[
        list[str] | None, typer.Argument(metavar="RUN...", help="Run ids or prefixes.")
    ] = None,
    all_crashed: Annotated[bool, typer.Option("--all-crashed", help="Every crashed run.")] = False,
    all_cancelled: Annotated[
        bool, typer.Option("--all-cancelled", help="Every cancelled run.")
    ] = False,
    workspace: Workspace = None,
) -> None:
    """Queue crashed, failed or cancelled runs again; they continue from last.pt (a Slurm
    run as a new job with its sbatch options)."""
    store = open_store(workspace)
    statuses = {"crashed"} if all_crashed else set()
    statuses |= {"cancelled"} if all_cancelled else set()
    targets = (
        [r for r in store.runs() if r["status"] in statuses]
        if statuses
        else find_runs(store, _named(runs, "--all-crashed or --all-cancelled"))
    )
    try:
        again = launcher.requeue(store, [r["run_id"] for r in targets])
    except launcher.LinkedRunFiles as exc:  # nothing was written
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    out.print(
        f"resuming {plural(len(again), 'run')}"
        if again
        else "nothing to resume (only crashed, failed or cancelled runs resume)"
    )


def _named(runs: list[str] | None, instead: str) -> list[str]:
    """The runs a command was given; exit 2 when it was given none (nor ``instead``)."""
    if not runs:
        err.print(f"[red]error:[/] name runs (ids or prefixes), or give {instead}")
        raise typer.Exit(2)
    return runs


@app.command()
def rm(
    runs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Run ids or prefixes.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    workspace: Workspace = None,
) -> None:
    """Remove runs that are not queued or running (a result recorded by mistake, a botched
    run): out of the index and the tables, their folders moved to WORKSPACE/trash/."""
    store = open_store(workspace)
    targets = list({r["run_id"]: r for r in find_runs(store, runs)}.values())  # once each
    ids = {r["run_id"] for r in targets}
    every = store.runs()
    waiting = waiting_students(every, ids)  # they are still to load one of these teachers
    if busy := [r["run_id"] for r in targets if r["status"] in ACTIVE]:
        err.print(f"[red]error:[/] {escape(', '.join(busy))}: queued or running; stop first")
        raise typer.Exit(2)
    if waiting:
        err.print(
            f"[red]error:[/] queued or running students need these teachers "
            f"({escape(', '.join(waiting))}); stop them first"
        )
        raise typer.Exit(2)
    for r in targets:
        out.print(
            f"  {r['run_id']}  {escape(str(r.get('name')))} seed {r.get('seed')}  {r['status']}"
        )
    taught = [
        s["run_id"]
        for s in every
        if s["run_id"] not in ids
        and any(t.get("run_id") in ids for t in s.get("teacher_runs") or [])
    ]
    if taught:
        out.print(f"  (teachers of {plural(len(taught), 'run')}, which keep their results)")
    if not yes and not typer.confirm(f"remove {plural(len(ids), 'run')}?"):
        raise typer.Exit(1)
    gone = store.remove_runs(sorted(ids))
    out.print(f"removed {plural(len(gone), 'run')}; folders in {store.root / TRASH}")


@app.command()
def doctor(workspace: Workspace = None) -> None:
    """Check the workspace: rebuild the index from the run folders and report."""
    store = open_store(workspace, reconcile=False)
    if not store.root.exists():
        out.print(f"{store.root}: no workspace here yet")
        return
    try:
        out.print(store.rebuild())
    except StoreError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    for line in reconcile(store):
        out.print(f"reconciled {escape(line)}")
    for run in store.runs():  # what a resume or the runner would refuse to write through
        if linked := symlinks_in(store.run_dir(run["run_id"])):
            out.print(
                f"[yellow]linked:[/] {run['run_id']}: {escape(', '.join(linked))} "
                "(kdtui does not write through symbolic links)"
            )
    if waiting := revive_runner(store):
        out.print(f"queue runner: restarted ({plural(waiting, 'queued run')} waited for it)")
    else:
        alive = runner_alive(store)
        out.print(f"queue runner: {'running' if alive else 'not running'}")


def _print_version(value: bool) -> None:
    if value:
        out.print(f"kdtui {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _default(
    ctx: typer.Context,
    workspace: Workspace = None,
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = None,
) -> None:
    if ctx.invoked_subcommand is None:
        from kdtui.widgets import picture

        picture.start_detection()  # the terminal answers while the app's modules load
        from kdtui.tui.app import run_app  # the TUI, imported only when asked for

        run_app(check_workspace(workspace or default_workspace()))


unwrap_help(app)  # every command registered: the help texts read whole at any width


def main() -> None:
    """The console script. A file that cannot be written or read (a full disk, a read-only
    workspace) or a store that cannot go on is one line and exit 1, never a traceback."""
    try:
        app()
    except BrokenPipeError:  # `kdtui ls | head`: the reader left; nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None
    except (OSError, StoreError) as exc:
        text = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        err.print(f"[red]error:[/] {escape(text)}")
        raise SystemExit(1) from None
