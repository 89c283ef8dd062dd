"""One style-transfer run: validated settings, loaded inputs, the stage plan, and the loop over stages.

:func:`painterly.stylize` and :func:`painterly.resume` are thin wrappers over
:class:`StyleTransferRun`.  The image is optimised coarse-to-fine: first at
``start_size`` pixels on the long side, then upsampled by about sqrt(2) per stage
until ``size``.  Each stage starts from the previous result, so most of the work
happens where it is cheap; because Gram matrices and content losses are
size-normalised, the same weights mean the same thing at every stage.  Between
any two steps the run can stop and write a checkpoint from which it continues
exactly.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from painterly.allocator import reuse_freed_memory
from painterly.atomic import check_writable
from painterly.checkpoint import Checkpoint, file_sha256, save_checkpoint
from painterly.color import gray_to_rgb, luminance, prepare_color_inputs, restore_colors
from painterly.config import RunConfig
from painterly.control import per_style_layer_weights, resize_mask
from painterly.encoder import validate_layers
from painterly.engine import NumericalError, StepInfo, optimize
from painterly.errors import OptionError, PainterlyError
from painterly.events import EventStream, Failed, Finished, RunStarted, Sink, StageStarted, Stopped, on_steps
from painterly.images import (
    PROVENANCE_KEY,
    LoadedImage,
    load_image,
    normalize_image,
    pil_to_tensor,
    resize_long_side,
    tensor_to_pil,
)
from painterly.loss_registry import make_style_loss
from painterly.losses import ContentLoss, GramLoss
from painterly.memory import (
    available_bytes,
    estimate_run_bytes,
    estimate_tiled_run_bytes,
    gram_pass_core,
    largest_size_within,
)
from painterly.nets_registry import network
from painterly.objective import Objective
from painterly.optim import DEFAULT_MOMENTUM, OptimizerSettings, auto_history_size
from painterly.precision import compute_dtype, resolve_mixed_precision
from painterly.progress import ProgressBar
from painterly.provenance import make_provenance, weights_sha256
from painterly.records import StepRecord
from painterly.tiling import TiledObjective, grid_step
from painterly.weights import VGGWeights, load_weights

__all__ = ["Interrupted", "StyleTransferRun", "pyramid_sizes", "resolve_device", "split_iterations"]

log = logging.getLogger("painterly")

ImageInput = str | os.PathLike[str] | Image.Image


class Interrupted(PainterlyError):
    """The run was asked to stop between two steps; ``image`` is the result so far.

    ``checkpoint`` is the file a :func:`painterly.resume` continues from (None if
    the run was started without one).
    """

    def __init__(self, step: int, image: Image.Image, checkpoint: Path | None) -> None:
        where = f"; continue with `painterly resume {checkpoint}`" if checkpoint else ""
        super().__init__(f"stopped at step {step}{where}")
        self.step, self.image, self.checkpoint = step, image, checkpoint


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise OptionError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("device cuda was requested but PyTorch sees no CUDA GPU here; use --device cpu")
    return resolved


def pyramid_sizes(size: int, start_size: int | None, factor: float = math.sqrt(2)) -> list[int]:
    """Long-side sizes of the coarse-to-fine stages, ending exactly at ``size``.

    >>> pyramid_sizes(512, 256)
    [256, 362, 512]
    """
    if start_size is None or start_size >= size:
        return [size]
    count = math.floor(math.log(size / start_size, factor) + 1e-9)  # first stage never below start_size
    return [round(size / factor ** (count - index)) for index in range(count)] + [size]


#: Core size of the tiles chosen automatically for stages that would not fit in memory whole.
AUTO_TILE = 512

#: Fewest steps a stage gets when the budget allows: L-BFGS restarts at each stage and its first step
#: is deliberately tiny, so a stage of one or two steps would do nothing but upsample.
MIN_STAGE_STEPS = 20

#: Share of all steps that the final (full-size) stage gets.  Measured (docs/performance.md, "Time to quality"):
#: coarse stages are cheap but what they settle is partly undone at the next size (upsampling blurs away the
#: fine-scale style), so time spent at full size pays off more; about a tenth of the wall time goes to the
#: coarse stages at this share.
FINAL_STAGE_SHARE = 0.7

#: Style layers of a smaller stride than this (``relu1_x``, ``relu2_x``) are left out of every stage but the last
#: (run revision 5): the fine texture they settle at a coarse stage is blurred away by the upsampling after it, so
#: those stages' steps go to the coarser layers, whose arrangement the full-size stage is slowest to move. At 512 px
#: (240 steps, content start) the style score fell 2.4 % at the same content score (docs/performance.md, "Time to
#: quality"). A stage keeps them where no style weights a coarser layer.
COARSE_STAGE_MIN_STRIDE = 4

#: A run keeps what it frees for reuse only if free memory holds its estimated peak this many times over: kept
#: blocks raise resident memory beyond the estimate (a float32 run at 1024x768: peak 3.86 GiB with them, 3.31
#: without, estimate 3.38), and near the limit the estimate's own slack must not be spent on speed.
KEEP_FREED_MARGIN = 1.5

#: How a run computes, where that changed after checkpoints had been written; a checkpoint stores its own
#: ``revision`` so it resumes exactly as it was made.  Revision 1: every stage half the previous one's steps,
#: plain bicubic upsampling, the Gram gradient in float32.  Revision 2 (issue 8): FINAL_STAGE_SHARE
#: of the steps at full size, the content's detail restored on upsampling, the Gram gradient in the
#: convolutions' dtype.  Revision 3 (issue 8): under mixed precision the Gram loss takes the
#: bfloat16 features as they are (:func:`painterly.losses.gram_difference`), with no float32 copies.
#: Revision 4 (issue 8): tiled stages form the image's Gram matrices in wider windows
#: (:func:`painterly.memory.gram_pass_core`) and back-propagate the features as computed (bfloat16 under mixed
#: precision), as untiled stages do; untiled stages compute as in revision 3.  Revision 5 (this one, issue 8):
#: the tiled grid moves among four positions per axis (:data:`painterly.tiling.GRID_POSITIONS`) instead of one
#: per 16 px, so windows come in a few shapes and the heap stops growing; and stages before the last leave out the
#: fine style layers (:data:`COARSE_STAGE_MIN_STRIDE`).
REVISION = 5


def split_iterations(total: int, stages: int, final_share: float | None = FINAL_STAGE_SHARE) -> list[int]:
    """Share ``total`` steps over the stages: ``final_share`` of them for the last, the rest halving per stage.

    Each sqrt(2) stage doubles the pixels and so the cost per step: halving the steps over the coarse stages
    gives each of them about the same wall time.  ``final_share=None`` halves over all stages (the split of
    revision 1).  Each stage gets at least ``min(MIN_STAGE_STEPS, total // (2 * stages))`` steps (the
    difference comes out of the earliest stages); and always at least one.
    """
    floor = max(1, min(MIN_STAGE_STEPS, total // (2 * stages)))
    halving = [0.5**index for index in range(stages)]
    if final_share is None or stages == 1:
        shares = [share / sum(halving) for share in halving]
    else:
        coarse = halving[: stages - 1]
        shares = [(1 - final_share) * share / sum(coarse) for share in coarse] + [final_share]
    counts = [max(floor, math.floor(total * share)) for share in shares]
    excess = sum(counts) - total
    for index in range(stages):  # too many: take them from the earliest (cheapest) stages that can spare them
        taken = min(max(0, counts[index] - floor), max(0, excess))
        counts[index] -= taken
        excess -= taken
    counts[0] -= excess  # too few (rounding down): the remainder goes to the first stage
    return counts


def _load(source: ImageInput, role: str, max_pixels: int) -> LoadedImage:
    """A path is opened and checked; a PIL image passed to the API gets the same colour handling."""
    if isinstance(source, Image.Image):
        return normalize_image(source, role=role)
    return load_image(Path(source), max_pixels=max_pixels, role=role)


def _layer_weights(
    layers: Sequence[str], weights: Sequence[float] | None, what: str, *, scale: float
) -> dict[str, float]:
    """``{layer: scale * weight}``, per-layer weights defaulting to equal shares summing to one."""
    layers = validate_layers(layers)
    if not layers:
        raise OptionError(f"at least one {what} layer is needed")
    if weights is None:
        weights = [1.0 / len(layers)] * len(layers)
    if len(weights) != len(layers):
        raise OptionError(f"{len(weights)} {what} layer weights given for {len(layers)} {what} layers")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise OptionError(f"{what} layer weights must be finite and non-negative, got {list(weights)}")
    return {layer: scale * weight for layer, weight in zip(layers, weights, strict=True)}


def _short_side(image_size: tuple[int, int], long_side: int) -> int:
    return max(1, round(min(image_size) * long_side / max(image_size)))


def _feasible_sizes(sizes: list[int], image_size: tuple[int, int], min_side: int) -> list[int]:
    """Drop coarse stages too small for the deepest layer; refuse if even the final size is."""
    feasible = [s for s in sizes if _short_side(image_size, s) >= min_side]
    if not feasible:
        width, height = image_size
        raise OptionError(
            f"at size {sizes[-1]} the content ({width}x{height}, aspect {max(image_size) / min(image_size):.1f}:1) "
            f"has a short side of {_short_side(image_size, sizes[-1])} px, but the chosen layers need at least "
            f"{min_side} px; use a larger --size, shallower layers, or a less extreme aspect ratio"
        )
    return feasible


def _resize_at_least(image: Image.Image, long_side: int, min_side: int) -> Image.Image:
    """Resize to ``long_side``, enlarged if needed so the short side reaches ``min_side``."""
    needed = math.ceil(min_side * max(image.size) / min(image.size))
    return resize_long_side(image, max(long_side, needed))


def _absolute(source: ImageInput) -> ImageInput:
    """Paths made absolute (checkpoints must resume from any directory); images passed through."""
    return Path(source).resolve() if isinstance(source, (str, os.PathLike)) else source


def _with_absolute_paths(config: RunConfig) -> RunConfig:
    """The config's file paths made absolute (masks, init image, weights, checkpoint), as a checkpoint keeps them."""
    changes: dict[str, Any] = {}
    if config.style_masks is not None:
        changes["style_masks"] = [_absolute(m) for m in config.style_masks]
    if config.init not in ("content", "noise"):
        changes["init"] = str(_absolute(config.init))
    for name in ("weights", "checkpoint"):
        value = getattr(config, name)
        if isinstance(value, (str, os.PathLike)):
            changes[name] = str(_absolute(value))
    return config.replace(**changes) if changes else config


