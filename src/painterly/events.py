"""One stream of typed records for everything a run reports, delivered to any number of sinks.

A run emits, in order: :class:`RunStarted`; then per stage a :class:`StageStarted` followed by one
:class:`~painterly.records.StepRecord` per optimiser step (and a :class:`WentBack` wherever a blow-up sent the
optimiser back to the stage's best picture); and finally exactly one of :class:`Finished`,
:class:`Stopped` or :class:`Failed`.  The progress bar, the CLI's trace and ``--save-every`` images, and user
callbacks are all sinks of that one stream, so a page or a job queue later is one more sink rather than
another hook in the loop.  A sink is any callable taking an event; it runs in the run's thread between two
steps, so it should be quick (hand heavy work to a queue).

Stopping is a :class:`StopToken`: whoever wants the run to stop (a signal handler, a web request, a sink)
calls :meth:`StopToken.request`; the engine checks it between two steps and nowhere else, so the image and
optimiser state it stops with are consistent and can be checkpointed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from painterly.records import StepRecord

log = logging.getLogger("painterly")

__all__ = [
    "Event",
    "EventStream",
    "Failed",
    "Finished",
    "RunStarted",
    "Sink",
    "StageStarted",
    "StepRecord",
    "StopToken",
    "Stopped",
    "WentBack",
]


@dataclass(frozen=True)
class RunStarted:
    """The plan, before the first step: the stages' sizes (width, height) and steps, and what the run resumes."""

    sizes: tuple[tuple[int, int], ...]
    steps: tuple[int, ...]
    precision: str  #: "float32" or "bfloat16"
    resumed_at_step: int = 0  #: steps already done by the run this one resumes (0 for a new run)
    #: what made the run's pictures (painterly.provenance JSON; None when an input is an in-memory object): a sink
    #: that writes step images puts it into them, as the finished picture carries it
    provenance: str | None = None

    @property
    def total_steps(self) -> int:
        return sum(self.steps)


@dataclass(frozen=True)
class StageStarted:
    """A stage begins (or, resumed, continues at ``first_step`` of its own steps)."""

    stage: int  #: 1-based
    stages: int
    size: tuple[int, int]  #: (width, height)
    steps: int
    first_step: int = 0
    tiled: bool = False


@dataclass(frozen=True)
class WentBack:
    """The loss jumped above BLOWUP_FACTOR times the stage's lowest (an L-BFGS blow-up, painterly.engine.loop), and
    the optimiser went back to the picture with that lowest loss, its memory forgotten; the step is not counted.
    ``stage_step`` is the stage's own step count at that moment (the stage's last when its final picture blew up)."""

    stage: int  #: 1-based
    stage_step: int
    loss: float  #: the loss that jumped
    best: float  #: the stage's lowest loss, which the picture went back to


@dataclass(frozen=True)
class Finished:
    """The run completed all its steps; ``image`` is the result as returned."""

    step: int
    elapsed: float
    image: Image.Image = field(repr=False)


@dataclass(frozen=True)
class Stopped:
    """The run stopped between two steps on request; ``checkpoint`` continues it (None: none could be written)."""

    step: int
    elapsed: float
    image: Image.Image = field(repr=False)
    checkpoint: Path | None = None


@dataclass(frozen=True)
class Failed:
    """The run ended in an error after it had started; ``image`` is the last good picture, where there is one."""

    step: int
    reason: str
    image: Image.Image | None = field(default=None, repr=False)


Event = RunStarted | StageStarted | StepRecord | WentBack | Finished | Stopped | Failed
Sink = Callable[[Event], None]


class EventStream:
    """Delivers each event to every sink in order.

    During the run a sink's exception ends the run (as a callback's always did).  The event that ends the run
    (:class:`Finished`, :class:`Stopped`, :class:`Failed`) is delivered by :meth:`end` to every sink whatever
    some of them raise: one broken sink must not keep the others from closing their files, nor replace the
    outcome (the partial picture, the real error) with its own exception.
    """

    def __init__(self, sinks: Iterable[Sink] = ()) -> None:
        self.sinks: list[Sink] = list(sinks)

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink(event)

    def end(self, event: Finished | Stopped | Failed) -> None:
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as error:  # logged, not raised: the run's own outcome is what the caller must get
                log.error(f"an event sink failed on {type(event).__name__}: {error}")


def on_steps(callback: Callable[[StepRecord], None]) -> Sink:
    """A sink that hands only the step records to ``callback`` (the ``on_step`` of :func:`painterly.stylize`)."""

    def sink(event: Event) -> None:
        if isinstance(event, StepRecord):
            callback(event)

    return sink


class StopToken:
    """A request to stop between two steps; setting it is all a signal handler or another thread does.

    Calling the token answers whether a stop was requested, so it serves wherever a ``should_stop`` is expected.
    A plain flag, not a ``threading.Event``: setting a bool is atomic, and a signal handler must not wait for a
    lock that the code it interrupted may hold.
    """

    def __init__(self) -> None:
        self._requested = False

    def request(self) -> None:
        self._requested = True

    @property
    def requested(self) -> bool:
        return self._requested

    def __call__(self) -> bool:
        return self._requested
