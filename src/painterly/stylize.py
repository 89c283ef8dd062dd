"""``stylize()`` and ``resume()``: the product.  Everything else (CLI, benchmarks) is a thin layer over them.

The options are the fields of :class:`painterly.config.RunConfig` (types, defaults,
checks, help), and :func:`stylize` takes them as keywords one for one; the CLI is
generated from the same fields, and a checkpoint stores the config.  The work
itself is done by :class:`painterly.run.StyleTransferRun`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

from PIL import Image

from painterly.config import (
    CONFIG_FIELDS,
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_STYLE_LAYERS,
    ImageInput,
    RunConfig,
    options_docstring,
)
from painterly.control.color import ColorControl
from painterly.engine.optim import OptimizerName, unused_optimizer_options
from painterly.engine.precision import flag_rule
from painterly.errors import OptionError
from painterly.events import Sink
from painterly.io.checkpoint import Checkpoint, load_checkpoint
from painterly.io.images import DEFAULT_MAX_PIXELS
from painterly.nets.encoder import Pooling
from painterly.nets.weights import WeightsObject
from painterly.plan.stages import pyramid_sizes, split_iterations
from painterly.records import StepRecord
from painterly.run import Interrupted, resolve_device
from painterly.session import default_session

__all__ = [
    "DEFAULT_CONTENT_LAYERS",
    "DEFAULT_STYLE_LAYERS",
    "RUNTIME_ARGUMENTS",
    "ImageInput",
    "Interrupted",
    "StepRecord",
    "default_options",
    "pyramid_sizes",
    "resolve_device",
    "resume",
    "run_with_config",
    "split_iterations",
    "stylize",
]


def stylize(
    content: ImageInput,
    styles: ImageInput | Sequence[ImageInput],
    *,
    size: int = 512,
    start_size: int | None = 256,
    iterations: int = 300,
    style_weight: float | Literal["auto"] = 50.0,
    content_weight: float = 1.0,
    tv_weight: float = 0.0,
    laplacian_weight: float = 0.0,
    style_blend: Sequence[float] | None = None,
    style_scale: float = 1.0,
    per_style_scale: Sequence[float] | None = None,
    per_style_layers: Sequence[str] | None = None,
    style_masks: Sequence[ImageInput] | None = None,
    color_control: ColorControl = "none",
    network: str = "vgg19",
    swag: bool | None = None,
    content_layers: Sequence[str] | None = None,
    style_layers: Sequence[str] | None = None,
    content_layer_weights: Sequence[float] | None = None,
    style_layer_weights: Sequence[float] | None = None,
    style_loss: str = "gram",
    init: str = "content",
    optimizer: OptimizerName = "lbfgs",
    learning_rate: float | None = None,
    history_size: int | None = None,
    line_search: bool = False,
    momentum: float | None = None,
    lr_decay: float = 1.0,
    average: float = 0.0,
    normalize_gradients: bool = False,
    pooling: Pooling = "max",
    seed: int = 0,
    device: str = "auto",
    mixed_precision: bool | None = None,
    weights: str | os.PathLike[str] | WeightsObject | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    check_memory: bool = True,
    tile_size: int | None = None,
    tile_margin: int = 64,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 0,
    progress: bool = False,
    on_step: Callable[[StepRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_extra: dict[str, Any] | None = None,
    sinks: Sequence[Sink] = (),
) -> Image.Image:
    """Paint ``content`` in the style of ``styles`` (Gatys, Ecker & Bethge 2015).

    Args:
        content: the photo (or sketch) whose layout is kept: a path or a PIL image.
        styles: one or more artworks whose style is transferred.
        {options}
        progress: show a progress bar with losses and ETA on stderr.
        on_step: called with a StepRecord after every optimiser step.
        should_stop: polled between steps (a painterly.events.StopToken serves); when it returns True the run
            saves its checkpoint (if any) and raises painterly.Interrupted carrying the image so far.
        sinks: callables that receive every event of the run in order (painterly.events: RunStarted, then per
            stage StageStarted and a StepRecord per step, a WentBack wherever a blow-up sent the optimiser back,
            then Finished, Stopped or Failed).
        checkpoint_extra: the caller's own data, stored with the checkpoint and kept by resume() (the CLI keeps
            its output, trace and --save-every settings there, so a resumed run writes where this one would).

    Returns:
        The stylized image (RGB; RGBA when the content had transparency, with the content's alpha).
    """
    # The keywords are RunConfig's fields one for one (tests/test_config.py checks names, defaults and types).
    config = RunConfig(**{name: value for name, value in locals().items() if name in CONFIG_FIELDS})
    return run_with_config(content, styles, config, progress=progress, on_step=on_step, should_stop=should_stop,
                           checkpoint_extra=checkpoint_extra, sinks=sinks)  # fmt: skip


def run_with_config(
    content: ImageInput,
    styles: ImageInput | Sequence[ImageInput],
    config: RunConfig,
    *,
    progress: bool = False,
    on_step: Callable[[StepRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_extra: dict[str, Any] | None = None,
    sinks: Sequence[Sink] = (),
) -> Image.Image:
    """:func:`stylize` with its settings given as one :class:`~painterly.config.RunConfig` (e.g. read from JSON)."""
    _check_plain(checkpoint_extra)
    return default_session().run(
        content, styles, config, progress=progress, on_step=on_step, should_stop=should_stop,
        checkpoint_extra=checkpoint_extra, sinks=sinks,
    )  # fmt: skip


# The options' help lives with RunConfig's fields; stylize's docstring shows it in place (help(painterly.stylize)).
assert stylize.__doc__ is not None
stylize.__doc__ = stylize.__doc__.replace("        {options}\n", options_docstring(indent=8))


def _check_plain(extra: dict[str, Any] | None) -> None:
    """The caller's checkpoint data must be plain JSON values: checkpoints are read back with ``weights_only``,
    which refuses arbitrary objects, and a failure found only at Ctrl-C would cost the checkpoint."""
    try:
        json.dumps(extra)
    except (TypeError, ValueError) as error:
        raise OptionError(
            f"checkpoint_extra must hold plain JSON values (strings, numbers, lists, dicts): {error}"
        ) from None


#: Values for settings a checkpoint predates that reproduce how it was made: no tiling, float32, revision 1
#: (painterly.plan.stages.RECIPES; kept in the checkpoint by the run itself, not a stylize() argument), and VGG-19
#: (the only network before --network).
LEGACY_DEFAULTS: dict[str, Any] = {"tile_size": 0, "mixed_precision": False, "revision": 1, "network": "vgg19"}

#: stylize() arguments that say how to run, not what to compute: not in RunConfig, not stored in a checkpoint.
RUNTIME_ARGUMENTS = frozenset({"content", "styles", "progress", "on_step", "should_stop", "checkpoint_extra", "sinks"})


def default_options() -> dict[str, Any]:
    """Every stylize() option with its default value (RunConfig's defaults)."""
    defaults = RunConfig()
    return {name: getattr(defaults, name) for name in CONFIG_FIELDS}


def resume(
    checkpoint: str | os.PathLike[str] | Checkpoint,
    *,
    progress: bool = False,
    on_step: Callable[[StepRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    extra: dict[str, Any] | None = None,
    sinks: Sequence[Sink] = (),
) -> Image.Image:
    """Continue a run from its checkpoint; on the CPU the result equals an uninterrupted run's.

    The inputs (images and weights file) must be unchanged: their sha256 is checked.
    ``checkpoint`` may also be an already loaded (and verified) :class:`Checkpoint`.
    ``extra`` replaces the caller data stored with the checkpoint.
    """
    if isinstance(checkpoint, Checkpoint):
        state, path = checkpoint, checkpoint.extra.get("checkpoint")
    else:
        state, path = load_checkpoint(checkpoint), str(checkpoint)
    # Settings added after the checkpoint was written take the values that reproduce the old behaviour.
    options = {**LEGACY_DEFAULTS, **state.config}
    content, styles = options.pop("content"), options.pop("styles")
    revision, tile_plan = options.pop("revision"), options.pop("tile_plan", None)
    options["checkpoint"] = path or options.get("checkpoint")
    if options["mixed_precision"] is None:  # written before the choice was recorded: the flag rule made it then
        options["mixed_precision"] = flag_rule(resolve_device(options.get("device", "auto")))
    for name in unused_optimizer_options(options):  # older checkpoints stored every option, used or not
        options[name] = default_options()[name]
    return default_session().run(
        content, styles, RunConfig.from_dict(options), revision=revision, tile_plan=tile_plan, resume_from=state,
        progress=progress, on_step=on_step, should_stop=should_stop,
        checkpoint_extra=state.extra if extra is None else extra, sinks=sinks,
    )  # fmt: skip
