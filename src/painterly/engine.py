"""The optimisation loop of one stage: image pixels are the parameters, the objective is fixed.

Kept apart from :mod:`painterly.stylize` (which decides *what* to optimise at
which size) so that optimisers, fault handling and checkpoints have one home.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from painterly.objective import Objective
from painterly.optim import make_optimizer

__all__ = ["StepCallback", "optimize"]

#: Called after each step with (current image, {"content":.., "style":.., "tv":.., "total":..}).
StepCallback = Callable[[Tensor, dict[str, float]], None]


def optimize(
    objective: Objective,
    start: Tensor,
    *,
    steps: int,
    optimizer: str,
    learning_rate: float | None,
    on_step: StepCallback,
) -> Tensor:
    """Run ``steps`` optimiser iterations from ``start`` and return the final image (detached)."""
    image = start.detach().clone().contiguous().requires_grad_(True)
    opt = make_optimizer(optimizer, image, learning_rate)
    latest: dict[str, Tensor] = {}

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        total, parts = objective(image)
        total.backward()
        latest.clear()
        latest.update(parts)
        latest["total"] = total
        return total

    for _ in range(steps):
        opt.step(closure)
        if optimizer != "lbfgs":  # first-order methods may step outside the valid pixel range
            with torch.no_grad():
                image.clamp_(0, 1)
        on_step(image.detach(), {name: float(value.detach()) for name, value in latest.items()})
    return image.detach()
