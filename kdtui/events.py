"""One run's folder as the index sees it: the id that names it, its append-only
``events.jsonl`` (start, epoch, end, error, submit), and the summary folded from its frozen
spec and those events.

Kept apart from ``kdtui.store`` because the engine's live updates, the store's catch-up
and the rebuild of a lost index (``kdtui.store_rebuild``) all fold events through the one
``fold_event`` here, so that they can never disagree. This module knows no index and takes
no lock.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from kdtui.safefs import SymlinkRefused, open_nofollow, read_bytes_nofollow

#: What may name a run, and so its folder (no separators, no leading dot).
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")

#: What an end event carries into the summary: the best epoch (chosen on validation when
#: ``best_selected_on`` is "val"), the last epoch's accuracy, the analysis data kept.
END_FIELDS = ("best_acc", "best_epoch", "last_acc", "best_val_acc", "best_selected_on", "analysis")


def initial_summary(run_spec: dict[str, Any]) -> dict[str, Any]:
    """The index document of a freshly queued run, from its frozen spec."""
    exp = run_spec["experiment"]
    return {
        "run_id": run_spec["run_id"],
        "name": exp["name"],
        "group_key": run_spec["group_key"],
        "seed": run_spec["seed"],
        "status": "queued",
        "created": run_spec["created"],
        "epochs": exp["epochs"],
        "epoch": 0,
        "label": run_spec["label"],
        "loss": run_spec["loss_label"],
        "dataset": exp["data"]["dataset"],
        "needs": run_spec["needs"],
        "source": run_spec.get("source", "kdtui"),  # outside results: "notes:...", "record"
        "executor": run_spec.get("executor", "local"),  # who starts it: local runner or Slurm
    }


def fold_event(summary: dict[str, Any], event: dict[str, Any]) -> None:
    """Update a run summary with one event. The engine's live updates and the rebuild of a
    lost index both go through here, so the two can never disagree."""
    kind, at = event.get("type"), event.get("time")
    if kind in ("start", "end", "error"):  # what Slurm last said no longer holds
        for key in ("slurm_reason",) if kind == "start" else ("slurm_reason", "slurm_state"):
            if key in summary:
                summary[key] = None
    if kind == "start":
        summary.update(status="running", error=None, ended=None, heartbeat=at)
        summary.setdefault("started", at)
        for key in (
            "pid",
            "pid_start",
            "host",
            "device",
            "device_name",
            "epochs",
            "teacher_runs",
            "versions",
            "command",
        ):
            if key in event:
                summary[key] = event[key]
    elif kind == "epoch":
        acc = event.get("acc")
        summary.update(
            epoch=event.get("epoch"),
            acc=acc,
            last_acc=acc,
            nll=event.get("nll"),
            ece=event.get("ece"),
            train_loss=event.get("train_loss"),
            heartbeat=at,
        )
        val = event.get("val_acc")
        if val is not None:  # a validation split chooses; best_acc is the test's at that epoch
            if summary.get("best_val_acc") is None or val > summary["best_val_acc"]:
                summary.update(best_acc=acc, best_epoch=event.get("epoch"), best_val_acc=val)
        elif acc is not None and (summary.get("best_acc") is None or acc > summary["best_acc"]):
            summary.update(best_acc=acc, best_epoch=event.get("epoch"))
        summary["best_selected_on"] = "test" if val is None else "val"
    elif kind == "end":
        summary.update(status=event.get("status", "done"), ended=at)
        summary["error"] = event.get("reason")
        for key in END_FIELDS:
            if event.get(key) is not None:
                summary[key] = event[key]
    elif kind == "error":
        summary.update(status="failed", ended=at, error=event.get("message"))
    elif kind == "submit":  # handed to Slurm: a fresh job that nothing is known about yet
        summary.update(status="queued", error=None, ended=None, job_id=event.get("job_id"))
        summary.update(node=None, slurm_state=None, slurm_reason=None)


def fold_lines(summary: dict[str, Any], chunk: bytes) -> int:
    """Fold the whole event lines of ``chunk`` (a part of an events file) into ``summary``;
    a torn last line (an engine mid-append) waits for its end, a malformed one is skipped.
    Returns how many bytes of ``chunk`` were whole lines, to resume from there."""
    end = chunk.rfind(b"\n") + 1
    for line in chunk[:end].splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            fold_event(summary, event)
    return end


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    """All events of a run. A torn or malformed line (a kill mid-write) is skipped."""
    try:
        raw = read_bytes_nofollow(run_dir / "events.jsonl")
    except FileNotFoundError:
        return []
    events = []
    for line in raw.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def append_event(run_dir: Path, event: dict[str, Any]) -> None:
    """Append one event line durably (flush + fsync), starting a fresh line if the last
    write was torn."""
    path = run_dir / "events.jsonl"
    line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
    with open_nofollow(path, "ab+") as fh:  # a planted link is refused, never followed
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                line = b"\n" + line
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def append_lines(path: Path, lines: list[bytes]) -> tuple[int, int]:
    """Append whole lines in one write, fsynced, starting a fresh line if the last write was
    torn; refuses a symbolic link. Returns where the lines start and end in the file."""
    data = b"".join(lines)
    try:
        with open_nofollow(path, "ab+") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    data = b"\n" + data
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            end = fh.tell()
    except SymlinkRefused:
        raise
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    return end - len(data), end
