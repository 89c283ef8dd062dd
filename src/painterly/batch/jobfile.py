"""Job files: one job per line, as JSON, for lists a grid cannot describe.

Each line is an object: ``content`` (a path), ``styles`` (a path or a list of paths), an optional ``label``
(``{"name": "text"}`` for the contact sheet) and any :class:`~painterly.config.RunConfig` fields, checked exactly as
the command line checks them::

    {"content": "photos/a.jpg", "styles": ["wave.jpg", "starry.jpg"], "style_blend": [0.7, 0.3], "size": 384}

Relative paths are relative to the job file's folder, so a folder of inputs and its job file move together.  Blank
lines and lines starting with ``#`` are skipped.  Every error names the file and line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from painterly.batch.grid import JobSpec
from painterly.config import RunConfig
from painterly.errors import OptionError, PainterlyError

__all__ = ["read_job_file"]

#: RunConfig fields that hold a path (made relative to the job file's folder when they are relative).
PATH_FIELDS = ("weights", "init")


def _absolute(folder: Path, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (folder / path).resolve())


def _job(folder: Path, row: dict[str, Any], base: RunConfig | None) -> JobSpec:
    row = dict(row)
    if "content" not in row or "styles" not in row:
        raise OptionError("a job needs a content and styles")
    content = row.pop("content")
    styles = row.pop("styles")
    styles = [styles] if isinstance(styles, str) else styles
    if not isinstance(content, str) or not isinstance(styles, list) or not all(isinstance(s, str) for s in styles):
        raise OptionError("content must be a path and styles a path or a list of paths")
    label = row.pop("label", {})
    if not isinstance(label, dict):
        raise OptionError('label must be an object such as {"series": "A"}')
    for name in PATH_FIELDS:
        if isinstance(row.get(name), str) and not (name == "init" and row[name] in ("content", "noise")):
            row[name] = _absolute(folder, row[name])
    if isinstance(row.get("style_masks"), list):
        row["style_masks"] = [_absolute(folder, m) if isinstance(m, str) else m for m in row["style_masks"]]
    defaults = {} if base is None else base.to_dict()
    config = RunConfig.from_dict({**defaults, **row})
    content_path, style_paths = _absolute(folder, content), tuple(_absolute(folder, s) for s in styles)
    shown = {"content": Path(content_path).stem, "style": "+".join(Path(s).stem for s in style_paths)}
    return JobSpec(content_path, style_paths, config, {**shown, **{str(k): str(v) for k, v in label.items()}})


def read_job_file(path: str | os.PathLike[str], base: RunConfig | None = None) -> list[JobSpec]:
    """The jobs of a job file; ``base`` gives the settings a line leaves out (the command line's options)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise OptionError(f"job file {path}: {error.strerror or error}") from None
    jobs: list[JobSpec] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise OptionError("each line must be a JSON object")
            jobs.append(_job(path.parent.resolve(), row, base))
        except json.JSONDecodeError as error:
            raise OptionError(f"job file {path}, line {number}: not JSON ({error.msg})") from None
        except PainterlyError as error:
            raise OptionError(f"job file {path}, line {number}: {error}") from None
    if not jobs:
        raise OptionError(f"job file {path} holds no jobs")
    return jobs
