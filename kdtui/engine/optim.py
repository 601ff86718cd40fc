"""The engine's optimiser: ``torch.optim.SGD`` without its import of ``torch._dynamo``.

Every ``torch.optim`` optimizer imports the compiler (``torch._dynamo``: sympy, the FSDP and
DTensor modules, ~1.2–2.7 CPU s here, as long as ``import torch`` itself) the first time one
of its methods runs: ``add_param_group`` (so the constructor), ``zero_grad``, ``state_dict``
and ``load_state_dict`` are wrapped in ``torch._disable_dynamo``, and ``step`` calls
``torch._dynamo.graph_break()``. Both wrappers only matter while torch.compile traces the
optimizer, which the engine never does (``compile`` compiles the student's forward only):
outside a trace they are no-ops. :class:`SGD` calls the same functions unwrapped, so its
updates and its state dicts are torch's, bit for bit, and an engine's start does not pay for
a compiler it does not use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

# Under torch's ``functools.wraps`` wrappers (the dynamo guards and, on a class that an
# optimizer already patched, the profiler hook); the function itself where there are none.
_unwrapped = inspect.unwrap
_Optimizer = torch.optim.Optimizer
_SGD_STEP = _unwrapped(torch.optim.SGD.step)


class SGD(torch.optim.SGD):
    """``torch.optim.SGD``, its methods called without the wrappers that import dynamo."""

    add_param_group = _unwrapped(_Optimizer.add_param_group)
    zero_grad = _unwrapped(_Optimizer.zero_grad)
    state_dict = _unwrapped(_Optimizer.state_dict)
    load_state_dict = _unwrapped(_Optimizer.load_state_dict)

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update, under the grad mode torch's own wrapper sets (off unless the
        optimizer is ``differentiable``)."""
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return _SGD_STEP(self, closure)
