"""The settings form, generated from :class:`painterly.RunConfig`'s field metadata, and its values read back.

The page draws its form from :func:`form_fields` (each field's kind, default, choices, help and group, the same
metadata the command line is generated from), so the page, the CLI and the API cannot drift apart.  What a form
sends back is text; :func:`config_from_form` turns it into a ``RunConfig``, whose own checks give the same
one-sentence errors the CLI gives.  Fields that name files on the server (weights, masks, an init image, the
checkpoint) are not offered: a request must never reach the file system outside the server's data folder.

A sketch's colouring (the page's second mode) adds colorize's own settings (:func:`colorize_fields`, from
:data:`painterly.sketch.colorize.COLORIZE_OPTIONS`: the same help and bounds as ``painterly colorize --help``),
starts from colorize's defaults and leaves out the fields colorize sets itself (:func:`colorize_from_form`).
:func:`cli_command` writes a job's settings as the ``painterly`` (or ``painterly colorize``) command that makes the
same picture.
"""

from __future__ import annotations

import shlex
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from painterly.config import CONFIG_FIELDS, RunConfig, field_types, number_or_words, option_choices, option_info
from painterly.errors import OptionError
from painterly.sketch.colorize import (
    COLORIZE_DEFAULTS,
    COLORIZE_OPTIONS,
    COLORIZE_SETS,
    check_colorize_options,
    colorize_config,
)

__all__ = [
    "NOT_IN_FORM",
    "cli_command",
    "colorize_fields",
    "colorize_form",
    "colorize_from_form",
    "config_from_form",
    "form_fields",
]

#: Fields the page does not offer: they name files on the server (or where checkpoints go, which the queue owns).
NOT_IN_FORM = frozenset({"weights", "style_masks", "checkpoint", "checkpoint_every", "device"})
#: ``init`` names a file too where it is not one of these; the form offers only these.
INIT_CHOICES = ("content", "noise")


def _kind(name: str) -> tuple[str, bool]:
    """(kind, optional): kind is ``int``, ``float``, ``bool``, ``choice``, ``ints``/``floats``/``texts`` (lists),
    ``int-or-word``/``float-or-word`` (a number or one of a few words, as ``style_weight``'s ``auto``) or ``text``;
    optional when None is a value (the form's empty field)."""
    hint = field_types()[name]
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        takes = number_or_words(hint)
        if takes is not None:
            return f"{takes[0].__name__}-or-word", optional
        hint = args[0] if len(args) == 1 else str
    if name == "init" or option_choices(name):
        return "choice", optional
    if hint is bool:
        return "bool", optional
    if hint in (int, float):
        return hint.__name__, optional
    if typing.get_origin(hint) in (Sequence, list, tuple):
        item = (typing.get_args(hint) or (str,))[0]
        return {int: "ints", float: "floats"}.get(item, "texts"), optional
    return "text", optional


def form_fields() -> list[dict[str, Any]]:
    """Every field the form offers, in RunConfig's order: name, kind, optional, default, choices, help, group, and
    the bounds of a number (min, max; None where there is none), which the page gives its inputs."""
    base = RunConfig()
    fields = []
    for name in CONFIG_FIELDS:
        if name in NOT_IN_FORM:
            continue
        kind, optional = _kind(name)
        info = option_info(name)
        default = getattr(base, name)
        fields.append({
            "name": name, "kind": kind, "optional": optional,
            "default": list(default) if isinstance(default, tuple) else default,
            "choices": list(INIT_CHOICES if name == "init" else option_choices(name)),
            "help": info.help, "group": info.group, "min": info.minimum, "max": info.maximum,
        })  # fmt: skip
    return fields


def colorize_fields() -> list[dict[str, Any]]:
    """colorize's own settings as form fields (:func:`form_fields`' keys, plus ``min`` and ``max``, the bounds
    colorize checks), from :data:`~painterly.sketch.colorize.COLORIZE_OPTIONS`, in colorize's order."""
    return [
        {"name": option.name, "kind": option.kind, "optional": False, "default": option.default,
         "choices": list(option.choices), "help": option.help, "group": "colorize", "min": option.low,
         "max": option.high}
        for option in COLORIZE_OPTIONS
    ]  # fmt: skip


def colorize_form() -> dict[str, Any]:
    """What the page's sketch mode changes: colorize's own fields, the defaults that differ from stylize's, and the
    form's fields colorize sets itself (hidden in that mode)."""
    offered = {field["name"] for field in form_fields()}
    return {"fields": colorize_fields(), "defaults": dict(COLORIZE_DEFAULTS),
            "hidden": sorted(COLORIZE_SETS & offered)}  # fmt: skip


