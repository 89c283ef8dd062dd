"""Job keys: what makes two jobs the same job, so a re-run recognises its finished work.

A key is the sha256 of a canonical JSON document holding:

- the sha256 of every input file's bytes (content, styles, masks, an init image), not their paths: a renamed or
  moved folder keeps its keys, a re-saved photo gets a new one;
- the canonical settings: every RunConfig field with its default filled in (a job that spells out a default is the
  job that leaves it out), less the fields that say where to write and how to report (:data:`NOT_IN_KEY`);
- the row of the recipe table the run computes with (:data:`painterly.plan.stages.RECIPES`), so a new revision of
  the arithmetic does not reuse old pictures (its flags and numbers; not its prose, ``what_changed``);
- the sha256 of the network's weights;
- for a sketch's colouring (``kind="colorize"``), the kind and colorize's own settings; a style transfer's document
  has neither, so its key is the one it had before jobs had kinds.

The package version is not in the key on purpose: a release that does not change the arithmetic (the recipe row)
keeps a batch's finished work.  Each result's settings record the version that made it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import MutableMapping
from typing import Any

from painterly.batch.grid import JobSpec
from painterly.io.checkpoint import file_sha256
from painterly.plan.stages import CURRENT_REVISION, RECIPES
from painterly.provenance import default_weights_sha256

__all__ = ["KEY_LENGTH", "NOT_IN_KEY", "DigestCache", "canonical_job", "job_key"]

#: Settings that do not change the picture: where a checkpoint goes and how often.  (The batch sets them itself.)
NOT_IN_KEY = frozenset({"checkpoint", "checkpoint_every"})
#: Hex digits of the key used as a job's name (folder, store row): 64 bits, no collision in any real batch.
KEY_LENGTH = 16

DigestCache = MutableMapping[str, str]


def _digest(path: str, cache: DigestCache) -> str:
    """A file's sha256, read once per batch (styles are shared by many jobs, weights are 80 MB)."""
    real = os.path.realpath(path)
    if real not in cache:
        cache[real] = file_sha256(real)
    return cache[real]


def canonical_job(job: JobSpec, cache: DigestCache | None = None) -> dict[str, Any]:
    """The document a key hashes (see the module); reading an input that is missing raises ``OSError``."""
    cache = {} if cache is None else cache
    settings = {name: value for name, value in job.config.to_dict().items() if name not in NOT_IN_KEY}
    if settings.get("init") not in ("content", "noise"):
        settings["init"] = {"sha256": _digest(settings["init"], cache)}
    if settings.get("style_masks") is not None:
        settings["style_masks"] = [{"sha256": _digest(mask, cache)} for mask in settings["style_masks"]]
    weights = settings.pop("weights")
    weights_sha256 = _digest(weights, cache) if weights is not None else default_weights_sha256(job.config.network)
    document = {
        "content": _digest(job.content, cache),
        "styles": [_digest(style, cache) for style in job.styles],
        "settings": settings,
        "recipe": {k: v for k, v in dataclasses.asdict(RECIPES[CURRENT_REVISION]).items() if k != "what_changed"},
        "weights_sha256": weights_sha256,
    }
    if job.kind != "stylize":
        document.update(kind=job.kind, options=dict(job.options))
    return document


def job_key(job: JobSpec, cache: DigestCache | None = None) -> str:
    """The job's key: :data:`KEY_LENGTH` hex digits of the sha256 of :func:`canonical_job`."""
    text = json.dumps(canonical_job(job, cache), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]
