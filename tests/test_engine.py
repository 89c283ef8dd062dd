"""The step loop: stops only between steps, recovers from numerical faults, keeps the last good image."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from painterly.engine.loop import MAX_RECOVERIES, NumericalError, StepInfo, optimize
from painterly.engine.optim import OptimizerSettings


class Quadratic:
    """A stand-in objective: squared distance to a target image, optionally poisoned with NaN."""

    def __init__(
        self,
        target: Tensor,
        poison_after: int | None = None,
        poison_calls: int = 10**9,
        stiffness: Tensor | None = None,
    ) -> None:
        self.target, self.calls, self.poison_after, self.poison_calls = target, 0, poison_after, poison_calls
        self.stiffness = stiffness  # per-pixel weights: unequal ones keep L-BFGS from solving it in two steps
        self.inputs: list[Tensor] = []  # the image of every evaluation, to see where each step started

    def __call__(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        self.calls += 1
        self.inputs.append(image.detach().clone())
        loss = (image - self.target).pow(2).mul(1 if self.stiffness is None else self.stiffness).mean()
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


def _stiff_quadratic(**poison: int) -> Quadratic:
    """A target and curvatures that vary from pixel to pixel, so L-BFGS takes many steps to get there."""
    generator = torch.Generator().manual_seed(0)
    target = 0.2 + 0.6 * torch.rand(1, 3, 4, 4, generator=generator)
    return Quadratic(target, stiffness=torch.logspace(0, 2, 48).view(1, 3, 4, 4), **poison)


def test_lbfgs_rolls_a_transient_nan_back_to_the_last_good_image() -> None:
    """L-BFGS (one evaluation per step): the poisoned steps restart from the last good image, with half the step."""
    objective = _stiff_quadratic(poison_after=3, poison_calls=2)
    seen: list[Tensor] = []
    result = optimize(objective, torch.zeros(1, 3, 4, 4), steps=8, settings=OptimizerSettings("lbfgs"),
                      on_step=lambda info: seen.append(info.image))  # fmt: skip
    assert result.steps_done == 8 and not result.stopped and len(seen) == 8
    assert objective.calls == 8 + 2, "one evaluation per step, plus the two poisoned ones"
    last_good = seen[2]  # after the third step, the last before the NaN
    assert not torch.equal(objective.inputs[3], objective.inputs[2]), "the image moved before the NaN"
    for call in (3, 4, 5):  # the poisoned evaluation, its retry, and the retry that succeeds all start there
        assert torch.equal(objective.inputs[call], last_good), call
    assert result.state["rate"] == pytest.approx(1.0 / 4), "halved once per fault"
    assert torch.isfinite(result.image).all()
    distance = [float((image - objective.target).abs().max()) for image in (last_good, result.image)]
    assert distance[1] < 0.9 * distance[0], "and it went on toward the target"


def test_lbfgs_with_a_persistent_nan_stops_with_the_last_good_image() -> None:
    objective = _stiff_quadratic(poison_after=3)
    seen: list[Tensor] = []
    with pytest.raises(NumericalError, match="NaN or infinite") as info:
        optimize(objective, torch.zeros(1, 3, 4, 4), steps=50, settings=OptimizerSettings("lbfgs"),
                 on_step=lambda info: seen.append(info.image))  # fmt: skip
    assert len(seen) == 3 and torch.equal(info.value.image, seen[-1])
    assert torch.isfinite(info.value.image).all() and float(info.value.image.abs().sum()) > 0
    assert objective.calls == 3 + MAX_RECOVERIES + 1
    assert all(torch.equal(image, seen[-1]) for image in objective.inputs[3:]), "every retry from the last good"
    assert "step 4" in str(info.value)


def test_stop_request_ends_between_steps_with_consistent_state() -> None:
    objective = Quadratic(torch.full((1, 3, 4, 4), 0.8))
    count = {"steps": 0}

    def on_step(info: StepInfo) -> None:
        count["steps"] += 1

    result = optimize(objective, torch.zeros(1, 3, 4, 4), steps=20, settings=OptimizerSettings("lbfgs"),
                      on_step=on_step, should_stop=lambda: count["steps"] >= 7)  # fmt: skip
    assert result.stopped and result.steps_done == 7
    assert result.state["optimizer"]["state"], "L-BFGS history is handed back for a checkpoint"