def _parse_one(name: str, kind: str, text: str) -> Any:
    def number(item: str, parse: type) -> Any:
        try:
            return parse(item)
        except ValueError:
            whole = " whole" if parse is int else ""
            raise OptionError(f"{name}: {item!r} is not a{whole} number") from None

    if kind == "bool":
        if text.lower() in ("true", "on", "yes", "1"):
            return True
        if text.lower() in ("false", "off", "no", "0"):
            return False
        raise OptionError(f"{name}: {text!r} is not true or false")
    takes = number_or_words(field_types()[name]) if name in CONFIG_FIELDS else None
    if takes is not None and text in takes[1]:
        return text
    if kind in ("int", "float", "int-or-word", "float-or-word"):
        return number(text, int if kind.startswith("int") else float)
    if kind in ("ints", "floats", "texts"):
        items = [item for item in text.replace(",", " ").split() if item]
        parse = {"ints": int, "floats": float}.get(kind)
        return tuple(number(item, parse) if parse else item for item in items)
    return text


def _read(values: Mapping[str, str], fields: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The form's text values parsed by their fields' kinds (absent or empty: left out, or None where that is a
    value); a name that is not among ``fields`` is refused in one sentence."""
    offered = {field["name"]: field for field in fields}
    unknown = sorted(set(values) - set(offered))
    if unknown:
        raise OptionError(f"unknown or server-only setting(s) {', '.join(unknown)}")
    options: dict[str, Any] = {}
    for name, text in values.items():
        field = offered[name]
        text = text.strip()
        if text == "" or (field["optional"] and text.lower() == "none"):
            if field["optional"]:
                options[name] = None
            continue
        options[name] = _parse_one(name, field["kind"], text)
    return options


def config_from_form(values: Mapping[str, str], fixed: Mapping[str, Any] | None = None) -> RunConfig:
    """A config from the form's text values (absent or empty: the default, or None where that is a value), with
    ``fixed`` (the server's own settings, such as its weights file) laid over them.  Unknown or server-only
    fields, and an init that is not ``content`` or ``noise``, are refused in one sentence; a bad value gets
    RunConfig's own sentence."""
    options = _read(values, form_fields())
    if options.get("init", "content") not in INIT_CHOICES:
        raise OptionError(f"init must be one of {', '.join(INIT_CHOICES)} here, not {options['init']!r}")
    return RunConfig(**{**options, **(fixed or {})})


def colorize_from_form(
    values: Mapping[str, str], fixed: Mapping[str, Any] | None = None
) -> tuple[RunConfig, dict[str, Any]]:
    """A sketch's colouring from the form's text values: the config (colorize's defaults, then the values, then
    ``fixed``) and colorize's own settings, checked and completed.  A bad value gets the sentence colorize (and so
    ``painterly colorize``) gives it; a field colorize sets itself (``init``) is refused in colorize's sentence."""
    options = _read(values, [*form_fields(), *colorize_fields()])
    own = {option.name for option in COLORIZE_OPTIONS}
    config = colorize_config({**{k: v for k, v in options.items() if k not in own}, **(fixed or {})})
    return config, check_colorize_options({k: v for k, v in options.items() if k in own})


def cli_command(
    content: str, styles: Sequence[str], settings: Mapping[str, Any], output: str = "result.png", *,
    kind: str = "stylize",
) -> str:  # fmt: skip
    """The command that makes the same picture: ``painterly`` (a style transfer) or ``painterly colorize`` (a
    sketch's colouring, ``content`` the sketch), the inputs, then every setting that differs from its default (for
    colorize, its own settings first and colorize's defaults), as the CLI spells it."""
    colorize = kind == "colorize"
    base = {**RunConfig().to_dict(), **(COLORIZE_DEFAULTS if colorize else {})}
    words = ["painterly", *(["colorize"] if colorize else []), content, *styles]
    if colorize:
        for option in COLORIZE_OPTIONS:
            if option.name in settings and settings[option.name] != option.default:
                words += _flag_words(option.name, settings[option.name])
    for name in CONFIG_FIELDS:
        if name in ("checkpoint", "checkpoint_every") or (colorize and name in COLORIZE_SETS):
            continue
        if name in settings and settings[name] != base[name]:
            words += _flag_words(name, settings[name])
    return shlex.join([*words, "-o", output])


def _flag_words(name: str, value: Any) -> list[str]:
    """One setting as the command line spells it: ``--name value``, ``--name`` / ``--no-name``, ``--name none``."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [flag if value else f"--no-{name.replace('_', '-')}"]
    if value is None:
        return [flag, "none"]
    if isinstance(value, (list, tuple)):
        return [flag, *map(str, value)]
    return [flag, str(value)]
