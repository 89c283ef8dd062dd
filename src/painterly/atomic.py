"""Write files so they appear whole or not at all.

A crash or Ctrl-C in the middle of a write must never leave a truncated file, nor
destroy the file that was there before: data goes to a temporary file in the same
directory (same filesystem), is flushed to disk, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_open(path: Path | str) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_open(path) as handle:
        handle.write(data)


def atomic_write_with(path: Path | str, writer: Callable[[BinaryIO], None]) -> None:
    """Let ``writer`` fill the file (e.g. ``PIL.Image.save``) and publish it atomically."""
    with atomic_open(path) as handle:
        writer(handle)
