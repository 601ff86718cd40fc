"""`kdtui run` following its runs to their end in the terminal: live progress bars on a
terminal, a line per change when piped (a log file, ``| tee``), and what Ctrl-C offers.
Every "best" it prints says where its epoch was chosen."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.text import Text

from kdtui import launcher
from kdtui.clikit import STATUS_STYLE, fmt_acc, fmt_epoch, out, plural
from kdtui.executors import reconcile
from kdtui.fmt import fmt_elapsed
from kdtui.results import run_selected_on
from kdtui.store import TERMINAL, Store

if TYPE_CHECKING:
    from rich.progress import ProgressColumn, Task


def follow(store: Store, run_ids: list[str]) -> None:
    """Follow the runs until every one has ended: live progress bars on a terminal; piped
    (a log file, ``| tee``) a line per change, written as it happens, since bars that are
    not redrawn would show nothing until the end."""
    if not out.is_terminal:
        _poll(store, run_ids, ProgressLines().update)
        return
    # rich.progress only here: `kdtui ls` and every other command start without it
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        training_elapsed_column(),
    )
    with Progress(*columns, console=out, refresh_per_second=4) as progress:
        tasks: dict[str, Any] = {}

        def update(runs: list[dict[str, Any]]) -> None:
            for r in runs:
                if r["run_id"] not in tasks:
                    tasks[r["run_id"]] = progress.add_task(
                        f"{r['name']} s{r['seed']}", total=r.get("epochs"), info="", run=r
                    )
                status = r["status"]
                style = STATUS_STYLE.get(status, "")
                info = f"[{style}]{status:<7}[/]"
                if status == "queued" and r.get("slurm_reason"):  # why Slurm holds it back
                    info += f" ({escape(r['slurm_reason'])})"
                if r.get("acc") is not None:
                    # widths fixed, so that lines stay aligned when one reaches 100.00
                    info += f"  acc {fmt_acc(r['acc']):>6}  {fmt_best(r, width=6)}"
                if status in ("failed", "crashed") and r.get("error"):
                    info += f"  {escape(str(r['error']))[:60]}"
                progress.update(tasks[r["run_id"]], completed=r.get("epoch") or 0, info=info, run=r)

        _poll(store, run_ids, update)


def _poll(store: Store, run_ids: list[str], update: Any) -> None:
    """Hand ``update`` the runs' summaries twice a second until every run has ended."""
    wanted = set(run_ids)
    while True:
        runs = [r for r in store.runs() if r["run_id"] in wanted]
        update(runs)
        if runs and all(r["status"] in TERMINAL for r in runs):
            return
        time.sleep(0.5)
        reconcile(store)


def training_seconds(run: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds since the run started training (until its end, once ended); None before it
    started. A queued run waits for a slot or a teacher: that is no training time."""
    started = run.get("started")
    if not started:
        return None
    ended = run.get("ended") if run.get("status") in TERMINAL else None
    return (ended or (time.time() if now is None else now)) - started


def training_elapsed_column() -> ProgressColumn:
    """The elapsed column, counted from the run's ``started`` time, not from the moment
    the bar was made (when the run was queued). Made on demand: rich.progress is only
    imported by ``follow``."""
    from rich.progress import ProgressColumn

    class TrainingElapsed(ProgressColumn):
        def render(self, task: Task) -> Text:
            run = task.fields.get("run") or {}
            return Text(fmt_elapsed(training_seconds(run)), "progress.elapsed")

    return TrainingElapsed()


class ProgressLines:
    """Piped progress: a line when a run starts, at each epoch, and when it ends."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[Any, ...]] = {}

    def update(self, runs: list[dict[str, Any]]) -> None:
        for r in runs:
            state = (r["status"], r.get("epoch") or 0, r.get("slurm_reason") or None)
            if self.seen.get(r["run_id"], ("queued", 0, None)) != state:
                self.seen[r["run_id"]] = state  # a plain queued run was said by "queued N runs"
                out.print(escape(progress_line(r)), soft_wrap=True)


def fmt_best(run: dict[str, Any], width: int = 0) -> str:
    """``best 62.00 on test``: the best accuracy and the split that chose its epoch (on
    test it flatters: no validation split, ``data.val``)."""
    on = run_selected_on(run)
    where = f" on {on:<4}" if width and on else f" on {on}" if on else ""
    return f"best {fmt_acc(run.get('best_acc')):>{width}}{where}"


def progress_line(run: dict[str, Any]) -> str:
    """One run's state as a line of a log: ``teacher s0  epoch 3/30  acc 61.20  best 62.00
    0:01:10``; started, ended (with the best accuracy or the error) and Slurm's reasons."""
    status, epoch = run["status"], run.get("epoch")
    head = f"{run['name']} s{run['seed']}"
    elapsed = fmt_elapsed(training_seconds(run))
    if status == "queued":
        reason = run.get("slurm_reason")
        return f"{head}  queued" + (f" (Slurm: {reason})" if reason else "")
    if status == "running" and not epoch:
        return f"{head}  started on {run.get('device') or '?'} ({run['run_id']})"
    if status == "running":
        return (
            f"{head}  epoch {fmt_epoch(run)}  acc {fmt_acc(run.get('acc'))}"
            f"  {fmt_best(run)}  {elapsed}"
        )
    line = f"{head}  {status}"
    if status == "done":
        line += f"  {fmt_best(run)}"
    if run.get("started"):
        line += f"  {elapsed}"
    return line + (f"  {run['error']}" if run.get("error") else "")


def leave_or_cancel(store: Store, run_ids: list[str]) -> None:
    """Ctrl-C while following: the runs keep going unless the user asks to cancel them."""
    cancel = False
    if sys.stdin.isatty():
        try:
            cancel = typer.confirm("\nCancel these runs? (No leaves them running)", default=False)
        except (KeyboardInterrupt, EOFError, typer.Abort):
            cancel = False
    if cancel:
        stopped = launcher.stop_runs(store, run_ids)
        out.print(f"cancelling {plural(len(stopped), 'run')}")
    else:
        out.print(
            "the runs keep going in the background: [bold]kdtui ls[/] to watch, [bold]kdtui stop[/] to cancel"
        )
