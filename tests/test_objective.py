"""kdtui.engine.objective: the spec's weighted sum, against the losses.py terms summed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from kdtui.engine import losses
from kdtui.engine.models import ModelOutput, WideResNet
from kdtui.engine.objective import Objective
from kdtui.spec import LossSpec

B, K = 8, 5


def randn(*shape: int, seed: int, grad: bool = False) -> Tensor:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return x.requires_grad_(grad)


def output(feat_shapes: list[tuple[int, ...]], width: int, seed: int, grad: bool) -> ModelOutput:
    feats = [randn(B, *shape, seed=seed + i, grad=grad) for i, shape in enumerate(feat_shapes)]
    return ModelOutput(
        randn(B, K, seed=seed + 10, grad=grad), feats, randn(B, width, seed=seed + 20, grad=grad)
    )


# A 1-D student (WRN-k=1-like widths) and two teachers: a 2-D one of another width (DASK
# needs a projection) and a 1-D one of the student's width (no projection).
STUDENT = [(16, 32), (32, 16), (64, 8)]
TEACHER_2D = [(48, 8, 8), (96, 4, 4), (192, 2, 2)]
TEACHER_1D = [(16, 32), (32, 16), (64, 8)]

FULL = {
    "ce": 0.5,
    "kd": {"T": 3, "weight": 0.7},
    "at": {"weight": 100, "p": 2, "groups": [0, 2]},
    "sp": {"weight": 30, "groups": [1]},
    "amd": {"weight": 10, "local": True, "margin": 1.2, "scale": 32, "groups": [1]},
    "dask": {"weight": 2, "w_distance": 1, "w_angle": 2, "w_semantic": 0.5},
    "amc": {"weight": 0.1, "margin": 0.4},
}


@pytest.fixture
def batch():
    student = output(STUDENT, 64, seed=0, grad=True)
    teachers = [
        output(TEACHER_2D, 192, seed=100, grad=False),
        output(TEACHER_1D, 64, seed=200, grad=False),
    ]
    labels = torch.arange(B) % K
    return student, teachers, labels


def hand_sum(obj: Objective, s: ModelOutput, ts: list[ModelOutput], target: Tensor, labels: Tensor):
    """Every term written out with the losses.py functions, weights applied by hand."""
    w = [0.7, 0.3]
    proj = [obj.projections[0], lambda e: e]
    kd = sum(w[j] * losses.kd_loss(s.logits, t.logits, 3) for j, t in enumerate(ts))
    at = sum(
        w[j]
        * (losses.at_loss(s.feats[0], t.feats[0], 2) + losses.at_loss(s.feats[2], t.feats[2], 2))
        for j, t in enumerate(ts)
    )
    sp = sum(w[j] * losses.sp_loss(s.feats[1], t.feats[1]) for j, t in enumerate(ts))
    amd = sum(
        w[j] * losses.amd_loss(s.feats[1], t.feats[1], margin=1.2, scale=32, local=True)
        for j, t in enumerate(ts)
    )
    dask = sum(
        w[j]
        * losses.dask_loss(
            s.emb, t.emb, proj[j](s.emb), t.emb, w_distance=1, w_angle=2, w_semantic=0.5
        )
        for j, t in enumerate(ts)
    )
    return {
        "ce": 0.5 * losses.ce_loss(s.logits, target),
        "kd": 0.7 * kd,
        "at": 100 * at,
        "sp": 30 * sp,
        "amd": 10 * amd,
        "dask": 2 * dask,
        "amc": 0.1 * losses.amc_loss(s.emb, labels, 0.4),
    }


def test_every_term_equals_the_hand_summed_losses(batch):
    student, teachers, labels = batch
    obj = Objective(LossSpec.model_validate(FULL), [0.7, 0.3], 64, [192, 64])
    total, parts = obj(student, teachers, labels, labels)
    expected = hand_sum(obj, student, teachers, labels, labels)
    assert set(parts) == set(expected)
    for name, value in expected.items():
        assert parts[name].item() == pytest.approx(value.item(), rel=1e-5), name
        assert not parts[name].requires_grad  # logged parts are detached
    assert total.item() == pytest.approx(sum(v.item() for v in expected.values()), rel=1e-5)


def test_mixed_target_goes_to_ce_and_hard_labels_to_amc(batch):
    student, teachers, labels = batch
    soft = torch.softmax(randn(B, K, seed=7), dim=1)
    obj = Objective(LossSpec.model_validate(FULL), [0.7, 0.3], 64, [192, 64])
    _, parts = obj(student, teachers, soft, labels)
    expected = hand_sum(obj, student, teachers, soft, labels)
    assert parts["ce"].item() == pytest.approx(expected["ce"].item(), rel=1e-6)
    assert parts["amc"].item() == pytest.approx(expected["amc"].item(), rel=1e-6)


def test_groups_select_the_feature_pairs(batch):
    student, teachers, labels = batch
    one = teachers[:1]
    values = {}
    for groups in ([0], [1], [2], [0, 1, 2]):
        spec = LossSpec.model_validate({"ce": 0, "at": {"weight": 1, "groups": groups}})
        values[tuple(groups)] = Objective(spec, [1.0], 64, [192])(student, one, labels, labels)[0]
    for g in range(3):
        alone = losses.at_loss(student.feats[g], one[0].feats[g])
        assert values[(g,)].item() == pytest.approx(alone.item(), rel=1e-6)
    assert values[(0, 1, 2)].item() == pytest.approx(
        sum(values[(g,)].item() for g in range(3)), rel=1e-6
    )


def test_teacher_weights_scale_each_teacher_and_zero_skips_it(batch):
    student, teachers, labels = batch
    spec = LossSpec.model_validate({"ce": 0, "kd": {"T": 4, "weight": 1}})
    kd = [losses.kd_loss(student.logits, t.logits, 4).item() for t in teachers]
    total, _ = Objective(spec, [0.25, 2.0], 64, [192, 64])(student, teachers, labels, labels)
    assert total.item() == pytest.approx(0.25 * kd[0] + 2.0 * kd[1], rel=1e-6)
    poisoned = teachers[0]._replace(logits=torch.full((B, K), math.nan))
    total, _ = Objective(spec, [0.0, 1.0], 64, [192, 64])(
        student, [poisoned, teachers[1]], labels, labels
    )
    assert total.item() == pytest.approx(kd[1], rel=1e-6)  # the weight-0 teacher is not computed


def test_gradients_reach_the_student_and_the_projection_only(batch):
    student, teachers, labels = batch
    obj = Objective(LossSpec.model_validate(FULL), [0.7, 0.3], 64, [192, 64])
    total, _ = obj(student, teachers, labels, labels)
    total.backward()
    for x in (student.logits, student.emb, *student.feats):
        assert x.grad is not None and x.grad.abs().sum() > 0
    for t in teachers:
        assert all(not x.requires_grad for x in (t.logits, t.emb, *t.feats))
    assert obj.projections[0].weight.grad.abs().sum() > 0


def test_dask_projections_only_where_widths_differ():
    dask = LossSpec.model_validate({"dask": {}})
    obj = Objective(dask, [1.0, 1.0], 64, [192, 64])
    assert [tuple(p.shape) for p in obj.parameters()] == [(192, 64)]
    assert set(obj.state_dict()) == {"projections.0.weight"}
    assert not list(Objective(LossSpec.model_validate({"kd": {}}), [1.0], 64, [192]).parameters())


def test_ce_only_and_mismatched_teachers(batch):
    student, teachers, labels = batch
    total, parts = Objective(LossSpec(), [], 64, [])(student, [], labels, labels)
    assert list(parts) == ["ce"]
    assert total.item() == pytest.approx(losses.ce_loss(student.logits, labels).item())
    with pytest.raises(ValueError, match="teacher"):
        Objective(LossSpec.model_validate({"kd": {}}), [1.0], 64, [64])(
            student, teachers, labels, labels
        )


def test_cross_modal_models_through_the_objective():
    """Real WRNs: a 2-D GAF-like teacher and a 1-D student, every term at once, finite."""
    torch.manual_seed(0)
    student = WideResNet(10, 1, K, 3, dim=1)
    teacher = WideResNet(10, 2, K, 3, dim=2).eval().requires_grad_(False)
    x1, x2 = torch.randn(B, 3, 64), torch.randn(B, 3, 16, 16)
    obj = Objective(LossSpec.model_validate(FULL), [1.0], 64, [128])
    total, parts = obj(student(x1), [teacher(x2)], torch.arange(B) % K, torch.arange(B) % K)
    total.backward()
    assert torch.isfinite(total) and set(parts) == set(FULL)
    assert all(p.grad is not None for p in student.parameters())


@pytest.mark.slow
def test_dask_projection_and_mixing_resume_exactly(tmp_path):
    """Stop after epoch 1 and resume: every epoch, and the learned projection, equal those of
    a run never stopped (the projection is in last.pt, the mixing draws from the saved
    generator)."""
    from conftest import tiny_experiment

    from kdtui.engine.trainer import Cancelled, Engine, Heartbeat
    from kdtui.launcher import enqueue
    from kdtui.spec import validate_spec
    from kdtui.store import Store, read_events

    torch.save({"model": WideResNet(10, 2, 3, 3, dim=1).state_dict()}, tmp_path / "t.pt")
    exp = tiny_experiment(
        "r",
        epochs=3,
        schedule={"kind": "constant"},
        teachers=[{"checkpoint": "t.pt", "model": {"depth": 10, "width": 2, "view": "signal"}}],
        loss={"kd": {}, "dask": {}, "amc": {}},
        augment={"mixup": {"alpha": 1.0}},
    )

    def train(ws_name: str, stop_after: int | None = None) -> Engine:
        store = Store(tmp_path / ws_name)
        if not store.root.exists():
            enqueue(store, validate_spec(exp, base_dir=tmp_path))
        engine = Engine(store.run_dir(store.runs()[0]["run_id"]))
        record = engine.event

        def event(kind: str, **fields) -> None:
            record(kind, **fields)
            if kind == "epoch" and fields["epoch"] == stop_after:
                engine.cancel.set()

        engine.event = event  # type: ignore[method-assign]
        beat = Heartbeat(engine.run_dir / "heartbeat")
        try:
            engine.train(beat)
        except Cancelled:
            assert stop_after is not None
        finally:
            beat.stop()
        return engine

    def epochs(engine: Engine) -> list[tuple]:
        return [
            (e["epoch"], e["train_loss"], e["acc"], e["nll"], e["parts"]["dask"])
            for e in read_events(engine.run_dir)
            if e.get("type") == "epoch"
        ]

    whole = train("whole")
    assert [e[0] for e in epochs(train("broken", stop_after=1))] == [1]
    resumed = train("broken")

    assert [e[0] for e in epochs(resumed)] == [1, 2, 3]
    for a, b in zip(epochs(whole), epochs(resumed), strict=True):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-7)
    last = [
        torch.load(e.ckpt_dir / "last.pt", weights_only=True)["objective"] for e in (whole, resumed)
    ]
    assert last[0]["projections.0.weight"].shape == (128, 64)
    assert torch.allclose(last[0]["projections.0.weight"], last[1]["projections.0.weight"])
