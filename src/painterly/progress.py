"""A progress bar whose ETA knows that later coarse-to-fine stages cost more per step.

Progress is counted in *work*: one step at a stage costs that stage's pixel count
(the network's cost is linear in pixels), so the bar fills at a steady rate and
tqdm's remaining-time estimate is right across stages of different sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from painterly.records import StepRecord

if TYPE_CHECKING:
    from painterly.events import Event

__all__ = ["ProgressBar", "WorkProgress"]


class WorkProgress:
    """tqdm bar over the work of a run planned as ``(steps, pixels)`` per stage."""

    def __init__(self, plan: Sequence[tuple[int, int]], done: int = 0) -> None:
        """``done`` steps of the plan are already behind (a resumed run): the bar starts there."""
        from tqdm.auto import tqdm

        self._steps = sum(steps for steps, _ in plan)
        total = sum(steps * pixels for steps, pixels in plan)  # integers: the bar ends exactly at 100 %
        initial = 0
        for count, pixels in plan:
            taken = min(count, done)
            initial, done = initial + taken * pixels, done - taken
        self._bar = tqdm(
            total=total,
            initial=initial,
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}",
        )

    def update(self, record: StepRecord) -> None:
        width, height = record.size
        losses = " ".join(f"{name}={value:.3g}" for name, value in record.losses.items())
        self._bar.set_postfix_str(
            f"step {record.step}/{self._steps} stage {record.stage}/{record.stages} {width}x{height} {losses}",
            refresh=False,
        )
        self._bar.update(width * height)

    def close(self) -> None:
        self._bar.close()


class ProgressBar:
    """The bar as a sink of a run's events: opened by ``RunStarted``, closed by whichever event ends the run."""

    def __init__(self) -> None:
        self._bar: WorkProgress | None = None

    @property
    def showing(self) -> bool:
        """Whether a bar is open: from the run's start until the event that ends it (finished, stopped, failed)."""
        return self._bar is not None

    def __call__(self, event: Event) -> None:
        from painterly.events import Failed, Finished, RunStarted, Stopped

        if isinstance(event, RunStarted):
            plan = [(steps, width * height) for steps, (width, height) in zip(event.steps, event.sizes, strict=True)]
            self._bar = WorkProgress(plan, done=event.resumed_at_step)
        elif isinstance(event, StepRecord) and self._bar is not None:
            self._bar.update(event)
        elif isinstance(event, (Finished, Stopped, Failed)) and self._bar is not None:
            self._bar.close()
            self._bar = None
