"""Every example spec end to end through the real CLI, shrunk to one epoch and seed 0.

All examples go into one workspace and one queue (``kdtui run --detach --skip-done`` per
file), as a user would run them. A configuration that several files have in common (the
GAF teacher of eight of them) is trained once, the students of every file picking that one
run: each configuration of every file trains, and none twice, for what costs time is an
engine's start (torch). Three CPU slots on two cores: a slot whose run waits for its
teacher, or for the runner's next look, leaves no core idle.

The study goes last, its grids shrunk to the teacher its two-teacher student names: what
only it adds is defaults, grids, names from templates and teachers named by them (test_study
expands the whole of it). Whatever of it another file trained already, it leaves out too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run_cli, tiny_experiment, wait_for
from test_images import write_cifar10, write_image_folder

from kdtui.engine.models import WideResNet
from kdtui.spec import validate_spec
from kdtui.store import TERMINAL, Store

pytestmark = pytest.mark.slow

EXAMPLES = sorted(Path("examples").glob("*.json"))
STUDY = Path("examples/study.json")

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
    "kd-two-teachers": {"ce", "kd"},  # the study's
    # not examples: the mtf / rp views and the image-folder data (below)
    "views": {"ce", "kd", "sp"},
    "folder-cutmix": {"ce", "amc"},
}

#: The study's grids, shrunk to the GAF teacher its two-teacher student names (the other
#: sizes are the same experiment at another depth and width: test_study expands them all).
STUDY_GRIDS = {
    "gaf-WRN{student.depth}-{student.width}": {"student.depth": [16], "student.width": [3]},
    "kd-{teachers[0].experiment}": {"teachers[0].experiment": ["gaf-WRN16-3"]},
}


def shrunk(path: Path, cifar: Path) -> dict:
    """The example with one epoch, one seed, 56 synthetic windows, and the tiny CIFAR-10
    folder."""
    body = json.loads(path.read_text())
    for exp in [body.get("defaults", {}), *body["experiments"]]:
        if "epochs" in exp:  # a study's experiments may take the defaults' epochs
            exp["epochs"] = 1
        if "seeds" in exp:
            exp["seeds"] = [0]
        if exp.get("schedule", {}).get("kind") == "step":
            exp["schedule"]["milestones"] = [1]
        data = exp.get("data", {})
        if data.get("dataset") == "cifar10":
            data["path"] = str(cifar)
        if data.get("dataset") == "synthetic-har":  # at most 7 classes: 8 windows each
            data.update(n_train=56, n_test=28)
    return body


def shrunk_study(body: dict) -> dict:
    """The shrunk study with its grids shrunk too (``STUDY_GRIDS``)."""
    body = json.loads(json.dumps(body))
    for exp in body["experiments"]:
        if "grid" in exp:
            exp["grid"] = STUDY_GRIDS[exp["name"]]
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


def test_every_example_trains_and_tables_one_group_per_method(
    tmp_path, cleanup_processes, monkeypatch
):
    ws = cleanup_processes
    # pyts compiles every numba kernel it has when imported (~30 s of CPU in each fresh
    # process); the engine's MTF and RP views are the same numbers run as Python (and the
    # compiled kernels are tested in test_data, in the test process).
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    cifar = tmp_path / "cifar-10-batches-py"
    write_cifar10(cifar)
    write_image_folder(tmp_path / "folder")
    specs = [("extras.json", {"experiments": [views_run(tmp_path), folder_run(tmp_path)]})]
    specs += [(p.name, shrunk(p, cifar)) for p in EXAMPLES if p != STUDY]
    full_study = shrunk(STUDY, cifar)
    specs.append((STUDY.name, shrunk_study(full_study)))
    said = {}
    for name, body in specs:
        (tmp_path / name).write_text(json.dumps(body))
        result = run_cli(
            "run", str(tmp_path / name), "--detach", "--jobs", "3", "--skip-done", workspace=ws
        )
        assert result.returncode == 0, result.stdout + result.stderr
        said[name] = result.stdout

    # the shrunk study trains the study's own experiments (the same groups, by name)
    loaded = {name: validate_spec(body, source=name).group_keys for name, body in specs}
    study, full = loaded[STUDY.name], validate_spec(full_study).group_keys
    assert len(full) == 11 and study.items() <= full.items(), (study, full)
    # each file queued the configurations no file before it had, and said which it left out
    groups: set[str] = set()
    for name, keys in loaded.items():
        again = [f"{exp} seed 0" for exp, key in keys.items() if key in groups]
        if again:
            assert f"skipped, in the store already: {'; '.join(again)}" in said[name], name
        else:
            assert "skipped" not in said[name], name
        new = set(keys.values()) - groups
        assert f"queued {len(new)} run" in said[name], (name, said[name])
        groups |= new

    store = Store(ws)
    wait_for(
        lambda: all(r["status"] in TERMINAL for r in store.runs()),
        timeout=600,
        every=0.2,
        what="every example run to end",
    )
    runs = json.loads(run_cli("ls", "--format", "json", workspace=ws).stdout)
    failed = {r["run_id"]: r.get("error") for r in runs if r["status"] != "done"}
    assert not failed, failed
    assert sorted(r["group_key"] for r in runs) == sorted(groups)

    # one group per method, each with its one seed, and its loss parts in the events
    table = json.loads(run_cli("table", "--format", "json", workspace=ws).stdout)
    rows = {row["name"]: row for row in table}
    assert len(rows) == len(table) == len(groups)
    for method, parts in METHODS.items():
        assert rows[method]["n"] == 1, method
        (run,) = [r for r in runs if r["name"] == method]
        epochs = [e for e in store.events(run["run_id"]) if e.get("type") == "epoch"]
        assert set(epochs[0]["parts"]) == parts, method
    # the examples' shared GAF teacher is one configuration: trained once, by the first
    # file, and every file's students learn from that run
    by_name = {r["name"]: r for r in runs}
    by_group = {r["group_key"]: r["run_id"] for r in runs}
    shared = by_name["gaf24-teacher"]["run_id"]
    students = ["amd-g", "amd-gl", "at", "kd-mixup", "kd-cutmix", "dask", "kd", "sp"]
    assert {by_name[s]["teacher_runs"][0]["run_id"] for s in students} == {shared}
    assert "gaf24-teacher seed 0" in said["kd.json"]
    assert "mixup(α=0.2)" in rows["kd-mixup"]["loss"]

    # the two-teacher student: both teachers with their weights, in the summary and in show
    two = by_name["two-teachers"]
    got = [(t["run_id"], t["model"], t["weight"]) for t in two["teacher_runs"]]
    signal = by_name["signal-teacher"]["run_id"]
    assert got == [(shared, "WRN16-3(gaf)", 0.7), (signal, "WRN16-3(signal)", 0.3)]
    shown = run_cli("show", two["run_id"], workspace=ws).stdout
    assert "WRN16-3(gaf) weight 0.7" in shown and "WRN16-3(signal) weight 0.3" in shown
    assert rows["two-teachers"]["label"].startswith("0.7·WRN16-3(gaf) + 0.3·WRN16-3(signal)")
    # the study's: its teachers, named by grid-expanded and written names, are the runs of
    # those experiments' groups (another file's runs, where a file trained them first)
    study_two = by_name["kd-two-teachers"]
    got = [(t["run_id"], t["weight"]) for t in study_two["teacher_runs"]]
    want = [(by_group[study["gaf-WRN16-3"]], 0.7), (by_group[study["signal-WRN16-3"]], 0.3)]
    assert got == want and study_two["group_key"] == study["kd-two-teachers"]
    kd_grid = next(r for r in runs if r["group_key"] == study["kd-gaf-WRN16-3"])
    assert kd_grid["teacher_runs"][0]["run_id"] == by_group[study["gaf-WRN16-3"]]

    # DASK's learned projection (64 → 192) is saved for resume
    last = torch.load(ws / by_name["dask"]["run_id"] / "ckpt" / "last.pt", weights_only=True)
    assert last["objective"]["projections.0.weight"].shape == (192, 64)

    logs = "".join((ws / r["run_id"] / "stdout.log").read_text() for r in runs)
    assert "view mtf(16, 8 bins) train: computed" in logs and "view rp(16) train: computed" in logs
    assert "data cifar10: train (20, 3, 32, 32)" in logs
