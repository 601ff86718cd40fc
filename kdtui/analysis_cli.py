"""``kdtui analyze RUN...``: figures and a JSON of numbers from what each run kept at its
best or last epoch. The work is in ``kdtui.analysis``; this module reads the arguments and
says what it wrote, one line per run, and why a run had nothing to analyse."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from kdtui.clikit import Workspace, err, open_store, out


class Epoch(str, Enum):
    best = "best"
    last = "last"


class Format(str, Enum):
    png = "png"
    pdf = "pdf"


def _nothing_to_analyse(run: dict[str, Any]) -> str | None:
    """Why a run cannot have analysis data, before looking for it: an outside result."""
    source = str(run.get("source") or "kdtui")
    if source == "kdtui":
        return None
    if source == "record":
        return "recorded by hand, not trained here: no model outputs to analyse"
    return f"imported ({source}), not trained here: no model outputs to analyse"


def analyze(
    runs: Annotated[
        list[str], typer.Argument(metavar="RUN...", help="Run ids (or unique prefixes).")
    ],
    epoch: Annotated[
        Epoch, typer.Option("--epoch", "-e", help="The best epoch's data or the last one's.")
    ] = Epoch.best,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write into DIR/<run id>/ (default: each run's own analysis/figures/).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Figure file format.")] = Format.png,
    workspace: Workspace = None,
) -> None:
    """Figures and numbers of a run's test predictions, without retraining.

    Confusion matrix, per-class precision/recall/F1, reliability diagram with ECE and NLL,
    t-SNE of the embeddings with the V-score of a k-means clustering, the attention maps of
    a few fixed test samples (beside each teacher's) and their view images; every number
    in <epoch>.json."""
    from kdtui.analysis.data import NoAnalysisData  # numpy: not at the CLI's start-up
    from kdtui.analysis.report import epoch_label, write
    from kdtui.clikit import find_runs  # the CLI's run lookup

    store = open_store(workspace, reconcile=False)
    failed = 0
    for run in find_runs(store, runs):
        run_id = run["run_id"]
        if reason := _nothing_to_analyse(run):
            err.print(f"[yellow]{escape(run_id)}:[/] {escape(reason)}")
            failed += 1
            continue
        folder = (out_dir / run_id) if out_dir else store.run_dir(run_id) / "analysis" / "figures"

        def progress(text: str, run_id: str = run_id) -> None:
            err.print(f"[dim]{escape(run_id)}: {escape(text)}[/]")

        t0 = time.perf_counter()
        try:
            report = write(run, store.run_dir(run_id), epoch.value, folder, fmt.value, progress)
        except NoAnalysisData as exc:
            reason = str(exc)
            if run.get("status") in ("running", "queued"):
                reason = reason.replace("trained before kdtui kept it", "none kept yet")
            err.print(f"[yellow]{escape(run_id)}:[/] {escape(reason)}")
            failed += 1
            continue
        n = report.numbers
        v = n.get("v_score")
        out.print(
            f"{escape(run_id)} ({epoch_label(epoch.value, n['epoch'], n.get('best_selected_on'))}): "
            f"acc {n['accuracy']:.2f}%, "
            f"ECE {n['ece'] * 100:.2f}%, NLL {n['nll']:.3f}, "
            f"V-score {'–' if v is None else f'{v:.3f}'}; "
            f"{len(report.figures)} figures and {report.json_path.name} in "
            f"{escape(str(folder))} ({time.perf_counter() - t0:.1f} s)"
        )
    if failed:
        raise typer.Exit(1)
