"""One job on a warm :class:`~painterly.session.Session`: what every executor runs, here or on a Ray actor.

The job writes its checkpoint every ``checkpoint_every`` steps (and when stopped) and its trace as it goes, both in
a work folder beside the results, under the job's key; if a checkpoint is there when the job starts, the job
continues from it (the resume machinery of :mod:`painterly.run`: same revision, tiling plan and precision, bit for
bit on a CPU), and its trace goes on where it stopped.  A checkpoint whose inputs changed or that cannot be read is
set aside with a note, and the job starts afresh.  On success the checkpoint is deleted and the result returned as
values (:class:`JobResult`); the driver writes the result folder, so a remote worker never writes the results.

A sketch's colouring (``kind="colorize"``) runs :func:`painterly.colorize` on the same session, with the same stop
and sinks, so its steps, trace and result are a style transfer's; it keeps no checkpoint (its content is the computed
colour fill, not a file), so a stopped one starts again from the beginning.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from painterly.batch.grid import JobSpec
from painterly.config import RunConfig
from painterly.events import Event, RunStarted, Sink
from painterly.io.checkpoint import CheckpointError, load_checkpoint
from painterly.io.images import PROVENANCE_KEY
from painterly.records import StepRecord
from painterly.session import Session
from painterly.sketch.colorize import colorize, colorize_keywords

__all__ = ["JobResult", "checkpoint_path", "run_job", "trace_path"]

log = logging.getLogger("painterly")


@dataclass
class JobResult:
    """What a finished job hands back: plain values (a Ray actor returns it to the driver by pickling)."""

    key: str
    image: Image.Image = field(repr=False)  #: the picture, its provenance in ``image.info`` (as a run returns it)
    provenance: dict[str, Any] | None  #: what made it (painterly.provenance), with every automatic value resolved
    losses: dict[str, float]  #: the last step's losses
    trace: str  #: one JSON line per step, as ``painterly --trace`` writes them (a resumed job's whole trace)
    seconds: float  #: wall time of this attempt (not counting earlier, interrupted ones)
    resumed_at_step: int  #: 0, or the step its checkpoint had reached
    worker: str = ""  #: which machine and process ran it


def checkpoint_path(work: Path, key: str) -> Path:
    return work / f"{key}.ckpt"


def trace_path(work: Path, key: str) -> Path:
    return work / f"{key}.trace.jsonl"


class _Recorder:
    """A sink keeping what the result needs: the provenance and start step, the last losses, and the trace."""

    def __init__(self, trace: Path) -> None:
        self.trace = trace
        self.provenance: str | None = None
        self.resumed_at_step = 0
        self.losses: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.provenance, self.resumed_at_step = event.provenance, event.resumed_at_step
        elif isinstance(event, StepRecord):
            self.losses = dict(event.losses)
            row = {"step": event.step, "stage": event.stage, "size": event.size, "seconds": round(event.elapsed, 4),
                   "evaluations": event.evaluations, "precision": event.precision, **event.losses}  # fmt: skip
            with open(self.trace, "a") as handle:  # appended per step: a killed job keeps its trace so far
                handle.write(json.dumps(row) + "\n")


def run_job(
    session: Session,
    key: str,
    job: JobSpec,
    work: Path,
    *,
    checkpoint_every: int = 0,
    should_stop: Callable[[], bool] | None = None,
    sinks: tuple[Callable[[Event], None], ...] = (),
) -> JobResult:
    """Run ``job`` on ``session`` (a style transfer continuing from its checkpoint in ``work`` if there is one; a
    sketch's colouring from the beginning); raises what the run raises (:class:`painterly.run.Interrupted` when
    stopped, with a style transfer's checkpoint written)."""
    work.mkdir(parents=True, exist_ok=True)
    checkpoint, trace = checkpoint_path(work, key), trace_path(work, key)
    recorder = _Recorder(trace)
    started = time.perf_counter()
    if job.kind == "colorize":
        trace.unlink(missing_ok=True)  # no checkpoint: an earlier attempt's steps are not this one's
        image = colorize(job.content, list(job.styles), **job.options, **colorize_keywords(job.config),
                         session=session, should_stop=should_stop, sinks=[recorder, *sinks])  # fmt: skip
        provenance = image.info.get(PROVENANCE_KEY)  # colorize's own record (its inner run's content is the fill)
    else:
        image = _stylize(session, key, job, work, checkpoint_every, should_stop, [recorder, *sinks])
        provenance = recorder.provenance
    text = trace.read_text() if trace.exists() else ""
    result = JobResult(
        key=key, image=image, provenance=None if provenance is None else json.loads(provenance),
        losses=recorder.losses, trace=text, seconds=time.perf_counter() - started,
        resumed_at_step=recorder.resumed_at_step, worker=f"{socket.gethostname()}:{os.getpid()}",
    )  # fmt: skip
    checkpoint.unlink(missing_ok=True)
    trace.unlink(missing_ok=True)
    return result


def _stylize(session: Session, key: str, job: JobSpec, work: Path, checkpoint_every: int,
             should_stop: Callable[[], bool] | None, sinks: list[Sink]) -> Image.Image:  # fmt: skip
    """A style transfer with its checkpoint in ``work``: continued from it when one is there and readable."""
    checkpoint, trace = checkpoint_path(work, key), trace_path(work, key)
    state = None
    if checkpoint.exists():
        try:
            state = load_checkpoint(checkpoint)
        except CheckpointError as error:
            log.warning(f"{error}; job {key} starts afresh")
            checkpoint.replace(checkpoint.with_suffix(".unusable"))
    if state is None:
        trace.unlink(missing_ok=True)
        config = job.config.replace(checkpoint=str(checkpoint), checkpoint_every=checkpoint_every)
        return session.run(job.content, job.styles, config, should_stop=should_stop, sinks=sinks)
    options = dict(state.config)
    content, styles = options.pop("content"), options.pop("styles")
    revision, tile_plan = options.pop("revision"), options.pop("tile_plan", None)
    options.update(checkpoint=str(checkpoint), checkpoint_every=checkpoint_every)
    return session.run(
        content, styles, RunConfig.from_dict(options), revision=revision, tile_plan=tile_plan,
        resume_from=state, should_stop=should_stop, sinks=sinks,
    )  # fmt: skip
