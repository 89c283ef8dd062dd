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

from painterly.errors import OutputError

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_with", "check_writable"]


def _new_file_mode() -> int:
    """The mode an ordinary ``open(path, "w")`` would give a new file: 0o666 less the process's umask.

    mkstemp makes its file 0o600 (private to its owner, as a temporary file should be); renamed into place, that
    would make every picture, video and result readable by its owner alone, unlike any other file a user writes.
    The umask is read from /proc where Linux shows it: setting it to read it back (the portable way) would change
    it for a moment for every thread of the process (a web server's request threads write files too).
    """
    try:
        with open("/proc/self/status") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0)
        os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_open(path: Path | str) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode())
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


def check_writable(path: Path | str, what: str) -> Path:
    """Fail before any computation if a file could not be written at ``path`` (``what`` names it in the error).

    Output paths are checked when a run starts, not when it first writes: a run that could not save its
    checkpoint or trace would otherwise be found out only at Ctrl-C or after hours of work.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path}: is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{what} {path}: directory {parent} does not exist")
    try:  # a real file, not os.access: root passes every mode check, but not a read-only or virtual filesystem
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parent)
    except OSError as error:
        raise OutputError(f"{what} {path}: directory {parent} is not writable ({error.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return path
