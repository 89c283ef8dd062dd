"""The optimisation loop of one stage: image pixels are the parameters, the objective is fixed.

Kept apart from :mod:`painterly.stylize` (which decides *what* to optimise at
which size) so that optimisers, numerical-fault handling and checkpoints have one
home.  The loop only ever stops *between* steps, so the image and the optimiser
state it hands back are always consistent and can be checkpointed and resumed
bit-for-bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from PIL import Image
from torch import Tensor

from painterly.engine.optim import OptimizerSettings, learning_rate_at, make_optimizer
from painterly.errors import PainterlyError

__all__ = [
    "BLOWUP_FACTOR",
    "MAX_RESTARTS",
    "Evaluator",
    "NumericalError",
    "RestartCallback",
    "StageResult",
    "StepCallback",
    "StepInfo",
    "optimize",
]


class Evaluator(Protocol):
    """What the engine optimises: ``image -> (total, parts)``, the total's gradient reaching ``image``.

    :class:`painterly.objective.whole.Objective` evaluates the whole image in one pass,
    :class:`painterly.objective.tiled.TiledObjective` window by window, over the same kinds of terms; the engine
    needs no more than this.  The protocol lives here, with its one consumer, so the engine imports nothing of the
    objectives.
    """

    def __call__(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]: ...


#: How often a non-finite loss may be answered by halving the step size before giving up.
MAX_RECOVERIES = 4

#: A loss above this many times the lowest loss of the stage so far is a blow-up: L-BFGS took a quasi-Newton step
#: far past the region its curvature pairs describe, and its memory keeps it there (the chelsea cat with Turner's
#: Shipwreck at 256 px on two threads: 40 at step 30, 165 000 at step 31 and every step after; docs/quality.md,
#: "L-BFGS blow-ups").  Healthy runs rise this far now and then and come back by themselves (3 of the 42 pairs of
#: ../shared/data at 256 px); going back costs those a few per cent of any judge's score at most.
BLOWUP_FACTOR = 10.0
#: How many blow-ups per stage are answered by going back to the stage's best picture with a fresh optimiser; after
#: that the loop carries on as it goes.
MAX_RESTARTS = 4

#: Called as ``on_restart(step, loss, best)`` when a blow-up sent the loop back to the stage's best picture.
RestartCallback = Callable[[int, float, float], None]


@dataclass(frozen=True)
class StepInfo:
    """What the loop knows after one accepted step."""

    image: Tensor  #: the image after the step (the running average when averaging is on); a copy
    losses: dict[str, float]  #: weighted parts and "total", evaluated at the start of the step
    evaluations: int  #: objective evaluations this step (L-BFGS with line search makes several)


StepCallback = Callable[[StepInfo], None]


class NumericalError(PainterlyError):
    """The loss stayed NaN/infinite even with smaller steps; ``image`` is the last good one.

    ``picture`` is that image as the run would have returned it (colours restored, alpha put back), set by the
    run before the error reaches its caller; None when the engine is used on its own.
    """

    def __init__(self, message: str, image: Tensor) -> None:
        super().__init__(message)
        self.image = image
        self.picture: Image.Image | None = None


@dataclass
class StageResult:
    """Where a stage ended: finished, or stopped between two steps on request."""

    image: Tensor
    steps_done: int
    stopped: bool
    state: dict[str, Any] = field(repr=False)  #: optimiser state, rate and average: what a resume needs


def _finite(losses: dict[str, float], image: Tensor) -> bool:
    return all(math.isfinite(value) for value in losses.values()) and bool(torch.isfinite(image).all())


def optimize(
    objective: Evaluator,
    start: Tensor,
    *,
    steps: int,
    settings: OptimizerSettings,
    on_step: StepCallback,
    should_stop: Callable[[], bool] = lambda: False,
    resume_state: dict[str, Any] | None = None,
    first_step: int = 0,
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[int, dict[str, Any]], object] | None = None,
    blowup_factor: float | None = None,
    on_restart: RestartCallback | None = None,
    halve_rate_on_repeated_blowup: bool = False,
) -> StageResult:
    """Run steps ``first_step .. steps-1`` from ``start``; stop early if ``should_stop()`` turns true.

    A non-finite loss or image rolls back to the last good image and restarts the
    optimiser with half the step size (up to :data:`MAX_RECOVERIES` times), then
    raises :class:`NumericalError` carrying the last good image.  With
    ``blowup_factor``, a loss above that many times the stage's lowest so far
    sends the image back to the picture that had the lowest loss, with a fresh
    optimiser (its memory forgotten), up to :data:`MAX_RESTARTS` times; the
    step is not counted, and ``on_restart`` hears of it.  With
    ``halve_rate_on_repeated_blowup``, every blow-up after a stage's first also
    halves the step size: a fresh L-BFGS from the same picture takes the same
    first steps, so without it a blow-up two steps after a restart repeats
    itself until the restarts run out.  The last step's
    picture is judged once more at the end, and replaced by the best one if it
    blew up.  Every
    ``checkpoint_every`` steps, ``on_checkpoint(steps_done, state)`` gets
    what a resume needs.
    """
    rate = settings.rate if resume_state is None else resume_state["rate"]
    image = start.detach().clone().contiguous().requires_grad_(True)
    opt = make_optimizer(settings, image, rate)
    average = None
    best_loss, best_image = math.inf, image.detach().clone()  # the lowest loss of the stage and its picture
    if resume_state is not None:
        opt.load_state_dict(resume_state["optimizer"])
        average = resume_state.get("average")
        average = None if average is None else average.to(image)
        if resume_state.get("best_image") is not None:  # checkpoints before the blow-up guard have none
            best_loss, best_image = resume_state["best_loss"], resume_state["best_image"].to(image)
    guarded = blowup_factor is not None  # only then does a checkpoint carry the best picture (revision 7 on)
    latest: dict[str, Tensor] = {}
    evaluations = 0
    clip_in_objective = settings.name == "lbfgs"  # first-order methods clip the iterate itself, after each step

    def closure() -> Tensor:
        nonlocal evaluations
        evaluations += 1
        opt.zero_grad(set_to_none=True)
        # The objective judges the image as it will be saved: clipped to [0, 1]. L-BFGS iterates wander outside
        # (from noise to -0.6..1.8 within 50 steps at 256 px), and judging the unclipped iterate let it keep style
        # in out-of-range values that clipping at the end threw away (docs/optimizers.md, "Pixel range").
        total, parts = objective(image.clamp(0, 1) if clip_in_objective else image)
        total.backward()
        if not latest:  # report the losses at the step's first evaluation
            latest.update(parts)
            latest["total"] = total
        return total

    last_good = image.detach().clone()
    recoveries = restarts = 0
    done = first_step
    while done < steps:
        if should_stop():
            break
        for group in opt.param_groups:
            group["lr"] = learning_rate_at(rate, done, steps, settings.lr_decay)
        latest.clear()
        evaluations = 0
        opt.step(closure)  # type: ignore[arg-type]  # torch's stubs say the closure returns a float; a Tensor is fine
        if not clip_in_objective:  # projected gradient: first-order steps are clipped back into range
            with torch.no_grad():
                image.clamp_(0, 1)
        values = {name: float(value.detach()) for name, value in latest.items()}
        if not _finite(values, image):
            recoveries += 1
            if recoveries > MAX_RECOVERIES:
                raise NumericalError(
                    f"the loss became NaN or infinite at step {done + 1} of this stage even after {MAX_RECOVERIES} "
                    f"retries with smaller steps (last learning rate {rate:g}); "
                    "lower --learning-rate or the loss weights",
                    last_good.clamp(0, 1) if average is None else average,
                )
            rate /= 2
            with torch.no_grad():
                image.copy_(last_good)
            opt = make_optimizer(settings, image, rate)
            continue
        total = values["total"]  # the loss of the picture the step started from: last_good
        if blowup_factor is not None and total > blowup_factor * best_loss and restarts < MAX_RESTARTS:
            restarts += 1
            if halve_rate_on_repeated_blowup and restarts > 1:
                rate /= 2
            if on_restart is not None:
                on_restart(done + 1, total, best_loss)
            with torch.no_grad():
                image.copy_(best_image)
            last_good = best_image.clone()
            opt = make_optimizer(settings, image, rate)
            continue
        if total < best_loss:
            best_loss, best_image = total, last_good
        last_good = image.detach().clone()
        if settings.average:
            seen = last_good.clamp(0, 1)
            average = seen if average is None else average.lerp_(seen, 1 - settings.average)
        done += 1
        shown = last_good.clamp(0, 1) if average is None else average.clone()
        on_step(StepInfo(image=shown, losses=values, evaluations=evaluations))
        if on_checkpoint is not None and checkpoint_every and done % checkpoint_every == 0 and done < steps:
            on_checkpoint(done, _state(opt, rate, average, image, (best_loss, best_image) if guarded else None))
    if blowup_factor is not None and done == steps and average is None and math.isfinite(best_loss):
        # the last step's picture has not been judged yet: a blow-up there would end the stage (and start the
        # next one) as noise, so it costs one more evaluation to know; only its value is wanted, so no graph is
        # kept for a backward (the tiled objective still forms its gradient: its windows need it for their values)
        with torch.no_grad():
            final = float(objective(image.clamp(0, 1) if clip_in_objective else image)[0])
        if not math.isfinite(final) or final > blowup_factor * best_loss:
            if on_restart is not None:
                on_restart(done, final, best_loss)
            with torch.no_grad():
                image.copy_(best_image)
    return StageResult(
        image=image.detach().clamp(0, 1) if average is None else average,
        steps_done=done,
        stopped=done < steps,
        state=_state(opt, rate, average, image, (best_loss, best_image) if guarded else None),
    )


def _state(
    opt: torch.optim.Optimizer,
    rate: float,
    average: Tensor | None,
    image: Tensor,
    best: tuple[float, Tensor] | None,
) -> dict[str, Any]:
    """Everything a resumed stage needs to continue exactly: optimiser state, rate, average, iterate, and, with the
    blow-up guard on, the stage's lowest loss with its picture (what a blow-up goes back to; None without the guard,
    which never reads them: one picture less in every checkpoint)."""
    best_loss, best_image = (None, None) if best is None else best
    return {"optimizer": opt.state_dict(), "rate": rate, "average": average, "current": image.detach(),
            "best_loss": best_loss, "best_image": best_image}  # fmt: skip
