"""The step loop: stops only between steps, recovers from numerical faults, keeps the last good image."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from painterly.engine import MAX_RECOVERIES, NumericalError, StepInfo, optimize
from painterly.optim import OptimizerSettings


class Quadratic:
    """A stand-in objective: squared distance to a target image, optionally poisoned with NaN."""

    def __init__(self, target: Tensor, poison_after: int | None = None, poison_calls: int = 10**9) -> None:
        self.target, self.calls, self.poison_after, self.poison_calls = target, 0, poison_after, poison_calls

    def __call__(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        self.calls += 1
        loss = (image - self.target).pow(2).mean()
        if self.poison_after is not None and self.poison_after < self.calls <= self.poison_after + self.poison_calls:
            loss = loss * float("nan")
        return loss, {"content": loss}


def test_a_transient_nan_is_rolled_back_with_a_smaller_step() -> None:
    target = torch.full((1, 3, 4, 4), 0.8)
    objective = Quadratic(target, poison_after=3, poison_calls=2)
    losses: list[float] = []
    result = optimize(objective, torch.zeros(1, 3, 4, 4), steps=10, settings=OptimizerSettings("adam", 0.05),
                      on_step=lambda info: losses.append(info.losses["total"]))  # fmt: skip
    assert result.steps_done == 10 and not result.stopped
    assert all(loss == loss for loss in losses), "no NaN ever reported"
    assert result.state["rate"] == pytest.approx(0.05 / 4), "halved once per fault"
    assert torch.isfinite(result.image).all()


def test_a_persistent_nan_stops_with_the_last_good_image() -> None:
    objective = Quadratic(torch.full((1, 3, 4, 4), 0.8), poison_after=5)
    seen: list[Tensor] = []
    with pytest.raises(NumericalError, match="NaN or infinite") as info:
        optimize(objective, torch.zeros(1, 3, 4, 4), steps=50, settings=OptimizerSettings("adam", 0.05),
                 on_step=lambda info: seen.append(info.image))  # fmt: skip
    assert len(seen) == 5 and torch.equal(info.value.image, seen[-1])
    assert objective.calls == 5 + MAX_RECOVERIES + 1


def test_stop_request_ends_between_steps_with_consistent_state() -> None:
    objective = Quadratic(torch.full((1, 3, 4, 4), 0.8))
    count = {"steps": 0}

    def on_step(info: StepInfo) -> None:
        count["steps"] += 1

    result = optimize(objective, torch.zeros(1, 3, 4, 4), steps=20, settings=OptimizerSettings("lbfgs"),
                      on_step=on_step, should_stop=lambda: count["steps"] >= 7)  # fmt: skip
    assert result.stopped and result.steps_done == 7
    assert result.state["optimizer"]["state"], "L-BFGS history is handed back for a checkpoint"
