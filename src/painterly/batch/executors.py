"""Executors: where a batch's jobs run.  One interface; the driver (:mod:`painterly.batch.driver`) neither knows
nor cares which.

An executor takes the jobs to run and yields an :class:`Outcome` per job as each ends, in the order they end; it
calls ``on_start(key)`` when a job starts (the driver marks it running).  It never writes results and never
touches the job store: the driver does both, in one process, so the store has one writer and results land whole.

:class:`InlineExecutor` runs the jobs one after another on one warm :class:`~painterly.session.Session` in this
process: the network is loaded once, and a style's targets are computed once per stage size and reused by every
job that shares that style and size.  On one machine with one device it is the fastest (docs/batch.md).  The Ray
executor (:mod:`painterly.batch.ray_executor`) spreads them over a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from painterly.batch.grid import JobSpec
from painterly.batch.runner import JobResult, run_job
from painterly.errors import PainterlyError
from painterly.events import Event, StopToken
from painterly.run import Interrupted
from painterly.session import Session

__all__ = ["DEFAULT_CHECKPOINT_EVERY", "Executor", "InlineExecutor", "Outcome", "Task", "failure_reason"]

#: Steps between a batch job's checkpoints: what a killed job loses at most.  A checkpoint holds L-BFGS's history,
#: about 60 MB at 256 px and 240 MB at 512 px, so writing one costs a fraction of a second; every 100 steps keeps
#: that under 1 % of a job's time.
DEFAULT_CHECKPOINT_EVERY = 100

Task = tuple[str, JobSpec]  #: (key, job)


@dataclass
class Outcome:
    """How one job ended: a result, a failure with its one-sentence reason, or interrupted (its checkpoint kept)."""

    key: str
    result: JobResult | None = None
    failure: str | None = None
    interrupted: bool = False
    #: the worker's copies of input files -> the user's paths (a Ray node caches inputs under their digests)
    paths: dict[str, str] = field(default_factory=dict)


class Executor(Protocol):
    """Runs jobs and yields their outcomes as they end (see the module)."""

    name: str

    def run(
        self, tasks: Sequence[Task], work: Path, *, on_start: Callable[[str], None], should_stop: StopToken
    ) -> Iterator[Outcome]:
        """Run ``tasks``, their checkpoints and traces in ``work``; stop starting jobs once ``should_stop`` is set
        and stop the running ones between two steps (they yield ``interrupted``)."""
        ...

    def close(self) -> None:
        """Let go of workers and devices."""
        ...


def failure_reason(error: BaseException) -> str:
    """One sentence for a job's failure: a painterly error's own, or the exception's kind and message."""
    if isinstance(error, PainterlyError):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class InlineExecutor:
    """Every job in this process, one after another, on one warm session (see the module)."""

    name = "inline"

    def __init__(
        self, session: Session | None = None, *, checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        sink: Callable[[Event], None] | None = None,
    ) -> None:  # fmt: skip
        """``session``: the session to run on (a new one on the config's device otherwise); ``checkpoint_every``:
        steps between a job's checkpoints; ``sink`` receives every job's events (the driver's progress bar)."""
        self.session = session if session is not None else Session()
        self.checkpoint_every = checkpoint_every
        self.sink = sink

    def run(
        self, tasks: Sequence[Task], work: Path, *, on_start: Callable[[str], None], should_stop: StopToken
    ) -> Iterator[Outcome]:
        for key, job in tasks:
            if should_stop.requested:
                return
            on_start(key)
            try:
                result = run_job(self.session, key, job, work, checkpoint_every=self.checkpoint_every,
                                 should_stop=should_stop, sinks=(self.sink,) if self.sink else ())  # fmt: skip
            except Interrupted:
                yield Outcome(key, interrupted=True)
                return
            except Exception as error:  # one job's failure, whatever it is, is its own; the batch goes on
                yield Outcome(key, failure=failure_reason(error))
            else:
                yield Outcome(key, result=result)

    def close(self) -> None:
        self.session.close()
