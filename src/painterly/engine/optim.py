"""Optimisers for the image, configured by one small settings object.

Every optimiser is stepped one iteration at a time with a closure that returns
the loss and fills ``.grad``, so the engine can report, save and stop between
any two iterations whatever the optimiser.  ``docs/optimizers.md`` compares them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from painterly.errors import OptionError

__all__ = [
    "DEFAULT_LEARNING_RATES",
    "OPTIMIZER_OPTIONS",
    "OptimizerName",
    "OptimizerSettings",
    "auto_history_size",
    "check_optimizer_options",
    "learning_rate_at",
    "make_optimizer",
    "unused_optimizer_options",
]

OptimizerName = Literal["lbfgs", "adam", "gd"]

#: Learning rates on the [0, 1] image scale.  L-BFGS's 1.0 is a full quasi-Newton step; gradient
#: descent's rate multiplies the raw gradient, whose scale depends on the loss weights.
DEFAULT_LEARNING_RATES: dict[str, float] = {"lbfgs": 1.0, "adam": 0.02, "gd": 0.002}


#: Options that only some optimisers read, with the optimisers that read them (the learning rate, its decay and
#: iterate averaging act on every optimiser). Given for another optimiser, they would be silently ignored.
OPTIMIZER_OPTIONS: dict[str, tuple[str, ...]] = {"history_size": ("lbfgs",), "line_search": ("lbfgs",),
                                                 "momentum": ("gd",)}  # fmt: skip
#: Momentum of "gd" when none is given.
DEFAULT_MOMENTUM = 0.9


def unused_optimizer_options(options: Mapping[str, Any]) -> list[str]:
    """The optimiser-specific options set (not None, not False) for an optimiser that does not read them."""
    optimizer = options.get("optimizer", "lbfgs")
    return [
        name
        for name, readers in OPTIMIZER_OPTIONS.items()
        if options.get(name) is not None and options.get(name) is not False and optimizer not in readers
    ]


def check_optimizer_options(options: Mapping[str, Any]) -> None:
    """Refuse an option the chosen optimiser would ignore, naming the optimiser that uses it."""
    for name in unused_optimizer_options(options):
        readers = " or ".join(f"--optimizer {reader}" for reader in OPTIMIZER_OPTIONS[name])
        raise OptionError(
            f"{name.replace('_', ' ')} is not used by the {options.get('optimizer', 'lbfgs')} optimizer, only with "
            f"{readers}; leave {name} (--{name.replace('_', '-')}) unset or choose that optimizer"
        )


@dataclass(frozen=True)
class OptimizerSettings:
    """How the image is optimised; every field is a ``stylize`` keyword of the same meaning."""

    name: str = "lbfgs"
    learning_rate: float | None = None  #: None: DEFAULT_LEARNING_RATES[name]
    history_size: int = 20  #: L-BFGS curvature pairs kept (memory: 2 image copies each); runs pass auto_history_size's
    line_search: bool = False  #: L-BFGS strong-Wolfe line search (several evaluations per step)
    momentum: float = DEFAULT_MOMENTUM  #: gradient descent momentum (0 = the plain x <- x - rate * dx)
    lr_decay: float = 1.0  #: final rate as a fraction of the first (cosine schedule); 1 = constant
    average: float = 0.0  #: decay of a running (exponential) average of iterates returned instead; 0 = off

    def __post_init__(self) -> None:
        if self.name not in DEFAULT_LEARNING_RATES:
            raise OptionError(f"unknown optimizer {self.name!r}; choose one of {', '.join(DEFAULT_LEARNING_RATES)}")
        if self.learning_rate is not None and not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise OptionError(f"learning rate must be positive, not {self.learning_rate}")
        if self.history_size < 1:
            raise OptionError(f"L-BFGS history size must be at least 1, not {self.history_size}")
        if not 0 <= self.momentum < 1:
            raise OptionError(f"momentum must be in [0, 1), not {self.momentum}")
        if not 0 < self.lr_decay <= 1:
            raise OptionError(f"learning-rate decay must be in (0, 1], not {self.lr_decay}")
        if not 0 <= self.average < 1:
            raise OptionError(f"iterate averaging decay must be in [0, 1), not {self.average}")

    @classmethod
    def of(cls, config: Any, history_size: int) -> OptimizerSettings:
        """The settings a :class:`painterly.RunConfig` asks for (its momentum None is :data:`DEFAULT_MOMENTUM`), with
        the L-BFGS history the plan chose; refuses out-of-range values in one sentence."""
        momentum = DEFAULT_MOMENTUM if config.momentum is None else config.momentum
        return cls(name=config.optimizer, learning_rate=config.learning_rate, history_size=history_size,
                   line_search=config.line_search, momentum=momentum, lr_decay=config.lr_decay,
                   average=config.average)  # fmt: skip

    @property
    def rate(self) -> float:
        return DEFAULT_LEARNING_RATES[self.name] if self.learning_rate is None else self.learning_rate


#: Memory the automatic L-BFGS history may take, and its bounds (docs/optimizers.md, "History size").
HISTORY_BUDGET_BYTES = 512 * 2**20
MIN_AUTO_HISTORY, MAX_AUTO_HISTORY = 20, 50


def auto_history_size(pixels: int) -> int:
    """L-BFGS curvature pairs for an image of ``pixels`` (width x height) when the user sets none.

    More pairs give a better curvature model: at 512 px, 100 pairs reach a given loss about 4-5 % sooner than
    20 in wall time, although each step costs about 10 % more; 50 pairs do as well per step as 100 and reach
    their loss about 2 % sooner still (docs/optimizers.md, "History size at 512 px").
    Each pair is two float32 RGB images, so the count is what fits in HISTORY_BUDGET_BYTES, within
    [MIN_AUTO_HISTORY, MAX_AUTO_HISTORY]: 50 up to 0.44 Mpx (768 x 576), 28 at 1024 x 768, 20 from 1.1 Mpx.
    """
    pair_bytes = 2 * 3 * 4 * pixels
    return max(MIN_AUTO_HISTORY, min(MAX_AUTO_HISTORY, HISTORY_BUDGET_BYTES // max(1, pair_bytes)))


def learning_rate_at(base: float, step: int, steps: int, decay: float) -> float:
    """Cosine schedule from ``base`` at step 0 to ``base * decay`` at the last step of a stage."""
    if decay >= 1 or steps <= 1:
        return base
    progress = min(1.0, step / (steps - 1))
    return base * (decay + (1 - decay) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(settings: OptimizerSettings, image: Tensor, rate: float | None = None) -> torch.optim.Optimizer:
    """Create the optimiser over the single tensor ``image`` (``rate`` overrides the settings' rate).

    L-BFGS runs one iteration per ``step`` (one function evaluation without line
    search, as in Gatys et al.'s and Johnson's implementations) and keeps its
    curvature history between calls.
    """
    rate = settings.rate if rate is None else rate
    if settings.name == "lbfgs":
        return torch.optim.LBFGS(
            [image],
            lr=rate,
            max_iter=1,
            history_size=settings.history_size,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn="strong_wolfe" if settings.line_search else None,
        )
    if settings.name == "adam":
        return torch.optim.Adam([image], lr=rate)
    return torch.optim.SGD([image], lr=rate, momentum=settings.momentum)
