"""Looking inside a run: what the engine keeps at its best and last epochs, and what
``kdtui analyze`` computes and draws from it, checked against scikit-learn and the
engine's own numbers on tiny real runs (a GAF teacher and a KD + AT signal student)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import run_cli, tiny_experiment

from kdtui.analysis import data as analysis_data
from kdtui.analysis import report
from kdtui.analysis.calibration import expected_calibration_error, reliability
from kdtui.engine import inspect
from kdtui.engine.losses import at_loss
from kdtui.engine.metrics import classification_metrics
from kdtui.engine.trainer import Engine
from kdtui.launcher import enqueue
from kdtui.spec import validate_spec
from kdtui.store import Store, read_events

# one test process runs them all (pytest-xdist): the module's trained runs are made once
pytestmark = pytest.mark.xdist_group("analysis")
PNG = b"\x89PNG\r\n\x1a\n"
TEACHER_VIEW = {"kind": "gaf", "image_size": 16}


def train_all(ws: Path, experiments: list[dict[str, Any]]) -> dict[str, str]:
    """Enqueue the experiments and train each run in this process, in order (teachers
    first); name -> run id."""
    store = Store(ws)
    run_ids = enqueue(store, validate_spec({"experiments": experiments}))
    for run_id in run_ids:
        with contextlib.redirect_stdout(io.StringIO()):
            assert Engine(store.run_dir(run_id)).main() == 0, read_events(store.run_dir(run_id))
    return {store.get(r)["name"]: r for r in run_ids}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A GAF teacher and a signal student that learns from it with KD + AT."""
    ws = tmp_path_factory.mktemp("analysis") / "ws"
    teacher = tiny_experiment("teacher", epochs=3)
    teacher["student"] = {"depth": 10, "width": 1, "view": TEACHER_VIEW}
    student = tiny_experiment(
        "student", epochs=3, teachers=[{"experiment": "teacher", "pick": "same-seed"}],
        loss={"ce": 0.3, "kd": {"T": 4, "weight": 0.7}, "at": {"weight": 100}},
    )  # fmt: skip
    return ws, train_all(ws, [teacher, student])


def epoch_event(ws: Path, run_id: str, epoch: int) -> dict[str, Any]:
    events = read_events(Store(ws).run_dir(run_id))
    return next(e for e in events if e["type"] == "epoch" and e["epoch"] == epoch)


# ---------------------------------------------------------------------- what a run keeps


def test_a_run_keeps_best_and_last_and_lists_them_in_its_summary(trained):
    ws, runs = trained
    store = Store(ws)
    for run_id in runs.values():
        summary = store.get(run_id)
        assert summary["analysis"] == ["best", "last"]
        best = analysis_data.load(store.run_dir(run_id), "best")
        last = analysis_data.load(store.run_dir(run_id), "last")
        assert best.epoch == summary["best_epoch"] and last.epoch == 3
        assert best.logits.shape == (24, 3) and best.logits.dtype == np.float32
        assert best.emb.shape[0] == 24 and len(best.labels) == 24
        # the labels are the test split's, the metrics the epoch's own
        assert best.metrics == {k: epoch_event(ws, run_id, best.epoch)[k] for k in best.metrics}


def test_archives_are_compact_and_read_without_pickle(trained):
    ws, runs = trained
    path = Store(ws).run_dir(runs["teacher"]) / "analysis" / "best.npz"
    with np.load(path, allow_pickle=False) as npz:
        assert npz["emb"].dtype == np.float16 and npz["att_m0_g0"].dtype == np.float16
        assert npz["view_v0"].dtype == np.float16 and npz["logits"].dtype == np.float32
        assert npz["view_v0"].shape == (6, 3, 16, 16)  # 2 samples × 3 classes, GAF per axis


def test_the_student_keeps_its_teachers_maps_on_the_same_samples(trained):
    ws, runs = trained
    store = Store(ws)
    student = analysis_data.load(store.run_dir(runs["student"]))
    teacher = analysis_data.load(store.run_dir(runs["teacher"]))
    assert [m.role for m in student.models] == ["student", "teacher 1"]
    assert student.models[1].source == runs["teacher"]
    assert np.array_equal(student.samples, teacher.samples)  # the same data: the same samples
    assert [v["kind"] for v in student.views] == ["signal", "gaf"]
    # 1-D maps for the signal student, 2-D for the GAF teacher, one per group
    assert [m.ndim for m in student.models[0].maps] == [2, 2, 2]  # (S, L)
    assert [m.shape[1:] for m in student.models[1].maps] == [(16, 16), (8, 8), (4, 4)]
    # the teacher's maps in the student's file are the teacher's own best epoch's maps
    for mine, its in zip(student.models[1].maps, teacher.models[0].maps, strict=True):
        np.testing.assert_allclose(mine, its, atol=2e-3)


