"""A job's result folder, written whole or not at all, and never over an existing one.

``jobs/<key>/`` holds ``image.png`` (with its provenance, so ``painterly reproduce`` makes it again, a coloured sketch
too),
``settings.json`` (the inputs, every setting with the automatic ones resolved, the revision, the weights' digest,
the version, the time it took), ``trace.jsonl`` (one line per step) and ``losses.json`` (the last step's).  The
files are written into a hidden sibling folder first, then the folder is renamed into place: a reader (or the next
run) sees a complete result or none, and a result folder that exists is never replaced.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from painterly.batch.grid import JobSpec
from painterly.batch.runner import JobResult
from painterly.io.atomic import atomic_write_bytes
from painterly.io.images import PROVENANCE_KEY, save_image

__all__ = ["IMAGE_NAME", "result_folder", "settings_of", "write_result"]

IMAGE_NAME = "image.png"


def result_folder(out: Path, key: str) -> Path:
    return out / "jobs" / key


def _rename_paths(value: Any, paths: Mapping[str, str]) -> Any:
    """The worker's copies of the inputs (a Ray node's cache) named by the user's paths again."""
    if isinstance(value, str):
        return paths.get(value, value)
    if isinstance(value, list):
        return [_rename_paths(item, paths) for item in value]
    return value


def settings_of(job: JobSpec, result: JobResult, paths: Mapping[str, str]) -> dict[str, Any]:
    """settings.json's content: the provenance with the user's paths, the label and the run's figures.  A sketch's
    colouring's ``settings`` are colorize()'s keywords (its own options, the sketch, the RunConfig fields it takes)."""
    provenance = dict(result.provenance or {})
    settings = {name: _rename_paths(value, paths) for name, value in dict(provenance.get("job", {})).items()}
    if job.kind == "stylize":  # colorize takes no checkpoint settings (and refuses them when reproduced)
        settings.update(checkpoint=None, checkpoint_every=0)  # the batch's own checkpoint, gone once the job is done
    inputs = {paths.get(name, name): digest for name, digest in dict(provenance.get("inputs", {})).items()}
    return {
        "key": result.key, "kind": job.kind, "label": dict(job.label), "content": job.content,
        "styles": list(job.styles),
        "settings": settings, "inputs": inputs, "weights_sha256": provenance.get("weights_sha256"),
        "painterly": provenance.get("painterly"), "seconds": round(result.seconds, 3),
        "resumed_at_step": result.resumed_at_step, "worker": result.worker,
    }  # fmt: skip


def write_result(out: Path, job: JobSpec, result: JobResult, paths: Mapping[str, str] | None = None) -> Path:
    """Write ``jobs/<key>/`` (see the module); ``paths`` maps a worker's copies of inputs to the user's paths.
    Returns the folder; an existing folder is left as it is."""
    folder = result_folder(out, result.key)
    if folder.exists():
        return folder
    paths = {} if paths is None else paths
    settings = settings_of(job, result, paths)
    part = folder.with_name(f".{result.key}.part-{os.getpid()}")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        image = result.image.copy()
        if result.provenance is not None:  # the picture's own record names the user's files too
            provenance = dict(result.provenance)
            provenance["job"], provenance["inputs"] = settings["settings"], settings["inputs"]
            image.info[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True)
        else:
            image.info.pop(PROVENANCE_KEY, None)
        save_image(image, part / IMAGE_NAME)
        atomic_write_bytes(part / "settings.json", (json.dumps(settings, indent=1) + "\n").encode())
        atomic_write_bytes(part / "trace.jsonl", result.trace.encode())
        atomic_write_bytes(part / "losses.json", (json.dumps(result.losses, indent=1) + "\n").encode())
        _fsync_folder(part)
        os.rename(part, folder)  # atomic; fails if another writer got there first (then theirs stands)
        _fsync_folder(folder.parent)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        if folder.exists():
            return folder
        raise
    return folder


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
