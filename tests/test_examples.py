"""Every example spec end to end through the real CLI, shrunk to one epoch and seed 0.

All examples go into one workspace and one queue (``kdtui run --detach`` per file), as a
user would run them: the runs share two CPU slots, and the teacher configuration the
examples have in common ends up as a single group.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run_cli, tiny_experiment, wait_for
from test_images import write_cifar10, write_image_folder

from kdtui.engine.models import WideResNet
from kdtui.spec.study import expand
from kdtui.store import TERMINAL, Store

pytestmark = pytest.mark.slow

EXAMPLES = sorted(Path("examples").glob("*.json"))

#: student experiment -> the loss parts its epochs must log
METHODS = {
    "kd": {"ce", "kd"},
    "at": {"ce", "at"},
    "sp": {"ce", "sp"},
    "amd-g": {"ce", "amd"},
    "amd-gl": {"ce", "amd"},
    "dask": {"ce", "dask"},
    "amc": {"ce", "amc"},
    "two-teachers": {"ce", "kd", "at"},
    "kd-mixup": {"ce", "kd"},
    "kd-cutmix": {"ce", "kd"},
    "image-kd": {"ce", "kd"},
    "signal-student": {"ce"},
    "kd-gaf-to-signal": {"ce", "kd"},
    "kd-gaf-WRN28-3": {"ce", "kd"},  # the study's
    "kd-two-teachers": {"ce", "kd"},
    # not examples: the mtf / rp views and the image-folder data (below)
    "views": {"ce", "kd", "sp"},
    "folder-cutmix": {"ce", "amc"},
}


def shrunk(path: Path, cifar: Path) -> dict:
    """The example with one epoch, one seed, and the tiny CIFAR-10 folder. The study
    (defaults and grids) gets two epochs: it repeats the other examples' configurations,
    and each example's groups must stay apart."""
    body = json.loads(path.read_text())
    epochs = 2 if "defaults" in body else 1
    for exp in [body.get("defaults", {}), *body["experiments"]]:
        exp.update(epochs=epochs, seeds=[0])
        if exp.get("schedule", {}).get("kind") == "step":
            exp["schedule"]["milestones"] = [1]
        if exp.get("data", {}).get("dataset") == "cifar10":
            exp["data"]["path"] = str(cifar)
    return body


def views_run(root: Path) -> dict:
    """A student of checkpoint teachers on the MTF and RP views (which go through pyts)."""
    teachers = []
    for kind in ("mtf", "rp"):
        torch.save({"model": WideResNet(10, 1, 3, 3, dim=2).state_dict()}, root / f"{kind}.pt")
        model = {"depth": 10, "width": 1, "view": {"kind": kind, "image_size": 16}}
        teachers.append({"checkpoint": str(root / f"{kind}.pt"), "model": model})
    return tiny_experiment("views", epochs=1, teachers=teachers, loss={"kd": {}, "sp": {}})


def folder_run(root: Path) -> dict:
    """Image-folder data with CutMix and AMC."""
    return tiny_experiment(
        "folder-cutmix",
        epochs=1,
        data={"dataset": "image-folder", "path": str(root / "folder")},
        student={"depth": 10, "width": 1, "view": "image"},
        loss={"amc": {}},
        augment={"cutmix": {"alpha": 1.0}},
    )


def test_every_example_trains_and_tables_one_group_per_method(tmp_path, cleanup_processes):
    ws = cleanup_processes
    cifar = tmp_path / "cifar-10-batches-py"
    write_cifar10(cifar)
    write_image_folder(tmp_path / "folder")
    # the views run first: pyts compiles for half a minute when it is imported
    specs = [("extras.json", {"experiments": [views_run(tmp_path), folder_run(tmp_path)]})]
    specs += [(p.name, shrunk(p, cifar)) for p in EXAMPLES]
    for name, body in specs:
        (tmp_path / name).write_text(json.dumps(body))
        result = run_cli("run", str(tmp_path / name), "--detach", "--jobs", "2", workspace=ws)
        assert result.returncode == 0, result.stdout + result.stderr

    store = Store(ws)
    n_runs = sum(expand(body).counts[1] for _, body in specs)  # a grid is several runs
    wait_for(
        lambda: len(runs := store.runs()) == n_runs and all(r["status"] in TERMINAL for r in runs),
        timeout=600,
        every=0.5,
        what="every example run to end",
    )
    runs = json.loads(run_cli("ls", "--format", "json", workspace=ws).stdout)
    failed = {r["run_id"]: r.get("error") for r in runs if r["status"] != "done"}
    assert not failed, failed

    # one group per method, each with its one seed, and its loss parts in the events
    table = json.loads(run_cli("table", "--format", "json", workspace=ws).stdout)
    rows = {}
    for row in table:
        assert row["name"] not in rows or row["name"].endswith("teacher"), row["name"]
        rows.setdefault(row["name"], row)
    for method, parts in METHODS.items():
        assert rows[method]["n"] == 1, method
        (run,) = [r for r in runs if r["name"] == method]
        epochs = [e for e in store.events(run["run_id"]) if e.get("type") == "epoch"]
        assert set(epochs[0]["parts"]) == parts, method
    # the examples' shared GAF teacher is one configuration: one group, whichever file ran it
    shared = [r for r in runs if r["name"] == "gaf24-teacher"]
    assert len(shared) == 8 and len({r["group_key"] for r in shared}) == 1
    assert [row["name"] for row in table].count("gaf24-teacher") == 1
    assert "mixup(α=0.2)" in rows["kd-mixup"]["loss"]

    # the two-teacher student: both teachers with their weights, in the summary and in show
    (two,) = [r for r in runs if r["name"] == "two-teachers"]
    got = [(t["model"], t["weight"]) for t in two["teacher_runs"]]
    assert got == [("WRN16-3(gaf)", 0.7), ("WRN16-3(signal)", 0.3)]
    shown = run_cli("show", two["run_id"], workspace=ws).stdout
    assert "WRN16-3(gaf) weight 0.7" in shown and "WRN16-3(signal) weight 0.3" in shown
    assert rows["two-teachers"]["label"].startswith("0.7·WRN16-3(gaf) + 0.3·WRN16-3(signal)")

    # DASK's learned projection (64 → 192) is saved for resume
    (dask,) = [r for r in runs if r["name"] == "dask"]
    last = torch.load(ws / dask["run_id"] / "ckpt" / "last.pt", weights_only=True)
    assert last["objective"]["projections.0.weight"].shape == (192, 64)

    logs = "".join((ws / r["run_id"] / "stdout.log").read_text() for r in runs)
    assert "view mtf(16, 8 bins) train: computed" in logs and "view rp(16) train: computed" in logs
    assert "data cifar10: train (20, 3, 32, 32)" in logs
