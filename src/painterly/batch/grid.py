"""The grid: contents × styles × sweep combinations, each one :class:`JobSpec`.

Contents and styles are given as files, folders (their images, sorted by name, not recursing) or glob patterns, so
``painterly batch shoot/ -s styles/*.jpg`` means every photo of the shoot in every style.  A job has one style
image; blends of several styles are a job file's business (:mod:`painterly.batch.jobfile`).

A job is a style transfer (``kind="stylize"``, the default: :func:`painterly.stylize`) or the colouring of a sketch
(``kind="colorize"``: :func:`painterly.colorize`, its content the line drawing and ``options`` colorize's own
settings).  A job stored before kinds existed has none and is a style transfer.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from painterly.batch.sweep import Sweep, combinations, value_text
from painterly.config import RunConfig
from painterly.errors import ImageError, OptionError, PainterlyError
from painterly.sketch.colorize import check_colorize_options, colorize_keywords

__all__ = [
    "AFTER_A_STOP",
    "INPUT_SUFFIXES",
    "JOB_KINDS",
    "JobKind",
    "JobSpec",
    "expand_inputs",
    "job_kind",
    "make_grid",
]

#: What a job does: a style transfer of a photo, or the colouring of a line drawing (:func:`painterly.colorize`).
JobKind = Literal["stylize", "colorize"]
JOB_KINDS: tuple[str, ...] = get_args(JobKind)
#: What a job of each kind does when it is run again after a stop (its state's reason says it).
AFTER_A_STOP: dict[str, str] = {
    "stylize": "it continues from its checkpoint",
    "colorize": "a sketch's colouring keeps no checkpoint, so it starts again from the beginning",
}

#: What a folder's images are, by suffix (what painterly reads; other files in the folder are passed over).
INPUT_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})


def job_kind(value: object) -> JobKind:
    """``value`` (a job file's, a form's or a stored spec's ``kind``) as a job's kind, or a one-sentence refusal."""
    if value not in JOB_KINDS:
        raise OptionError(f"a job's kind is one of {', '.join(JOB_KINDS)}, not {value!r}")
    return cast(JobKind, value)


@dataclass(frozen=True)
class JobSpec:
    """One job as data: the content file, the style files, the settings, and its place in the grid.

    ``label`` says where the job sits for people: ``{"content": "tubingen", "style": "starry_night",
    "style_weight": "50"}``; the contact sheet lays the grid out by it.  It is plain JSON, so the job store keeps
    it and a Ray actor receives it.

    ``kind`` says what the job runs (see the module).  A ``colorize`` job's ``content`` is the sketch, its
    ``options`` colorize's own settings (checked and completed with their defaults when the spec is made, so two
    specs of the same job are equal), and its ``config`` must leave the fields colorize sets itself (``init``,
    ``style_masks``, the checkpoint) at their defaults; a ``stylize`` job has no ``options``.
    """

    content: str
    styles: tuple[str, ...]
    config: RunConfig
    label: Mapping[str, str] = field(default_factory=dict)
    kind: JobKind = "stylize"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        job_kind(self.kind)
        if self.kind == "stylize" and self.options:
            raise OptionError(f"{', '.join(sorted(self.options))}: only a colorize job takes colorize's options")
        if self.kind == "colorize":
            colorize_keywords(self.config)  # refuses what colorize sets itself
            object.__setattr__(self, "options", check_colorize_options(self.options))

    @property
    def resumable(self) -> bool:
        """Whether a stopped run continues where it stopped: a style transfer from its checkpoint; a sketch's
        colouring has none (its content is the computed fill, not a file), so it starts again from scratch."""
        return self.kind == "stylize"

    @property
    def after_a_stop(self) -> str:
        """What happens to the job when it is run again after a stop, as its state's reason says it."""
        return AFTER_A_STOP[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {"content": self.content, "styles": list(self.styles), "config": self.config.to_dict(),
                "label": dict(self.label), "kind": self.kind, "options": dict(self.options)}  # fmt: skip

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> JobSpec:
        """The inverse of :meth:`to_dict`; a spec stored before kinds existed (no ``kind``) is a style transfer."""
        return cls(content=values["content"], styles=tuple(values["styles"]),
                   config=RunConfig.from_dict(values["config"]), label=dict(values.get("label", {})),
                   kind=job_kind(values.get("kind", "stylize")), options=dict(values.get("options") or {}))  # fmt: skip


def expand_inputs(sources: Sequence[str | os.PathLike[str]], role: str) -> list[Path]:
    """Files, folders and glob patterns -> the image files they name, absolute, in the order given (a folder's and
    a pattern's sorted by name), each once; refuses in one sentence when one names nothing."""
    found: list[Path] = []
    for source in sources:
        text = os.fspath(source)
        path = Path(text).expanduser()
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES)
            if not matches:
                raise ImageError(f"{role} folder {path} holds no images ({', '.join(sorted(INPUT_SUFFIXES))})")
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(text)) if Path(p).is_file())
            if not matches:
                raise ImageError(f"{role} pattern {text!r} matches no file")
        else:
            raise ImageError(f"{role} {path}: file not found")
        found.extend(p.resolve() for p in matches)
    return list(dict.fromkeys(found))


def make_grid(
    contents: Sequence[str | os.PathLike[str]],
    styles: Sequence[str | os.PathLike[str]],
    base: RunConfig,
    sweeps: Sequence[Sweep] = (),
) -> list[JobSpec]:
    """Every content × every style × every combination of the sweeps, in that order (content slowest)."""
    content_files, style_files = expand_inputs(contents, "content"), expand_inputs(styles, "style")
    settings: list[tuple[RunConfig, dict[str, str]]] = []
    for combination in combinations(sweeps):
        try:
            config = base.replace(**combination)
        except PainterlyError as error:  # each value passed alone; a combination can still clash
            shown = " ".join(f"{name}={value_text(value)}" for name, value in combination.items())
            raise OptionError(f"--sweep {shown}: {error}") from None
        settings.append((config, {name: value_text(value) for name, value in combination.items()}))
    return [
        JobSpec(str(content), (str(style),), config, {"content": content.stem, "style": style.stem, **label})
        for content in content_files
        for style in style_files
        for config, label in settings
    ]
