"""Channel means of a user's weights file, measured once and kept in the cache directory under the file's sha256.

The networks users bring files for balance their layers by each channel's mean magnitude on the calibration
pictures (:class:`painterly.nets.staged.StagedEncoder`, Gatys et al.'s rule; VGG-16 folds its means into its
weights).  Those means belong to the file, which painterly cannot know in advance, so they are measured when a file
is first read (one pass of the whole network over the eight small calibration pictures: about a second for
ResNet-50 on two CPU cores) and kept, keyed by the file's content, so later runs with the same file skip it.  An
unreadable or unwritable cache only costs the measurement again.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor

from painterly.io.atomic import atomic_write_bytes
from painterly.nets.weights import cache_dir

__all__ = ["kept_means", "kept_means_path"]

#: Raised when what is measured changes (the calibration pictures, the statistic), so old files are not reused.
_VERSION = 1


def kept_means_path(network: str, sha256: str) -> Path:
    """Where the means of ``network``'s weights file with content ``sha256`` are kept."""
    return cache_dir() / f"means-v{_VERSION}-{network}-{sha256}.pt"


def kept_means(
    network: str, sha256: str, layers: Iterable[str], measure: Callable[[], dict[str, Tensor]]
) -> dict[str, Tensor]:
    """The kept means of every one of ``layers``, or ``measure()``'s, then kept."""
    path, wanted = kept_means_path(network, sha256), set(layers)
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(stored, dict) and wanted <= set(stored):
            return {name: stored[name] for name in wanted}
    except Exception:  # missing, damaged or of another layout: measure again
        pass
    means = measure()
    buffer = io.BytesIO()
    torch.save(means, buffer)
    with contextlib.suppress(OSError):
        atomic_write_bytes(path, buffer.getvalue())
    return means
