"""Files: images in and out with their colour handling (images), writes that land whole or not at all (atomic),
and checkpoints (checkpoint).

Its modules' public names are re-exported here for users; the modules themselves import each other by
module (``painterly.io.<module>``), never this file, so the re-exports make no import loop.
"""

from __future__ import annotations

from painterly.io.atomic import atomic_open, atomic_write_bytes, atomic_write_with, check_writable
from painterly.io.checkpoint import (
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    file_sha256,
    first_changed_input,
    load_checkpoint,
    save_checkpoint,
)
from painterly.io.images import (
    DEFAULT_MAX_PIXELS,
    OUTPUT_FORMATS,
    LoadedImage,
    check_output_path,
    load_image,
    normalize_image,
    pil_to_tensor,
    resize_long_side,
    save_image,
    tensor_to_pil,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FORMAT_VERSION",
    "OUTPUT_FORMATS",
    "Checkpoint",
    "CheckpointError",
    "LoadedImage",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_with",
    "check_output_path",
    "check_writable",
    "file_sha256",
    "first_changed_input",
    "load_checkpoint",
    "load_image",
    "normalize_image",
    "pil_to_tensor",
    "resize_long_side",
    "save_checkpoint",
    "save_image",
    "tensor_to_pil",
]
