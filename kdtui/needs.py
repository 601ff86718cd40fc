"""Teacher needs: which teacher run a student loads, decided from the run summaries alone.

A student's frozen spec lists ``needs`` (one per teacher named by experiment or group key:
``{"name", "group_key", "pick", "seed"}``). The local runner, the Slurm executor, the
engine and ``kdtui rm`` / ``resume`` all resolve them here, so they can never disagree on
whether a student may start, must wait, or can never succeed.
"""

from __future__ import annotations

from typing import Any

from kdtui.store import ACTIVE


def need_group(need: dict[str, Any], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs that can satisfy a student's need: the teacher group's kdtui runs (of the
    need's seed for ``same-seed``). Outside results (notes, record) have no checkpoint."""
    group = [
        r
        for r in runs
        if r.get("group_key") == need["group_key"] and r.get("source", "kdtui") == "kdtui"
    ]
    if need.get("seed") is not None:
        group = [r for r in group if r.get("seed") == need["seed"]]
    return group


def needs_state(run: dict[str, Any], runs: list[dict[str, Any]]) -> tuple[str, str]:
    """A student's readiness over all its needs: the first need that is not ``ready``
    decides (see ``resolve_need``)."""
    for need in run.get("needs") or []:
        state, detail = resolve_need(need, runs)
        if state != "ready":
            return state, detail
    return "ready", ""


def selection_accuracy(run: dict[str, Any]) -> float:
    """A run's accuracy as model selection sees it: its best validation accuracy when it
    has a validation split (its test accuracy must not choose), else its best test's."""
    value = run.get("best_val_acc")
    return value if isinstance(value, int | float) else run.get("best_acc") or 0


def resolve_need(need: dict[str, Any], runs: list[dict[str, Any]]) -> tuple[str, str]:
    """Which teacher run satisfies a student's need, from the run summaries.

    Returns ``("ready", run_id)``, ``("wait", "")`` while a candidate is still queued or
    running, or ``("failed", reason)`` when none can succeed any more. ``same-seed`` wants a
    done run of the group with that seed; ``best`` waits for the whole group to settle,
    then takes its done run with the best accuracy where best epochs are chosen: on
    validation when the group has a validation split, else on test."""
    group = need_group(need, runs)
    done = [r for r in group if r.get("status") == "done"]
    active = [r for r in group if r.get("status") in ACTIVE]
    what = f"teacher {need.get('name')!r}" + (
        f" seed {need['seed']}" if need.get("seed") is not None else ""
    )
    if need.get("seed") is not None and done:
        return "ready", max(done, key=lambda r: r.get("ended") or 0)["run_id"]
    if active:
        return "wait", ""
    if done:
        return "ready", max(done, key=selection_accuracy)["run_id"]
    if not group:
        return "failed", f"{what}: no such run in the store"
    last = max(group, key=lambda r: r.get("ended") or 0)
    return "failed", f"{what} is {last['status']} ({last['run_id']})"


def waiting_students(runs: list[dict[str, Any]], teacher_ids: set[str]) -> list[str]:
    """Queued or running students (outside ``teacher_ids``) that still have to load one of
    these teacher runs: removing such a teacher would fail them."""
    return [
        s["run_id"]
        for s in runs
        if s.get("status") in ACTIVE
        and s["run_id"] not in teacher_ids
        and any(
            t["run_id"] in teacher_ids for n in s.get("needs") or [] for t in need_group(n, runs)
        )
    ]
