"""Provenance: what made a picture, carried in the picture's own file so it can be made again.

A finished run's picture carries, as JSON under the key ``painterly``: the package version, the job (the
content and style files with their sha256, the :class:`~painterly.config.RunConfig` with the run's automatic
choices made, the run revision and tiling plan, as a checkpoint keeps them) and the sha256 of the weights.
:func:`painterly.io.images.save_image` writes it into the file where the format has room for text: a PNG text
chunk, or the EXIF ImageDescription of a JPEG, WebP or TIFF.  :func:`read_provenance` reads it back, and
:func:`job_of` turns it into a :class:`Job`, which :func:`painterly.reproduce` runs again: on the same CPU and
torch the picture comes out the same, pixel for pixel.

A run whose inputs are in-memory objects (a PIL image, loaded weights) has no file to point at: its picture
carries no provenance.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from painterly._version import __version__
from painterly.config import RunConfig
from painterly.errors import OptionError
from painterly.io.checkpoint import file_sha256, first_changed_input
from painterly.io.images import EXIF_IMAGE_DESCRIPTION, PROVENANCE_KEY
from painterly.nets.registry import network as network_named

__all__ = [
    "PROVENANCE_KEY",
    "Job",
    "default_weights_sha256",
    "input_hashes_of",
    "job_of",
    "make_provenance",
    "read_provenance",
    "weights_sha256",
]


def make_provenance(
    job: Mapping[str, Any], input_hashes: Mapping[str, str], weights_sha256: str, *, kind: str = "stylize"
) -> str:
    """The provenance JSON of a run: ``job`` as a checkpoint's config holds it (settings, inputs, revision,
    tiling plan) or, for ``kind="colorize"``, colorize's keywords; the sha256 of each input file and of the
    weights."""
    return json.dumps(
        {"painterly": __version__, "kind": kind, "job": dict(job), "inputs": dict(input_hashes),
         "weights_sha256": weights_sha256},
        sort_keys=True,
    )  # fmt: skip


def weights_sha256(weights: object, input_hashes: Mapping[str, str], network: str = "vgg19") -> str:
    """The digest of the weights a run used: its weights file's (among the input hashes) or ``network``'s own."""
    if isinstance(weights, (str, os.PathLike)):
        return input_hashes.get(os.fspath(weights)) or file_sha256(weights)
    return default_weights_sha256(network) or "unknown"


def input_hashes_of(paths: Sequence[str | os.PathLike[str]]) -> dict[str, str]:
    """``{absolute path: sha256}`` of input files."""
    return {str(Path(p).resolve()): file_sha256(p) for p in paths}


def default_weights_sha256(network: str = "vgg19") -> str | None:
    """The sha256 of ``network``'s own weights: for VGG-19, of the cached file as recorded when it was converted
    (no need to hash 80 MB); for random weights, of the generated tensors."""
    digest = network_named(network).weights.sha256
    return None if digest is None else digest()


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The provenance a picture file carries, or None if it has none."""
    with Image.open(path) as image:
        text = image.info.get(PROVENANCE_KEY)
        if text is None:
            text = image.getexif().get(EXIF_IMAGE_DESCRIPTION)
    if not isinstance(text, (str, bytes)):
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None  # an ImageDescription some other program wrote
    return found if isinstance(found, dict) and PROVENANCE_KEY in found else None


@dataclass(frozen=True)
class Job:
    """A run described as data: the input files with their sha256, the settings, and the revision and tiling plan
    the run computed with (None: today's, decided afresh)."""

    content: str
    styles: tuple[str, ...]
    config: RunConfig
    input_hashes: Mapping[str, str]
    revision: int | None = None
    tile_plan: tuple[int | None, ...] | None = None

    def verify(self) -> None:
        """Refuse, in one sentence, if an input file is missing or has changed since the job was described."""
        changed = first_changed_input(self.input_hashes)
        if changed is not None and changed[1] == "missing":
            raise OptionError(f"input {changed[0]} is missing; the picture can only be made again from its files")
        if changed is not None:
            raise OptionError(f"input {changed[0]} has changed since the picture was made (its sha256 differs)")


def job_of(provenance: Mapping[str, Any]) -> Job:
    """The job a picture's provenance describes."""
    settings = dict(provenance["job"])
    content, styles = settings.pop("content"), settings.pop("styles")
    revision, tile_plan = settings.pop("revision", None), settings.pop("tile_plan", None)
    return Job(
        content=content, styles=tuple(styles), config=RunConfig.from_dict(settings),
        input_hashes=dict(provenance.get("inputs", {})), revision=revision,
        tile_plan=None if tile_plan is None else tuple(tile_plan),
    )  # fmt: skip
