"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the full configuration (every ``stylize`` keyword), the
sha256 of each input file, the stage and step reached, and the optimiser's
state (the current image, the learning rate, L-BFGS's curvature history, Adam's
moments, the running average), so that on the CPU an
interrupted-and-resumed run ends with the same pixels as an uninterrupted one.
It is written atomically, like every file painterly writes.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from painterly.errors import PainterlyError
from painterly.io.atomic import atomic_write_bytes

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "file_sha256",
    "first_changed_input",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT_VERSION = 2


class CheckpointError(PainterlyError):
    """A checkpoint is unreadable, from another version, or its inputs have changed."""


@dataclass
class Checkpoint:
    config: dict[str, Any]  #: stylize keywords plus "content" and "styles" as path strings
    input_hashes: dict[str, str]  #: path -> sha256 of the file's bytes when the run started
    stage: int  #: 0-based index of the stage in progress
    stage_steps_done: int
    step: int  #: global steps done
    optimizer_state: dict[str, Any] = field(repr=False)  #: engine state: "current" image, "rate", "optimizer", ...
    elapsed: float
    extra: dict[str, Any] = field(default_factory=dict)  #: caller data, e.g. the CLI's output path


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """Paths to strings, tuples to lists: only types ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def save_checkpoint(path: Path | str, checkpoint: Checkpoint) -> Path:
    payload = {
        "format": FORMAT_VERSION,
        **checkpoint.__dict__,
        "config": _plain(checkpoint.config),
        "extra": _plain(checkpoint.extra),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], *, verify_inputs: bool = True) -> Checkpoint:
    """Read a checkpoint; with ``verify_inputs``, refuse if an input file is missing or changed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(f"checkpoint {path}: unreadable ({exc.__class__.__name__}); it may be damaged") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path}: not a painterly checkpoint of format {FORMAT_VERSION}")
    payload.pop("format")
    checkpoint = Checkpoint(**payload)
    changed = first_changed_input(checkpoint.input_hashes) if verify_inputs else None
    if changed is not None:
        name, how = changed
        if how == "missing":
            raise CheckpointError(f"checkpoint {path}: input {name} is missing; restore it to resume")
        raise CheckpointError(f"checkpoint {path}: input {name} has changed since the run started")
    return checkpoint


def first_changed_input(input_hashes: Mapping[str, str]) -> tuple[str, str] | None:
    """The first input file that is gone or whose bytes changed, as ``(path, "missing" | "changed")``; None if all
    are as hashed (a checkpoint resumes, a picture is made again, only from the files it was made from)."""
    for name, expected in input_hashes.items():
        if not Path(name).is_file():
            return name, "missing"
        if file_sha256(name) != expected:
            return name, "changed"
    return None
