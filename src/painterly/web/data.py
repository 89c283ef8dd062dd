"""The server's data folder: where every file the web queue reads or writes lives, and the limits on it.

``<data>/jobs.sqlite`` is the job store (:mod:`painterly.batch.store`), ``uploads/`` the uploaded images (named by
their sha256, so the same picture uploaded twice is one file), ``work/`` the running jobs' checkpoints, traces and
previews, ``jobs/<key>/`` the finished results as a batch writes them (:mod:`painterly.batch.results`).  Every path
the server touches is made here from a job key or a digest that has been checked against a strict pattern, so no
request can name a file outside the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
from pathlib import Path

from painterly.batch.results import result_folder
from painterly.batch.runner import checkpoint_path, trace_path
from painterly.errors import ImageError, OutputError
from painterly.io.images import load_image

__all__ = [
    "EXAMPLES",
    "MAX_STYLES",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "DataFolder",
    "check_key",
]

#: Largest file accepted for one upload: 25 MiB (a 24-megapixel JPEG is about 10 MB).
MAX_UPLOAD_BYTES = 25 * 2**20
#: Most pixels an uploaded image may have: 50 million (8660 × 5773), half the CLI's default guard.
MAX_UPLOAD_PIXELS = 50_000_000
#: Most style images one job may upload.
MAX_STYLES = 8
#: The bundled pictures (shipped in the wheel): name -> role.  Photos and artworks are the calibration pictures
#: (painterly/data/calibration/NAME.jpg), line drawings for sketch colouring are painterly/data/sketch/NAME.png.
EXAMPLES: dict[str, str] = {
    "astronaut": "content", "chelsea_cat": "content", "coffee": "content",
    "starry_night": "style", "great_wave": "style", "kandinsky": "style", "scream": "style", "turner": "style",
    "bald_eagle": "sketch", "desert_tortoise": "sketch", "gecko": "sketch", "old_soviet_car": "sketch",
}  # fmt: skip
_DATA = Path(__file__).resolve().parents[1] / "data"
_KEY = re.compile(r"[0-9a-f]{16}")
_UPLOAD = re.compile(r"[0-9a-f]{64}\.(png|jpg|jpeg|webp|tif|tiff|bmp|gif)")


def check_key(key: str) -> str:
    """A job key as the server makes them (16 hex digits), else a one-sentence error (no path is built from it)."""
    if not _KEY.fullmatch(key):
        raise OutputError(f"no job {key!r}")
    return key


class DataFolder:
    """The paths of one server's data folder, and what is written into it (see the module)."""

    def __init__(self, root: str | os.PathLike[str], *, quota_bytes: int) -> None:
        self.root = Path(root).resolve()
        self.quota_bytes = quota_bytes
        for name in ("uploads", "work", "jobs"):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    @property
    def store_path(self) -> Path:
        return self.root / "jobs.sqlite"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def result(self, key: str) -> Path:
        return result_folder(self.root, check_key(key))

    def preview(self, key: str) -> Path:
        """The running job's current picture (JPEG, rewritten a few times a second)."""
        return self.work / f"{check_key(key)}.preview.jpg"

    def last_image(self, key: str) -> Path:
        """A cancelled or failed job's last picture (PNG, full size)."""
        return self.work / f"{check_key(key)}.last.png"

    def example(self, name: str) -> Path:
        if name not in EXAMPLES:
            raise ImageError(f"no bundled example called {name!r}")
        if EXAMPLES[name] == "sketch":
            return _DATA / "sketch" / f"{name}.png"
        return _DATA / "calibration" / f"{name}.jpg"

    def upload(self, name: str) -> Path:
        if not _UPLOAD.fullmatch(name):
            raise ImageError(f"there is no upload called {name!r}")
        return self.root / "uploads" / name

    def used_bytes(self) -> int:
        """What the folder holds now (the quota counts uploads, results and work files alike)."""
        total = 0
        for folder, _, files in os.walk(self.root):
            for name in files:
                with contextlib.suppress(OSError):  # removed while we counted
                    total += os.lstat(os.path.join(folder, name)).st_size
        return total

    def check_quota(self, adding: int = 0) -> None:
        used = self.used_bytes()
        if used + adding > self.quota_bytes or used >= self.quota_bytes:  # a full folder has no room for a result
            raise OutputError(
                f"the server's data folder holds {used / 2**20:.0f} MiB of its {self.quota_bytes / 2**20:.0f} MiB "
                "quota; delete some jobs first"
            )

    def save_upload(self, data: bytes, filename: str, role: str) -> Path:
        """Keep an uploaded image if the CLI's image loader reads it (within :data:`MAX_UPLOAD_PIXELS`); refuse it
        in the loader's own sentence, with the user's file name in place of the server's path."""
        if len(data) > MAX_UPLOAD_BYTES:
            raise ImageError(f"{role} {filename}: file is larger than the {MAX_UPLOAD_BYTES // 2**20} MiB upload limit")
        suffix = Path(filename).suffix.lower()
        suffix = suffix if _UPLOAD.fullmatch("0" * 64 + suffix) else ".png"
        self.check_quota(len(data))
        path = self.root / "uploads" / (hashlib.sha256(data).hexdigest() + suffix)
        if not path.exists():
            # one part file per request thread: two requests uploading the same picture at once (a shared style)
            # must not write, read and rename one file together
            part = path.with_name(f".{path.name}.part-{os.getpid()}-{threading.get_ident()}")
            part.write_bytes(data)
            try:
                load_image(part, max_pixels=MAX_UPLOAD_PIXELS, role=role)
            except ImageError as error:
                part.unlink(missing_ok=True)
                raise ImageError(str(error).replace(str(part), filename or "upload")) from None
            os.replace(part, path)
        return path

    def remove_job_files(self, key: str) -> None:
        """A job's result folder and work files (its uploads stay: other jobs may share them)."""
        shutil.rmtree(self.result(key), ignore_errors=True)
        for path in (checkpoint_path(self.work, key), trace_path(self.work, key), self.preview(key),
                     self.last_image(key)):  # fmt: skip
            path.unlink(missing_ok=True)
