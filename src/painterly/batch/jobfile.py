"""Job files: one job per line, as JSON, for lists a grid cannot describe.

Each line is an object: ``content`` (a path), ``styles`` (a path or a list of paths), an optional ``label``
(``{"name": "text"}`` for the contact sheet) and any :class:`~painterly.config.RunConfig` fields, checked exactly as
the command line checks them::

    {"content": "photos/a.jpg", "styles": ["wave.jpg", "starry.jpg"], "style_blend": [0.7, 0.3], "size": 384}

A line with ``"kind": "colorize"`` colours a sketch (:func:`painterly.colorize`): ``content`` is the line drawing,
and colorize's own settings (``fill``, ``saturation``, ``min_lightness``, ``line_opacity``, ``line_width``,
``despeckle``) join the RunConfig fields; where the command line leaves a field at stylize's default, colorize's
default stands (200 iterations, style weight 10)::

    {"kind": "colorize", "content": "sketches/cat.png", "styles": "wave.jpg", "fill": "blur", "size": 384}

A line without ``kind`` is a style transfer.  Relative paths are relative to the job file's folder, so a folder of
inputs and its job file move together.  Blank lines and lines starting with ``#`` are skipped.  Every error names
the file and line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from painterly.batch.grid import JobKind, JobSpec, job_kind
from painterly.config import RunConfig
from painterly.errors import OptionError, PainterlyError
from painterly.sketch.colorize import COLORIZE_DEFAULTS, COLORIZE_OPTIONS

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
    kind = job_kind(row.pop("kind", "stylize"))
    own = {o.name: row.pop(o.name) for o in COLORIZE_OPTIONS if o.name in row} if kind == "colorize" else {}
    config = RunConfig.from_dict({**_defaults(base, kind), **row})
    content_path, style_paths = _absolute(folder, content), tuple(_absolute(folder, s) for s in styles)
    shown = {"content": Path(content_path).stem, "style": "+".join(Path(s).stem for s in style_paths)}
    labels = {**shown, **{str(k): str(v) for k, v in label.items()}}
    return JobSpec(content_path, style_paths, config, labels, kind=kind, options=own)


def _defaults(base: RunConfig | None, kind: JobKind) -> dict[str, Any]:
    """The settings a line leaves out: the command line's, with colorize's own defaults for a sketch's colouring
    where the command line kept stylize's (``painterly batch`` offers stylize's defaults, not colorize's)."""
    defaults = {} if base is None else base.to_dict()
    if kind == "colorize":
        stylize_defaults = RunConfig()
        for name, value in COLORIZE_DEFAULTS.items():
            if base is None or getattr(base, name) == getattr(stylize_defaults, name):
                defaults[name] = value
    return defaults


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