def test_sample_choice_is_balanced_fixed_and_independent_of_the_run():
    labels = np.repeat(np.arange(3), 10)
    np.random.default_rng(5).shuffle(labels)
    picked = inspect.sample_indices(labels)
    assert np.bincount(labels[picked]).tolist() == [2, 2, 2]
    assert list(labels[picked]) == sorted(labels[picked])  # grouped by class
    torch.manual_seed(123)
    np.random.seed(123)  # a run's seeding does not move the choice
    assert np.array_equal(inspect.sample_indices(labels), picked)
    assert not np.array_equal(inspect.sample_indices(labels, seed=1), picked)
    many = np.arange(12).repeat(3)
    assert np.bincount(many[inspect.sample_indices(many)]).tolist() == [1] * 12
    assert len(inspect.sample_indices(np.arange(40).repeat(2))) == inspect.MAX_SAMPLES


def test_attention_maps_are_what_attention_transfer_compares():
    torch.manual_seed(0)
    s, t = torch.randn(4, 8, 6, 6), torch.randn(4, 16, 6, 6)
    (q_s,), (q_t,) = inspect.attention_maps([s]), inspect.attention_maps([t])
    assert q_s.shape == (4, 6, 6)
    assert torch.allclose(q_s.flatten(1).norm(dim=1), torch.ones(4))
    assert float((q_s - q_t).pow(2).mean()) == pytest.approx(float(at_loss(s, t)), rel=1e-5)


# ---------------------------------------------------------------------- the numbers


@pytest.fixture(scope="module")
def analysed(trained, tmp_path_factory) -> dict[str, report.Report]:
    """A report of each run and of each epoch, not all four pairs: a report draws its
    figures (seconds each), and test_cli_writes_pdfs... draws the student's last."""
    ws, runs = trained
    store = Store(ws)
    out = tmp_path_factory.mktemp("figures")
    return {
        f"{name}-{which}": report.write(
            store.get(runs[name]), store.run_dir(runs[name]), which, out / name / which
        )
        for name, which in (("teacher", "last"), ("student", "best"))
    }


def test_confusion_matrix_sums_to_the_test_set_and_matches_the_accuracy(trained, analysed):
    ws, runs = trained
    for key, rep in analysed.items():
        name, which = key.split("-")
        counts = np.asarray(rep.numbers["confusion"]["counts"])
        assert counts.sum() == 24
        summary = Store(ws).get(runs[name])
        reported = summary["best_acc" if which == "best" else "last_acc"]
        assert np.trace(counts) / 24 * 100 == pytest.approx(reported, abs=1e-4)
        rows = np.asarray(rep.numbers["confusion"]["normalised"])
        assert np.allclose(rows.sum(axis=1), 1.0)
        recall = [c["recall"] for c in rep.numbers["per_class"]["classes"]]
        assert np.allclose(np.diag(rows), recall)
        assert sum(c["support"] for c in rep.numbers["per_class"]["classes"]) == 24


def test_v_score_and_ece_equal_scikit_learn_and_the_engine(trained, analysed):
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    ws, runs = trained
    for key, rep in analysed.items():
        name, which = key.split("-")
        run_dir = Store(ws).run_dir(runs[name])
        with np.load(run_dir / "analysis" / f"{which}.npz") as npz:
            logits, labels, emb = npz["logits"], npz["labels"], npz["emb"].astype(np.float32)
        clusters = KMeans(n_clusters=3, n_init=10, random_state=0).fit(emb).labels_
        assert rep.numbers["v_score"] == v_measure_score(labels, clusters)
        event = epoch_event(ws, runs[name], rep.numbers["epoch"])
        assert rep.numbers["ece"] == event["ece"]  # one implementation, the same logits
        engine = classification_metrics(torch.from_numpy(logits), torch.from_numpy(labels))
        assert engine["ece"] == rep.numbers["ece"] and engine["acc"] == event["acc"]
        assert rep.numbers["nll"] == pytest.approx(event["nll"], rel=1e-5)
        on_disk = json.loads(rep.json_path.read_text())
        assert on_disk["ece"] == rep.numbers["ece"] and on_disk["v_score"] == rep.numbers["v_score"]
        assert len(on_disk["tsne"]["x"]) == 24 and on_disk["tsne"]["perplexity"] < 24


def torch_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """The engine's ECE as it was written in torch (Guo et al. 2017), as a reference."""
    conf, pred = probs.max(dim=1)
    correct = pred.eq(labels).float()
    edges = torch.linspace(0, 1, n_bins + 1)
    ece = torch.zeros(())
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.float().mean() * (correct[in_bin].mean() - conf[in_bin].mean()).abs()
    return float(ece)


def test_the_shared_ece_gives_the_engine_its_old_numbers():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, k = int(rng.integers(1, 300)), int(rng.integers(2, 10))
        logits = (rng.normal(size=(n, k)) * rng.uniform(0.1, 20)).astype(np.float32)
        labels = rng.integers(0, k, size=n)
        old = torch_ece(torch.from_numpy(logits).softmax(1), torch.from_numpy(labels))
        assert expected_calibration_error(logits, labels) == pytest.approx(old, abs=1e-6)