def _bicubic(image: Tensor, height: int, width: int) -> Tensor:
    return F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False)


def _upsample(image: Tensor, height: int, width: int) -> Tensor:
    return _bicubic(image, height, width).clamp(0, 1)


def upsample_with_detail(image: Tensor, content: Tensor, coarse_content: Tensor) -> Tensor:
    """The previous stage's result at ``content``'s size, with the content's detail finer than that stage put back.

    A coarse stage cannot hold detail finer than its pixels, and bicubic upsampling leaves that band empty
    (blurred), which costs content and fine-scale style loss at the next stage.  The best guess for the band
    is the content's own (a content-initialised run started from it): ``content`` minus ``coarse_content``
    (the content at the previous stage's size) upsampled the same way.  theory.md §8.3.
    """
    height, width = content.shape[-2:]
    detail = content - _bicubic(coarse_content, height, width)
    return (_bicubic(image, height, width) + detail).clamp(0, 1)


class StyleTransferRun:
    """Validate ``options`` (the keywords of :func:`painterly.stylize`), load inputs, plan the stages.

    Everything that can be refused is refused here, before any optimisation: bad values, unreadable images, a
    size that does not fit in memory.  (One exception: a stage at whose size every style mask vanishes while no
    other loss has a target is refused when that stage is built.)
    """

    def __init__(
        self,
        content: ImageInput,
        styles: ImageInput | Sequence[ImageInput],
        config: RunConfig,
        *,
        revision: int = REVISION,
        tile_plan: Sequence[int | None] | None = None,
    ) -> None:
        """``revision`` and ``tile_plan`` are given by a resumed run: its checkpoint's, so it computes as it began."""
        config = _with_absolute_paths(config)
        #: the settings as given (paths made absolute): what the user chose, automatic values still unset
        self.config = config
        o = config
        self.content_source = _absolute(content)
        self.style_sources: list[ImageInput] = [
            _absolute(s) for s in ([styles] if isinstance(styles, (str, os.PathLike, Image.Image)) else styles)
        ]
        config.check_inputs(len(self.style_sources))
        self._validate()
        self.style_comparison = make_style_loss(o.style_loss)
        self.device = resolve_device(o.device)
        self.content = _load(content, "content image", o.max_pixels)
        loaded_styles = [_load(s, "style image", o.max_pixels) for s in self.style_sources]
        for note in [*self.content.notes, *(n for s in loaded_styles for n in s.notes)]:
            log.warning(note)
        self.working_content, self.style_images = prepare_color_inputs(
            self.content.rgb, [s.rgb for s in loaded_styles], o.color_control
        )
        self.mask_images = (
            None if o.style_masks is None else [_load(m, "style mask", o.max_pixels).rgb for m in o.style_masks]
        )
        self._check_masks_cover_something()
        for mask in self.mask_images or []:
            if abs(math.log(mask.width * self.content.rgb.height / (mask.height * self.content.rgb.width))) > 0.02:
                log.warning(f"a style mask is {mask.width}x{mask.height}, not the content's shape; it is stretched")
        vgg = (
            o.weights
            if isinstance(o.weights, VGGWeights)
            else (load_weights(os.fspath(o.weights)) if o.weights else None)
        )
        vgg = vgg or network("vgg19").default_weights()
        self.encoder = network("vgg19").build(vgg, [*self.content_weights, *self.style_weights], pooling=o.pooling)
        self.encoder = self.encoder.to(self.device)
        # Decided once (measured on CPUs, painterly.precision) and kept in the checkpoint and the trace: a resumed
        # run computes in the precision it began with.
        mixed_precision = resolve_mixed_precision(self.device, o.mixed_precision)
        self.encoder.compute_dtype = compute_dtype(mixed_precision)
        self.revision = revision
        if self.revision not in range(1, REVISION + 1):
            raise OptionError(f"this checkpoint was made by a newer painterly (revision {self.revision}); upgrade")
        # Exactly GramLoss (a subclass may form its Gram matrices its own way, in whatever dtype it is handed).
        if type(self.style_comparison) is GramLoss:
            if self.revision == 2:  # backward in the convolutions' dtype
                self.style_comparison.gradient_dtype = self.encoder.compute_dtype
            elif self.revision >= 3:  # and the forward too, no copies
                self.style_comparison.accepts_low_precision = True
        if self.device.type == "cpu":
            self.encoder = self.encoder.to(memory_format=torch.channels_last)
        self.sizes = _feasible_sizes(pyramid_sizes(o.size, o.start_size), self.content.rgb.size, self.encoder.min_side)
        self.sizes = self.sizes[-o.iterations :]  # fewer steps than stages: keep the finest stages only
        final_share = FINAL_STAGE_SHARE if self.revision >= 2 else None
        self.steps_per_stage = split_iterations(o.iterations, len(self.sizes), final_share)
        history = o.history_size
        if history is None:
            history = auto_history_size(math.prod(self._stage_shape(self.sizes[-1])))
        self.settings = OptimizerSettings(
            name=o.optimizer, learning_rate=o.learning_rate, history_size=history, line_search=o.line_search,
            momentum=DEFAULT_MOMENTUM if o.momentum is None else o.momentum, lr_decay=o.lr_decay, average=o.average,
        )  # fmt: skip
        #: the settings with the automatic choices made (precision; L-BFGS history): what a checkpoint keeps
        self.resolved_config = config.replace(
            mixed_precision=mixed_precision, history_size=history if o.optimizer == "lbfgs" else o.history_size
        )
        # The tiling plan is decided once and kept in the checkpoint: a resumed run tiles exactly the stages the
        # interrupted one did, whatever memory is free when it resumes.
        if tile_plan is None:
            tile_plan = [self._tile_core(self._stage_shape(s)) for s in self.sizes]
        self.tile_cores: list[int | None] = list(tile_plan)
        if o.check_memory:
            self._check_memory()

    def _validate(self) -> None:
        """What the config could not check alone: the layers' names and weights, that something is painted
        towards, and that a checkpoint can be written (and that its inputs are files)."""
        o = self.config
        count = len(self.style_sources)
        blend = list(o.style_blend) if o.style_blend is not None else [1.0] * count
        self.content_weights = _layer_weights(
            o.content_layers, o.content_layer_weights, "content", scale=o.content_weight
        )
        self.style_weights = _layer_weights(o.style_layers, o.style_layer_weights, "style", scale=o.style_weight)
        self.scales = list(o.per_style_scale) if o.per_style_scale is not None else [1.0] * count
        # Masked styles act in their own regions, so their blend weights are not shared out.
        self.per_style_weights = per_style_layer_weights(
            self.style_weights, blend, o.per_style_layers, normalize=o.style_masks is None
        )
        if not self._has_target():
            raise OptionError(
                "the content, style and Laplacian losses all have zero weight, so there is nothing to paint towards; "
                "give --content-weight or --style-weight (and their layer weights) a positive value"
            )
        if o.checkpoint is not None:
            check_writable(Path(o.checkpoint), "checkpoint")
            sources = [self.content_source, *self.style_sources, *(o.style_masks or [])]
            if any(isinstance(s, Image.Image) for s in sources) or isinstance(o.weights, VGGWeights):
                raise OptionError("checkpoints need image files and a weights file (or the default), not objects")

    def _has_target(self, *, styles: bool = True) -> bool:
        """Whether any loss compares the image with something: the content, a style (unless ``styles`` is False),
        or the content's edges (Laplacian). Smoothing (TV) alone has no target."""
        style_total = sum(w for weights in self.per_style_weights for w in weights.values()) if styles else 0
        return bool(any(self.content_weights.values()) or style_total or self.config.laplacian_weight)

    def _check_masks_cover_something(self) -> None:
        """A black mask leaves its style out; with every mask black and no content loss nothing is left to paint."""
        if self.mask_images is None:
            return
        empty = [index for index, mask in enumerate(self.mask_images, 1) if mask.convert("L").getextrema()[1] == 0]
        if len(empty) == len(self.mask_images) and not self._has_target(styles=False):
            raise OptionError(
                "every style mask is black (covers nothing) and the content weight is 0, so there is nothing to "
                "paint towards; paint white where each style should go, or give --content-weight a positive value"
            )
        for index in empty:
            log.warning(f"style mask {index} is black everywhere, so style image {index} is not used")

    def _room_to_keep_freed_memory(self) -> bool:
        """Whether this run may keep what it frees for reuse (:mod:`painterly.allocator`): on the CPU, untiled,
        when free memory holds the final stage's estimate with :data:`KEEP_FREED_MARGIN` to spare."""
        if self.device.type != "cpu" or any(core is not None for core in self.tile_cores):
            return False  # CUDA's caching allocator reuses its blocks; tiled runs hand theirs back (tiling.py)
        free = available_bytes(self.device)
        needed = self._stage_bytes(self._stage_shape(self.sizes[-1]), None)
        return free is not None and needed * KEEP_FREED_MARGIN <= free

    def _history_at(self, width: int, height: int) -> int:
        """The L-BFGS history a run of this final size would keep (automatic unless the user chose one)."""
        return auto_history_size(width * height) if self.config.history_size is None else self.settings.history_size

    def _tile_core(self, shape: tuple[int, int]) -> int | None:
        """The core size to tile a stage of this shape with, or None to run it whole.

        An explicit tile size tiles every stage larger than one core; the default (None) tiles, with
        :data:`AUTO_TILE` px cores, only the stages that would not fit in free memory whole (and none when
        the memory check is off, or free memory cannot be told).
        """
        o = self.config
        if o.tile_size == 0 or self.config.tiling_unsupported():
            return None
        if o.tile_size is None:
            free = available_bytes(self.device) if o.check_memory else None
            if free is None or self._stage_bytes(shape, None) <= free:
                return None
            core = AUTO_TILE
        else:
            core = o.tile_size
        core = self._aligned(core)
        return core if max(shape) > core else None

    def _stage_bytes(self, shape: tuple[int, int], core: int | None, history: int | None = None) -> int:
        """Estimated peak of a stage of this shape (``history``: L-BFGS pairs, default this run's)."""
        history = self.settings.history_size if history is None else history
        layers = self.encoder.computed_layers
        if core is None:
            return estimate_run_bytes(layers, *shape, optimizer=self.settings.name, history=history)
        content_layers = [layer for layer in layers if self.content_weights.get(layer.name)]
        return estimate_tiled_run_bytes(
            layers, *shape, core=core, margin=self.margin, content_layers=content_layers,
            optimizer=self.settings.name, history=history,
        )  # fmt: skip

    def _aligned(self, pixels: int) -> int:
        """Rounded up to the deepest layer's stride, so windows share the image's pooling grid (tiling)."""
        align = self.encoder.max_stride
        return math.ceil(pixels / align) * align

    @property
    def margin(self) -> int:
        return self._aligned(self.config.tile_margin)

    def _stage_shape(self, stage_size: int) -> tuple[int, int]:
        width, height = self.content.rgb.size
        short = _short_side((width, height), stage_size)
        return (stage_size, short) if width >= height else (short, stage_size)

    def _check_memory(self) -> None:
        """Refuse, with the largest size that fits, a run whose estimate exceeds the free memory."""
        width, height = self._stage_shape(self.sizes[-1])
        core = self.tile_cores[-1]
        needed = self._stage_bytes((width, height), core)
        free = available_bytes(self.device)
        if free is None or needed <= free:
            return
        aspect = min(width, height) / max(width, height)
        fits = largest_size_within(
            free, self.config.size, aspect, lambda w, h: self._stage_bytes((w, h), core, self._history_at(w, h))
        )
        if core is not None:
            raise OptionError(
                f"a {width}x{height} run needs about {needed / 2**30:.1f} GiB even tiled, but only "
                f"{free / 2**30:.1f} GiB is free on {self.device.type}; the largest size that fits is about {fits} "
                f"px (--size {fits}), or lower --history-size (each L-BFGS pair is two copies of the image), use "
                "--optimizer adam, a smaller --tile-size, or pass --no-check-memory to try anyway"
            )
        raise OptionError(
            f"a {width}x{height} run needs about {needed / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB is free "
            f"on {self.device.type}; the largest size that fits is about {fits} px (--size {fits}), or lower "
            "--history-size, or pass --no-check-memory to try anyway"
        )

    def checkpoint_config(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild this run: the resolved settings, the inputs, the revision and the
        tiling plan (flat, as checkpoints have always stored them)."""
        return {**self.resolved_config.to_dict(), "revision": self.revision, "tile_plan": self.tile_cores,
                "content": str(self.content_source), "styles": [str(s) for s in self.style_sources]}  # fmt: skip

    @functools.cached_property
    def provenance(self) -> str | None:
        """What made this run's pictures (painterly.provenance); None when an input is an in-memory object."""
        o = self.config
        sources = [self.content_source, *self.style_sources, *(o.style_masks or [])]
        if any(isinstance(s, Image.Image) for s in sources) or isinstance(o.weights, VGGWeights):
            return None
        hashes = self.input_hashes()
        return make_provenance(self.checkpoint_config(), hashes, weights_sha256(o.weights, hashes))

    def input_hashes(self) -> dict[str, str]:
        """sha256 of every input file (a checkpointed run has only files: :meth:`_validate` refuses objects)."""
        sources = [self.content_source, *self.style_sources, *(self.config.style_masks or []), self.config.weights]
        if self.config.init not in ("content", "noise"):
            sources.append(self.config.init)
        paths = [os.fspath(s) for s in sources if isinstance(s, (str, os.PathLike))]
        return {path: file_sha256(path) for path in paths}

    def _style_weights_at(self, stage_size: int) -> list[dict[str, float]]:
        """Each style's layer weights in the stage of this size: all of them in the last stage (and before revision
        5), else without the layers finer than :data:`COARSE_STAGE_MIN_STRIDE`, for every style alike, where any
        style weights a coarser layer (so a style weighting only fine layers is left out of the coarse stages)."""
        if self.revision < 5 or stage_size == self.sizes[-1]:
            return self.per_style_weights

        def fine(layer: str) -> bool:
            return self.encoder.stride(layer) < COARSE_STAGE_MIN_STRIDE

        if not any(w for weights in self.per_style_weights for layer, w in weights.items() if not fine(layer)):
            return self.per_style_weights
        return [
            {layer: 0.0 if fine(layer) else w for layer, w in weights.items()} for weights in self.per_style_weights
        ]

    def _objective(self, stage_size: int) -> tuple[Objective | TiledObjective, Tensor]:
        o = self.config
        content = pil_to_tensor(resize_long_side(self.working_content, stage_size)).to(self.device)
        styles = [
            pil_to_tensor(_resize_at_least(s, round(stage_size * o.style_scale * k), self.encoder.min_side))
            for s, k in zip(self.style_images, self.scales, strict=True)
        ]
        core = self.tile_cores[self.sizes.index(stage_size)]
        if core is not None:
            # Revision 4: the Gram pass in wider windows, the backward pass on the features as computed;
            # revision 5: a few grid positions.
            height, width = content.shape[-2:]
            gram_core = (
                gram_pass_core(self.encoder.computed_layers, width, height, core=core, margin=self.margin)
                if self.revision >= 4
                else core
            )
            tiled = TiledObjective.build(
                self.encoder, content=content, styles=[s.to(self.device) for s in styles],
                content_layer_weights=self.content_weights, style_layer_weights=self._style_weights_at(stage_size),
                core=core, margin=self.margin, gram_core=gram_core, low_precision=self.revision >= 4,
                grid_step=grid_step(core, self.encoder.max_stride) if self.revision >= 5 else None,
                tv_weight=o.tv_weight, laplacian_weight=o.laplacian_weight,
                luminance_only=o.color_control == "luminance",
            )  # fmt: skip
            return tiled, content
        objective = Objective.build(
            self.encoder,
            content=content,
            styles=[s.to(self.device) for s in styles],
            content_loss=ContentLoss(accepts_low_precision=self.revision >= 3),
            style_loss=self.style_comparison,
            content_layer_weights=self.content_weights,
            style_layer_weights=self._style_weights_at(stage_size),
            style_blend=[1.0] * len(styles),  # folded into per_style_weights
            tv_weight=o.tv_weight,
            laplacian_weight=o.laplacian_weight,
            style_masks=None if self.mask_images is None else [resize_mask(m, content) for m in self.mask_images],
            luminance_only=o.color_control == "luminance",
            normalize_gradients=o.normalize_gradients,
        )
        return objective, content

    def _initial_image(self, content: Tensor) -> Tensor:
        o = self.config
        if o.init == "content":
            start = content.clone()
        elif o.init == "noise":  # white noise around mid-grey (the paper starts from white noise)
            generator = torch.Generator().manual_seed(o.seed)
            noise = torch.randn(content.shape, generator=generator, dtype=content.dtype)
            start = (0.5 + 0.25 * noise.to(content.device)).clamp(0, 1)
        else:
            picture = load_image(o.init, max_pixels=o.max_pixels, role="init image").rgb
            size = (content.shape[-1], content.shape[-2])
            start = pil_to_tensor(picture.resize(size, Image.Resampling.LANCZOS)).to(content)
        if o.color_control == "luminance":  # the whole optimisation runs on grey images
            start = gray_to_rgb(luminance(start))
        return start

    def _next_start(self, image: Tensor, content: Tensor, previous_content: Tensor) -> Tensor:
        """Where a stage after the first starts: the previous result, upsampled (with the content's detail).

        ``previous_content`` is the content at the previous stage's size, the shape of ``image``.
        """
        height, width = content.shape[-2:]
        if self.revision < 2 or self.config.init != "content":
            return _upsample(image, height, width)
        start = upsample_with_detail(image, content, previous_content)
        if self.config.color_control == "luminance":  # the optimisation runs on grey images
            start = gray_to_rgb(luminance(start))
        return start

    def _finish(self, image: Tensor) -> Image.Image:
        if self.config.color_control in ("luminance", "original-colors"):  # result's luminance, content's colours
            height, width = image.shape[-2:]
            original = pil_to_tensor(self.content.rgb.resize((width, height), Image.Resampling.LANCZOS)).to(image)
            image = restore_colors(image, original, self.config.color_control)
        result = tensor_to_pil(image)
        if self.content.alpha is not None:
            result.putalpha(self.content.alpha.resize(result.size, Image.Resampling.LANCZOS))
        provenance = self.provenance
        if provenance is not None:  # save_image writes it into the file
            result.info[PROVENANCE_KEY] = provenance
        return result

    def execute(
        self,
        *,
        progress: bool = False,
        on_step: Callable[[StepRecord], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        resume_from: Checkpoint | None = None,
        extra: dict[str, Any] | None = None,
        sinks: Sequence[Sink] = (),
    ) -> Image.Image:
        """Optimise stage by stage; on a stop request write the checkpoint and raise :class:`Interrupted`.

        Everything the run reports goes to ``sinks`` as one stream of :mod:`painterly.events` (the progress bar
        and ``on_step`` are sinks too); ``should_stop`` (a :class:`~painterly.events.StopToken` serves) is checked
        between two steps.
        """
        stream = EventStream([*([ProgressBar()] if progress else []), *([on_steps(on_step)] if on_step else []),
                              *sinks])  # fmt: skip
        # Keep freed blocks for the next evaluation instead of page-faulting them in afresh (painterly.allocator).
        with reuse_freed_memory(self._room_to_keep_freed_memory()):
            return self._execute_stages(stream, should_stop=should_stop, resume_from=resume_from, extra=extra)

    def _execute_stages(
        self,
        stream: EventStream,
        *,
        should_stop: Callable[[], bool] | None,
        resume_from: Checkpoint | None,
        extra: dict[str, Any] | None,
    ) -> Image.Image:
        o = self.config
        stop = should_stop or (lambda: False)
        checkpoint_path = Path(o.checkpoint) if o.checkpoint is not None else None
        hashes = self.input_hashes() if checkpoint_path is not None and resume_from is None else None
        if resume_from is not None:
            hashes = resume_from.input_hashes
        total_steps = sum(self.steps_per_stage)
        first_stage = resume_from.stage if resume_from is not None else 0
        step = resume_from.step if resume_from is not None else 0
        precision = "bfloat16" if self.resolved_config.mixed_precision else "float32"
        offset = resume_from.elapsed if resume_from is not None else 0.0
        started = time.perf_counter()

        def elapsed() -> float:
            return offset + time.perf_counter() - started

        sizes = tuple(self._stage_shape(s) for s in self.sizes)
        image: Tensor | None = None  # the previous stage's result (a resumed stage starts from its saved state)
        previous_content: Tensor | None = None  # and the content at its size

        def save(stage_index: int, stage_done: int, state: dict[str, Any]) -> bool:
            """Write the checkpoint; a failure (disk full, folder removed) is reported, never loses the run."""
            assert checkpoint_path is not None and hashes is not None
            try:
                save_checkpoint(checkpoint_path, Checkpoint(
                    config=self.checkpoint_config(),
                    input_hashes=hashes, stage=stage_index, stage_steps_done=stage_done, step=step,
                    optimizer_state=state,
                    elapsed=elapsed(), extra=dict(extra or {}),
                ))  # fmt: skip
            except OSError as error:
                log.error(f"could not write the checkpoint {checkpoint_path}: {error}")
                return False
            return True

        try:
            stream.emit(RunStarted(sizes, tuple(self.steps_per_stage), precision, resumed_at_step=step))
            for index in range(first_stage, len(self.sizes)):
                stage_size, stage_steps = self.sizes[index], self.steps_per_stage[index]
                # Random choices while building targets (MRF patch sampling) come from a generator seeded per
                # stage, so a resumed run rebuilds exactly the same objective; the caller's RNG is untouched.
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(o.seed * 1009 + index)
                    objective, content = self._objective(stage_size)
                height, width = content.shape[-2:]
                resuming_here = resume_from is not None and index == resume_from.stage
                if resuming_here:
                    assert resume_from is not None
                    state = resume_from.optimizer_state
                    start, first_step = state["current"].to(self.device), resume_from.stage_steps_done
                else:
                    state, first_step = None, 0
                    if image is None or previous_content is None:
                        start = self._initial_image(content)
                    else:
                        start = self._next_start(image, content, previous_content)
                previous_content = content
                stream.emit(StageStarted(stage=index + 1, stages=len(self.sizes), size=(width, height),
                                         steps=stage_steps, first_step=first_step,
                                         tiled=self.tile_cores[index] is not None))  # fmt: skip

                def report(info: StepInfo, stage: int = index + 1, size: tuple[int, int] = (width, height)) -> None:
                    nonlocal step
                    step += 1
                    record = StepRecord(
                        step=step, total_steps=total_steps, stage=stage, stages=len(self.sizes), size=size,
                        losses=info.losses, elapsed=elapsed(), image=info.image, evaluations=info.evaluations,
                        precision=precision,
                    )  # fmt: skip
                    stream.emit(record)

                periodic = o.checkpoint_every if checkpoint_path is not None else 0
                result = optimize(
                    objective, start, steps=stage_steps, settings=self.settings, on_step=report,
                    should_stop=stop, resume_state=state, first_step=first_step,
                    checkpoint_every=periodic,
                    on_checkpoint=functools.partial(save, index),
                )  # fmt: skip
                image = result.image
                del objective
                if result.stopped:
                    saved = checkpoint_path is not None and save(index, result.steps_done, result.state)
                    stopped = Interrupted(step, self._finish(image), checkpoint_path if saved else None)
                    stream.end(Stopped(step, elapsed(), stopped.image, stopped.checkpoint))
                    raise stopped
        except NumericalError as error:
            error.picture = self._finish(error.image)
            stream.end(Failed(step, str(error), error.picture))
            raise
        except Interrupted:
            raise
        except BaseException as error:  # reported to the sinks (a bar to close, a queue to tell), then passed on
            reason = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error) or type(error).__name__
            stream.end(Failed(step, reason))
            raise
        assert image is not None
        result_image = self._finish(image)
        stream.end(Finished(step, elapsed(), result_image))
        return result_image
