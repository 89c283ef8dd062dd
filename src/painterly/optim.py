"""Optimisers for the image, behind one name -> torch optimiser factory.

Every optimiser is stepped one iteration at a time with a closure that returns
the loss and fills ``.grad``, so the engine can report, save and stop between
any two iterations whatever the optimiser.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from painterly.errors import OptionError

__all__ = ["DEFAULT_LEARNING_RATES", "OptimizerName", "make_optimizer"]

OptimizerName = Literal["lbfgs", "adam"]

#: Learning rates on the [0, 1] image scale.  L-BFGS's 1.0 is a full quasi-Newton step.
DEFAULT_LEARNING_RATES: dict[str, float] = {"lbfgs": 1.0, "adam": 0.02}


def make_optimizer(name: str, image: Tensor, learning_rate: float | None = None) -> torch.optim.Optimizer:
    """Create the optimiser ``name`` over the single tensor ``image``.

    L-BFGS runs one iteration (one function evaluation, no line search, as in
    Gatys et al.'s and Johnson's implementations) per ``step`` and keeps its
    curvature history between calls.
    """
    if name not in DEFAULT_LEARNING_RATES:
        raise OptionError(f"unknown optimizer {name!r}; choose one of {', '.join(DEFAULT_LEARNING_RATES)}")
    rate = DEFAULT_LEARNING_RATES[name] if learning_rate is None else learning_rate
    if not rate > 0:
        raise OptionError(f"learning rate must be positive, not {rate}")
    if name == "lbfgs":
        return torch.optim.LBFGS(
            [image], lr=rate, max_iter=1, history_size=100, tolerance_grad=0.0, tolerance_change=0.0
        )
    return torch.optim.Adam([image], lr=rate)