def test_reliability_bins_hold_every_sample_in_lo_hi():
    # softmax([log 3, 0]) = (0.75, 0.25): confidence 0.75, on no edge of 15 bins
    logits = np.array([[np.log(3.0), 0.0], [0.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    rel = reliability(logits, np.array([0, 0, 1]))
    assert sum(rel["count"]) == 3
    assert rel["count"][11] == 1 and rel["accuracy"][11] == 1.0  # 0.75 in (0.733, 0.8]
    assert rel["count"][7] == 2 and rel["accuracy"][7] == 0.5  # 0.5 in (0.467, 0.533]
    assert rel["ece"] == pytest.approx((1 * 0.25 + 2 * 0.0) / 3)


# ---------------------------------------------------------------------- the figures


def test_every_figure_is_a_non_empty_png(analysed):
    for key, rep in analysed.items():
        names = {p.name.split("-", 1)[1] for p in rep.figures}
        expected = {"confusion.png", "per-class.png", "reliability.png", "tsne.png",
                    "attention.png"}  # fmt: skip
        expected.add("views.png")  # GAF inputs: the teacher's own, or the student's teacher's
        assert names == expected, key
        for path in rep.figures:
            assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000, path
        assert json.loads(rep.json_path.read_text())["figures"] == [p.name for p in rep.figures]


def test_cli_writes_pdfs_and_says_what_it_wrote(trained, tmp_path):
    ws, runs = trained
    result = run_cli("analyze", runs["student"][:-1], "--epoch", "last", "--format", "pdf",
                     "--out", str(tmp_path / "figs"), workspace=ws, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{runs['student']} (last epoch 3): acc" in result.stdout
    assert "t-SNE of 24 embeddings" in result.stderr  # progress on the slow part
    folder = tmp_path / "figs" / runs["student"]
    pdfs = sorted(folder.glob("last-*.pdf"))
    assert len(pdfs) == 6 and all(p.read_bytes()[:5] == b"%PDF-" for p in pdfs)
    assert json.loads((folder / "last.json").read_text())["which"] == "last"


def test_the_best_epoch_says_it_was_picked_on_test(trained, analysed, tmp_path):
    """No data.val: the best epoch was picked on the test set, which flatters it; the
    line and the JSON say so (the figures' titles carry the same label), as ls and table
    do. The last epoch is picked by no one."""
    ws, runs = trained
    best = json.loads(analysed["student-best"].json_path.read_text())
    assert best["best_selected_on"] == "test"
    assert "best_selected_on" not in json.loads(analysed["teacher-last"].json_path.read_text())
    epoch = Store(ws).get(runs["teacher"])["best_epoch"]
    result = run_cli("analyze", runs["teacher"], "--out", str(tmp_path), workspace=ws, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{runs['teacher']} (best epoch {epoch}, picked on test): acc" in result.stdout
    assert report.epoch_label("best", 7, "val") == "best epoch 7, picked on validation"
    assert report.epoch_label("last", 9, None) == "last epoch 9"


def test_a_run_without_analysis_data_gets_one_line(trained, tmp_path):
    ws, runs = trained
    old = tmp_path / "ws"
    old_ids = train_all(old, [tiny_experiment("old", epochs=1)])
    store = Store(old)
    for path in (store.run_dir(old_ids["old"]) / "analysis").iterdir():
        path.unlink()  # as a run trained before kdtui kept anything
    assert run_cli("record", "from notes", "71.5", workspace=old).returncode == 0
    recorded = next(r["run_id"] for r in Store(old).runs() if r["name"] == "from notes")
    for ref, needle in (
        (old_ids["old"], "no analysis data (trained before kdtui kept it)"),
        (recorded, "recorded by hand, not trained here: no model outputs to analyse"),
    ):
        result = run_cli("analyze", ref, workspace=old)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert lines == [f"{ref}: {needle}"], result.stderr
        assert "Traceback" not in result.stderr


def test_analysis_of_a_stopped_run_names_what_it_has(tmp_path):
    ids = train_all(tmp_path / "ws", [tiny_experiment("short", epochs=1)])
    run_dir = Store(tmp_path / "ws").run_dir(ids["short"])
    (run_dir / "analysis" / "last.npz").unlink()
    with pytest.raises(
        analysis_data.NoAnalysisData, match=r"no 'last' analysis data \(it has: best\)"
    ):
        analysis_data.load(run_dir, "last")
    (run_dir / "analysis" / "best.npz").write_bytes(b"torn")
    with pytest.raises(analysis_data.NoAnalysisData, match="unreadable"):
        analysis_data.load(run_dir, "best")


def test_the_cli_starts_without_the_plotting_libraries():
    code = (
        "import sys, kdtui.cli; "
        "print(sorted(m for m in ('matplotlib', 'sklearn', 'scipy', 'numpy', 'torch') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
