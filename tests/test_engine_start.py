"""An engine's start does only what its first batch needs: no compiler imported for an
optimiser that is never compiled, and the optimiser it uses instead is torch's SGD, bit for
bit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import tiny_experiment

from kdtui.engine.models import WideResNet
from kdtui.engine.optim import SGD
from kdtui.launcher import enqueue
from kdtui.spec import validate_spec
from kdtui.store import Store, read_events

SETTINGS = [
    {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": False},
    {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True},
    {"lr": 0.01, "momentum": 0.0, "weight_decay": 0.0, "nesterov": False},
]


def _steps(opt_class: type[torch.optim.SGD], settings: dict, state: dict | None = None):
    """A small WRN trained four steps by ``opt_class`` (with a cosine schedule), from a fixed
    start and, when given, from an optimiser state: its parameters and optimiser state."""
    torch.manual_seed(0)
    model = WideResNet(10, 1, 3, 2, dim=1)
    opt = opt_class(model.parameters(), **settings)
    if state is not None:
        opt.load_state_dict(state)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=1e-4)
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):
        x = torch.randn(8, 2, 32, generator=gen)
        y = torch.randint(0, 3, (8,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(x).logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return [p.detach().clone() for p in model.parameters()], opt.state_dict()


@pytest.mark.parametrize("settings", SETTINGS)
def test_the_engines_sgd_is_torchs_bit_for_bit(settings: dict) -> None:
    ours, our_state = _steps(SGD, settings)
    theirs, their_state = _steps(torch.optim.SGD, settings)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert our_state["param_groups"] == their_state["param_groups"]
    assert our_state["state"].keys() == their_state["state"].keys()
    for k, v in our_state["state"].items():
        buf = their_state["state"][k]["momentum_buffer"]
        assert (v["momentum_buffer"] is None and buf is None) or torch.equal(
            v["momentum_buffer"], buf
        )
    # a state saved by either resumes in the other: last.pt files of earlier runs still load
    resumed_ours, _ = _steps(SGD, settings, their_state)
    resumed_theirs, _ = _steps(torch.optim.SGD, settings, our_state)
    assert all(torch.equal(a, b) for a, b in zip(resumed_ours, resumed_theirs, strict=True))


def test_sgd_with_a_closure_returns_its_loss_and_keeps_grad_mode_off_inside() -> None:
    model = torch.nn.Linear(3, 1)
    opt = SGD(model.parameters(), lr=0.1)
    seen = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = model(torch.ones(2, 3)).sum()
        loss.backward()
        seen.append(torch.is_grad_enabled())
        return loss

    assert isinstance(opt.step(closure), torch.Tensor)
    assert seen == [True] and torch.is_grad_enabled()


def test_an_engine_run_never_imports_the_compiler(tmp_path: Path) -> None:
    """The fault: torch.optim's optimizers import torch._dynamo (sympy, FSDP, DTensor: as
    long as ``import torch`` itself) the first time one is built, stepped or saved, seconds
    of every engine's start spent on a compiler no run without ``compile`` uses. A KD run
    with a teacher, trained, checkpointed and then resumed from its ``last.pt``, in a fresh
    interpreter: the compiler is never imported, nor anything else heavy it does not use."""
    teacher = tmp_path / "teacher.pt"
    torch.save({"model": WideResNet(10, 1, 3, 3, dim=2).state_dict()}, teacher)
    store = Store(tmp_path / "ws")
    model = {"depth": 10, "width": 1, "view": {"kind": "gaf", "image_size": 16}}
    exp = tiny_experiment(
        "start", epochs=1, teachers=[{"checkpoint": str(teacher), "model": model}],
        loss={"ce": 0.3, "kd": {"T": 4, "weight": 0.7}},
    )  # fmt: skip
    (run_id,) = enqueue(store, validate_spec(exp))
    run_dir = store.run_dir(run_id)
    code = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from pathlib import Path
        from kdtui.engine import trainer
        run_dir = Path({str(run_dir)!r})
        with contextlib.redirect_stdout(io.StringIO()):
            codes = [trainer.Engine(run_dir).main() for _ in range(2)]  # the 2nd resumes
        heavy = ("torch._dynamo", "sympy", "pyts", "numba", "sklearn", "matplotlib")
        print(json.dumps({{"codes": codes, "loaded": [m for m in heavy if m in sys.modules]}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"codes": [0, 0], "loaded": []}
    events = read_events(run_dir)
    assert [e["type"] for e in events].count("epoch") == 1
    assert events[-1]["type"] == "end" and events[-1]["status"] == "done"
