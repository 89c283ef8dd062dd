"""The step loop: stops only between steps, recovers from numerical faults, keeps the last good image."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from painterly.engine.loop import BLOWUP_FACTOR, MAX_RECOVERIES, MAX_RESTARTS, NumericalError, StepInfo, optimize
from painterly.engine.optim import OptimizerSettings


class Quadratic:
    """A stand-in objective: squared distance to a target image, optionally poisoned with NaN."""

    def __init__(
        self,
        target: Tensor,
        poison_after: int | None = None,
        poison_calls: int = 10**9,
        stiffness: Tensor | None = None,
        poison: float = float("nan"),
        poison_at: tuple[int, ...] = (),
    ) -> None:
        self.target, self.calls, self.poison_after, self.poison_calls = target, 0, poison_after, poison_calls
        self.poison_at = poison_at  # these evaluations (1-based) are poisoned too
        self.poison = poison  # what a poisoned evaluation's loss is multiplied by: NaN, or a blow-up's factor
        self.stiffness = stiffness  # per-pixel weights: unequal ones keep L-BFGS from solving it in two steps
        self.inputs: list[Tensor] = []  # the image of every evaluation, to see where each step started

    def __call__(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        self.calls += 1
        self.inputs.append(image.detach().clone())
        loss = (image - self.target).pow(2).mul(1 if self.stiffness is None else self.stiffness).mean()
        start = self.poison_after
        after = start is not None and start < self.calls <= start + self.poison_calls
        if after or self.calls in self.poison_at:
            loss = loss * self.poison
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


def _stiff_quadratic(**poison: float) -> Quadratic:
    """A target and curvatures that vary from pixel to pixel, so L-BFGS takes many steps to get there."""
    generator = torch.Generator().manual_seed(0)
    target = 0.2 + 0.6 * torch.rand(1, 3, 4, 4, generator=generator)
    return Quadratic(target, stiffness=torch.logspace(0, 2, 48).view(1, 3, 4, 4), **poison)  # type: ignore[arg-type]


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


def test_a_blow_up_goes_back_to_the_stages_best_picture_with_a_fresh_lbfgs() -> None:
    """A loss far above the stage's lowest (L-BFGS overshooting; here the objective's 7th evaluation is made 1000
    times too high) sends the picture back to the one with the lowest loss, L-BFGS starts afresh, the step is not
    counted, and the caller hears of it; the run goes on to its full count and on toward the target."""
    objective = _stiff_quadratic(poison_after=6, poison_calls=1, poison=1000.0)
    seen: list[Tensor] = []
    restarts: list[tuple[int, float, float]] = []
    result = optimize(objective, torch.zeros(1, 3, 4, 4), steps=10, settings=OptimizerSettings("lbfgs"),
                      on_step=lambda info: seen.append(info.image), blowup_factor=BLOWUP_FACTOR,
                      on_restart=lambda *heard: restarts.append(heard))  # fmt: skip
    assert result.steps_done == 10 and len(seen) == 10
    assert objective.calls == 12, "the blown-up step is not counted; one more evaluation judges the last picture"
    [(step, loss, best)] = restarts
    assert step == 7 and loss > BLOWUP_FACTOR * best
    # the lowest loss was the 6th evaluation's (a quadratic's losses fall): the 8th starts from its picture
    assert torch.equal(objective.inputs[7], objective.inputs[5]) and not torch.equal(
        objective.inputs[6], objective.inputs[5]
    )
    assert result.state["rate"] == 1.0, "a blow-up does not shrink the step (a fresh L-BFGS starts small anyway)"
    assert result.state["best_loss"] < best and torch.isfinite(result.state["best_image"]).all()
    distance = [float((image - objective.target).abs().max()) for image in (objective.inputs[5], result.image)]
    assert distance[1] < 0.9 * distance[0], "and it went on toward the target"


def test_without_the_guard_a_blow_up_is_a_step_like_any_other() -> None:
    """Revision 6 and before (``blowup_factor=None``): the loop does not look at the loss's size, and its checkpoints
    carry no best picture (nothing would read it)."""
    objective = _stiff_quadratic(poison_after=6, poison_calls=1, poison=1000.0)
    losses: list[float] = []
    checkpoints: list[dict[str, object]] = []
    result = optimize(objective, torch.zeros(1, 3, 4, 4), steps=10, settings=OptimizerSettings("lbfgs"),
                      on_step=lambda info: losses.append(info.losses["total"]), checkpoint_every=4,
                      on_checkpoint=lambda done, state: checkpoints.append(state))  # fmt: skip
    assert objective.calls == 10 and losses[6] > BLOWUP_FACTOR * min(losses[:6])
    assert len(checkpoints) == 2 and all(state["best_image"] is None for state in [*checkpoints, result.state])


def test_a_blow_up_at_the_last_step_ends_the_stage_on_its_best_picture() -> None:
    """The last step's picture is judged once more (the 9th evaluation of 8 steps, here made 1000 times too high):
    the stage hands back the picture with the lowest loss, the one the 8th step started from, not the blown-up one."""
    objective = _stiff_quadratic(poison_after=8, poison=1000.0)
    restarts: list[tuple[int, float, float]] = []
    result = optimize(objective, torch.zeros(1, 3, 4, 4), steps=8, settings=OptimizerSettings("lbfgs"),
                      on_step=lambda info: None, blowup_factor=BLOWUP_FACTOR,
                      on_restart=lambda *heard: restarts.append(heard))  # fmt: skip
    assert objective.calls == 9 and [step for step, _, _ in restarts] == [8]
    assert torch.equal(result.image, objective.inputs[7].clamp(0, 1))
    unguarded = _stiff_quadratic(poison_after=8, poison=1000.0)
    plain = optimize(unguarded, torch.zeros(1, 3, 4, 4), steps=8, settings=OptimizerSettings("lbfgs"),
                     on_step=lambda info: None)  # fmt: skip
    assert unguarded.calls == 8 and not torch.equal(plain.image, result.image), "without the guard: the last picture"


def test_the_guard_changes_nothing_in_a_run_that_does_not_blow_up() -> None:
    """A run with no blow-up computes bit for bit as without the guard (so revision 7 is revision 6 there)."""
    results = []
    for factor in (None, BLOWUP_FACTOR):
        objective = _stiff_quadratic()
        results.append(optimize(objective, torch.zeros(1, 3, 4, 4), steps=15, settings=OptimizerSettings("lbfgs"),
                                on_step=lambda info: None, blowup_factor=factor))  # fmt: skip
    assert torch.equal(results[0].image, results[1].image)


def test_a_repeated_blow_up_halves_the_step_size_a_single_one_does_not() -> None:
    """Revision 8: a fresh L-BFGS from the same picture takes the same first steps, so a blow-up two steps after a
    restart comes back (Tübingen with Udnie at 512 px: 3.754e+05 twice); the second and later blow-ups of a stage also
    halve the step size.  One blow-up keeps it (revision 7's picture), and without the flag nothing halves."""
    for poisoned, halving, rate in (((6,), True, 1.0), ((6, 8, 10), True, 0.25), ((6, 8, 10), False, 1.0)):
        objective = _stiff_quadratic(poison_at=poisoned, poison=1000.0)
        restarts: list[tuple[int, float, float]] = []
        result = optimize(objective, torch.zeros(1, 3, 4, 4), steps=12, settings=OptimizerSettings("lbfgs"),
                          on_step=lambda info: None, blowup_factor=BLOWUP_FACTOR,
                          on_restart=lambda *heard, into=restarts: into.append(heard),
                          halve_rate_on_repeated_blowup=halving)  # fmt: skip
        assert len(restarts) == len(poisoned) and result.steps_done == 12
        assert result.state["rate"] == rate, (poisoned, halving)


def test_blow_ups_are_answered_at_most_max_restarts_times_a_stage() -> None:
    """An objective that blows up at every evaluation after the 3rd: the loop goes back MAX_RESTARTS times, then
    carries on (a blow-up is not fatal: the picture is still there) to the end of the stage, which hands back the
    best picture."""
    objective = _stiff_quadratic(poison_after=3, poison=1000.0)
    restarts: list[tuple[int, float, float]] = []
    result = optimize(objective, torch.zeros(1, 3, 4, 4), steps=8, settings=OptimizerSettings("lbfgs"),
                      on_step=lambda info: None, blowup_factor=BLOWUP_FACTOR,
                      on_restart=lambda *heard: restarts.append(heard))  # fmt: skip
    assert result.steps_done == 8 and objective.calls == 8 + MAX_RESTARTS + 1
    assert len(restarts) == MAX_RESTARTS + 1, "four times back during the stage, and its blown-up end replaced"
    assert torch.equal(result.image, objective.inputs[2].clamp(0, 1)), "by the best picture: the 3rd evaluation's"
