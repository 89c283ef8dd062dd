"""The sweep grammar: ``--sweep style_weight=10,50,200 --sweep size=384,512``.

A sweep names one :class:`~painterly.config.RunConfig` field and the values it takes; several sweeps multiply
(every combination is a job).  The grammar is ``FIELD=VALUE,VALUE,...``:

- ``FIELD`` is a RunConfig field, written with underscores or dashes (``style-weight`` is ``style_weight``);
- each ``VALUE`` is parsed by the field's own type (int, float, bool, a choice), ``none`` is None where the field
  allows it, and a field that takes a list (``style_layers``) takes each list as items joined by ``+``
  (``style_layers=relu1_1+relu2_1,relu3_1+relu4_1`` is two values).

Each value is checked by RunConfig itself (a config with it is made), so a sweep refuses exactly what the command
line would, in the same one sentence, before any job runs.  The grammar lives here, not in the CLI, because a job
file, the web page's queue and the Python API describe grids with it too.
"""

from __future__ import annotations

import itertools
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from painterly.config import CONFIG_FIELDS, RunConfig, field_types, number_or_words
from painterly.errors import OptionError, PainterlyError

__all__ = ["SWEEP_EXCLUDED", "Sweep", "combinations", "parse_sweep", "parse_sweeps", "parse_value", "value_text"]

#: Fields a sweep may not vary: where the batch itself decides (the checkpoint of each job), or objects and files
#: that are inputs rather than settings (masks and weights belong in a job file, one per line).
SWEEP_EXCLUDED = frozenset({"checkpoint", "checkpoint_every", "style_masks", "weights"})


@dataclass(frozen=True)
class Sweep:
    """One field and the values it takes, in the order given (each already checked by RunConfig)."""

    field: str
    values: tuple[Any, ...]


def _value_kind(annotation: Any) -> tuple[Any, bool, bool]:
    """``(scalar type, optional, is a list)`` of a RunConfig field's annotation."""
    optional, is_list = False, False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0] if len(args) == 1 else str  # str | PathLike | object -> a path written as text
    if typing.get_origin(annotation) in (Sequence, list, tuple, typing.get_origin(Sequence[int])):
        is_list, annotation = True, typing.get_args(annotation)[0]
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            annotation = str  # a sequence of images or paths: written as paths
    return annotation, optional, is_list


def _scalar(name: str, kind: Any, text: str) -> Any:
    if typing.get_origin(kind) is Literal or kind is str:
        return text
    if kind is bool:
        lowered = text.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise OptionError(f"--sweep {name}: {text!r} is not true or false")
    try:
        return kind(text)
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number" if kind is float else kind.__name__
        raise OptionError(f"--sweep {name}: {text!r} is not {what}") from None


def parse_value(name: str, text: str) -> Any:
    """One value of field ``name`` from its text (see the module's grammar)."""
    takes = number_or_words(field_types()[name])  # a number or a word (style_weight: a number or auto)
    if takes is not None:
        return text.strip() if text.strip() in takes[1] else _scalar(name, takes[0], text.strip())
    kind, optional, is_list = _value_kind(field_types()[name])
    if text.strip().lower() == "none":
        if not optional:
            raise OptionError(f"--sweep {name}: none is not a value this option takes")
        return None
    if is_list:
        return tuple(_scalar(name, kind, item.strip()) for item in text.split("+"))
    return _scalar(name, kind, text.strip())


def parse_sweep(text: str, base: RunConfig | None = None) -> Sweep:
    """``"style_weight=10,50,200"`` -> ``Sweep("style_weight", (10.0, 50.0, 200.0))``, each value checked by
    making ``base`` (default settings when None) with it; refuses in one sentence."""
    name, equals, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not equals or not name or not values.strip():
        raise OptionError(f"--sweep {text!r}: write FIELD=VALUE,VALUE,... (e.g. --sweep style_weight=10,50,200)")
    if name not in CONFIG_FIELDS:
        raise OptionError(f"--sweep {text!r}: unknown option {name}; the options are the fields of RunConfig "
                          "(`painterly --help` lists them)")  # fmt: skip
    if name in SWEEP_EXCLUDED:
        raise OptionError(f"--sweep {name}: this option cannot be swept; give it in a job file, one job per line")
    parsed = tuple(parse_value(name, item) for item in values.split(","))
    if len(set(map(repr, parsed))) != len(parsed):
        raise OptionError(f"--sweep {text!r}: a value is given twice")
    base = base if base is not None else RunConfig()
    for value in parsed:
        try:
            base.replace(**{name: value})
        except PainterlyError as error:
            raise OptionError(f"--sweep {name}={_text(value)}: {error}") from None
    return Sweep(name, parsed)


def parse_sweeps(texts: Sequence[str], base: RunConfig | None = None) -> list[Sweep]:
    """Every ``--sweep``; a field swept twice is refused (its values would multiply with themselves)."""
    sweeps = [parse_sweep(text, base) for text in texts]
    names = [sweep.field for sweep in sweeps]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise OptionError(f"--sweep {twice[0]} is given twice; list all its values in one --sweep")
    return sweeps


def combinations(sweeps: Sequence[Sweep]) -> Iterator[Mapping[str, Any]]:
    """Every combination of the sweeps' values as ``{field: value}``, the last sweep varying fastest (one empty
    combination when there is no sweep)."""
    for values in itertools.product(*(sweep.values for sweep in sweeps)):
        yield {sweep.field: value for sweep, value in zip(sweeps, values, strict=True)}


def _text(value: Any) -> str:
    """A value as the grammar writes it (for labels and errors)."""
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "+".join(_text(item) for item in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def value_text(value: Any) -> str:
    """A swept value as the grammar writes it, for labels."""
    return _text(value)
