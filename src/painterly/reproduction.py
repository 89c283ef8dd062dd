"""Make a picture again from the provenance its file carries (:mod:`painterly.provenance`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from painterly._version import __version__
from painterly.config import RunConfig
from painterly.errors import OptionError
from painterly.events import Sink
from painterly.provenance import Job, job_of, read_provenance
from painterly.records import StepRecord
from painterly.session import default_session
from painterly.sketch.colorize import colorize

__all__ = ["reproduce"]

log = logging.getLogger("painterly")


def reproduce(
    picture: str | os.PathLike[str],
    *,
    progress: bool = False,
    on_step: Callable[[StepRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    sinks: Sequence[Sink] = (),
) -> Image.Image:
    """Make a picture again from the provenance its file carries (painterly.provenance).

    The input files must be where they were and unchanged (their sha256 is checked); the run uses the revision
    and tiling plan the picture was made with.  On the same CPU and torch the result equals the picture (before
    the file's own rounding: a JPEG's compression, for one).
    """
    found = read_provenance(picture)
    if found is None:
        raise OptionError(f"{picture} carries no painterly provenance (only pictures painterly wrote from files do)")
    if found["painterly"] != __version__:
        log.warning(f"{picture} was made by painterly {found['painterly']}, this is {__version__}: it may differ")
    runtime: dict[str, Any] = {"progress": progress, "on_step": on_step, "should_stop": should_stop, "sinks": sinks}
    if found.get("kind") == "colorize":
        Job(content="", styles=(), config=RunConfig(), input_hashes=found["inputs"]).verify()
        settings = dict(found["job"])
        return colorize(settings.pop("sketch"), settings.pop("styles"), **settings, **runtime)
    job = job_of(found)
    job.verify()
    state: dict[str, Any] = {"tile_plan": job.tile_plan}
    if job.revision is not None:
        state["revision"] = job.revision
    return default_session().run(job.content, list(job.styles), job.config, **state, **runtime)
