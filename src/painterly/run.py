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
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from painterly.config import AUTO, ImageInput, RunConfig
from painterly.control.color import gray_to_rgb, luminance, prepare_color_inputs, restore_colors
from painterly.control.spatial import per_style_layer_weights, resize_mask
from painterly.engine.allocator import reuse_freed_memory
from painterly.engine.loop import BLOWUP_FACTOR, NumericalError, StepInfo, optimize
from painterly.engine.optim import OptimizerSettings
from painterly.engine.precision import compute_dtype, resolve_mixed_precision
from painterly.errors import OptionError, PainterlyError
from painterly.events import (
    EventStream,
    Failed,
    Finished,
    RunStarted,
    Sink,
    StageStarted,
    Stopped,
    WentBack,
    on_steps,
)
from painterly.io.atomic import check_writable
from painterly.io.checkpoint import Checkpoint, file_sha256, save_checkpoint
from painterly.io.images import (
    PROVENANCE_KEY,
    LoadedImage,
    load_image,
    normalize_image,
    pil_to_tensor,
    resize_long_side,
    tensor_to_pil,
)
from painterly.losses.core import ContentLoss, GramLoss
from painterly.losses.registry import make_style_loss
from painterly.nets.base import Encoder, Pooling
from painterly.nets.registry import network
from painterly.nets.swag import SoftmaxSmoothedEncoder
from painterly.nets.weights import WeightsObject
from painterly.objective.targets import EncoderTargets
from painterly.objective.tiled import TiledObjective, grid_step
from painterly.objective.whole import Objective, PixelTerm
from painterly.plan.balance import AUTO_REFERENCE_WEIGHT, auto_style_weight
from painterly.plan.memory import (
    available_bytes,
    gram_pass_core,
    resident_bytes,
)
from painterly.plan.stages import CURRENT_REVISION, NetworkShape, make_plan, recipe
from painterly.progress import ProgressBar
from painterly.provenance import make_provenance, weights_sha256
from painterly.records import StepRecord

__all__ = ["Interrupted", "StyleTransferRun", "resolve_device"]

log = logging.getLogger("painterly")


class EncoderSource(Protocol):
    """What lends a run its encoder and a cache of style targets (a :class:`painterly.session.Session`)."""

    def encoder_for(
        self, weights: str | os.PathLike[str] | WeightsObject | None, layers: Sequence[str], pooling: Pooling,
        device: torch.device, *, network: str = "vgg19", swag: bool = False,
    ) -> tuple[Encoder, EncoderTargets]: ...  # fmt: skip


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


def _report_blowup(stage_step: int, loss: float, best: float, *, stage: int, stream: EventStream) -> None:
    """Say that the optimiser blew up and was sent back (painterly.engine.loop), so a user who watches the loss
    jump knows the run recovered and does not lose the picture; the sinks get it as a :class:`WentBack`."""
    log.warning(f"stage {stage}, step {stage_step}: the loss jumped to {loss:.4g}, {loss / best:.0f} times the "
                f"stage's lowest ({best:.4g}); going back to that picture with a fresh optimiser")  # fmt: skip
    stream.emit(WentBack(stage=stage, stage_step=stage_step, loss=loss, best=best))


def _load(source: ImageInput, role: str, max_pixels: int) -> LoadedImage:
    """A path is opened and checked; a PIL image passed to the API gets the same colour handling."""
    if isinstance(source, Image.Image):
        return normalize_image(source, role=role)
    return load_image(Path(source), max_pixels=max_pixels, role=role)


def _layer_weights(
    layers: Sequence[str], weights: Sequence[float] | None, what: str, *, scale: float, network_name: str
) -> dict[str, float]:
    """``{layer: scale * weight}`` (layers of the network named ``network_name``), per-layer weights defaulting to
    equal shares summing to one."""
    layers = network(network_name).validate_layers(layers)
    if not layers:
        raise OptionError(f"at least one {what} layer is needed")
    if weights is None:
        weights = [1.0 / len(layers)] * len(layers)
    if len(weights) != len(layers):
        raise OptionError(f"{len(weights)} {what} layer weights given for {len(layers)} {what} layers")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise OptionError(f"{what} layer weights must be finite and non-negative, got {list(weights)}")
    return {layer: scale * weight for layer, weight in zip(layers, weights, strict=True)}


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
        revision: int = CURRENT_REVISION,
        tile_plan: Sequence[int | None] | None = None,
        session: EncoderSource | None = None,
        pixel_terms: Sequence[PixelTerm] = (),
    ) -> None:
        """``revision`` and ``tile_plan`` are given by a resumed run: its checkpoint's, so it computes as it began.
        ``session`` (a :class:`painterly.session.Session`) lends its loaded encoders and style targets.
        ``pixel_terms`` join every stage's objective besides the config's own (a video frame's temporal term,
        painterly.video.temporal); each judges the stage's image at the stage's size.  They are not part of the
        config, so a checkpoint does not keep them: a run given them is not resumable by ``painterly resume``."""
        config = _with_absolute_paths(config)
        #: pixel terms added to every stage's objective (see above)
        self.extra_pixel_terms = list(pixel_terms)
        #: the settings as given (paths made absolute): what the user chose, automatic values still unset
        self.config = config
        o = config
        self.content_source = _absolute(content)
        self.style_sources: list[ImageInput] = [
            _absolute(s) for s in ([styles] if isinstance(styles, (str, os.PathLike, Image.Image)) else styles)
        ]
        config.check_inputs(len(self.style_sources))
        if o.style_weight == AUTO and not recipe(revision).auto_style_weight:
            raise OptionError(f"style weight 'auto' is not part of run revision {revision}; give a number")
        #: the style weight this run uses: as given, or chosen from the pictures below when "auto" (until then the
        #: reference weight stands in, so the settings are checked before the pictures are read)
        self.style_weight: float = AUTO_REFERENCE_WEIGHT if o.style_weight == AUTO else float(o.style_weight)
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
        if o.style_weight == AUTO:
            self.style_weight = auto_style_weight(self.working_content, self.style_images, o.style_blend)
            log.info(f"style weight auto: {self.style_weight:.4g}")
            self._weigh_layers()  # at the chosen weight (positive, as the stand-in was: the checks above hold)
        self.mask_images = (
            None if o.style_masks is None else [_load(m, "style mask", o.max_pixels).rgb for m in o.style_masks]
        )
        self._check_masks_cover_something()
        for mask in self.mask_images or []:
            if abs(math.log(mask.width * self.content.rgb.height / (mask.height * self.content.rgb.width))) > 0.02:
                log.warning(f"a style mask is {mask.width}x{mask.height}, not the content's shape; it is stretched")
        layers = [*self.content_weights, *self.style_weights]
        #: where a session's earlier jobs' style targets are found (None: every target is made here)
        self.style_targets: EncoderTargets | None = None
        if session is None:
            spec = network(o.network)
            built = spec.build(spec.weights_from(o.weights), layers, pooling=o.pooling)
            self.encoder = SoftmaxSmoothedEncoder(built) if o.chosen_swag else built
        else:
            self.encoder, self.style_targets = session.encoder_for(
                o.weights, layers, o.pooling, self.device, network=o.network, swag=o.chosen_swag
            )
        self.encoder = self.encoder.to(self.device)
        # Decided once (measured on CPUs, painterly.engine.precision) and kept in the checkpoint and the trace: a
        # resumed run computes in the precision it began with.
        requested = o.mixed_precision
        if requested is None and self.device.type == "cpu" and not network(o.network).cpu_bfloat16_follows_probe:
            requested = False  # measured slower for this network, even where the probe says bfloat16 wins
        mixed_precision = resolve_mixed_precision(self.device, requested)
        self.encoder.compute_dtype = compute_dtype(mixed_precision)
        self.recipe = recipe(revision)
        # Exactly GramLoss (a subclass may form its Gram matrices its own way, in whatever dtype it is handed).
        if type(self.style_comparison) is GramLoss:
            if self.recipe.gram_gradient_in_compute_dtype:
                self.style_comparison.gradient_dtype = self.encoder.compute_dtype
            elif self.recipe.losses_take_low_precision:  # the forward too, no copies
                self.style_comparison.accepts_low_precision = True
        if self.device.type == "cpu":
            self.encoder = self.encoder.to(memory_format=torch.channels_last)
        network_shape = NetworkShape(self.encoder.computed_layers, self.encoder.max_stride, self.encoder.min_side,
                                     memory_factor=network(o.network).memory_factor)  # fmt: skip
        #: the stages and the decisions made once for all of them (painterly.plan.stages); a resumed run's tiling plan
        #: is its checkpoint's, so it tiles exactly the stages the interrupted one did, whatever memory is free now
        #: the device's free memory when the run was planned (a clip adds its own buffers to the plan's estimate)
        self.free_bytes = available_bytes(self.device)
        self.plan = make_plan(
            o, self.content.rgb.size, network_shape, content_layer_weights=self.content_weights,
            per_style_weights=self.per_style_weights, free_bytes=self.free_bytes,
            device_type=self.device.type, revision=revision, tile_plan=tile_plan, mixed_precision=mixed_precision,
            base_bytes=resident_bytes() if self.device.type == "cpu" else None,
        )  # fmt: skip
        self.settings = OptimizerSettings.of(o, history_size=self.plan.history_size)
        #: the settings with the automatic choices made (precision; L-BFGS history): what a checkpoint keeps
        self.resolved_config = config.replace(
            style_weight=self.style_weight,
            swag=o.chosen_swag,
            content_layers=o.chosen_content_layers,
            style_layers=o.chosen_style_layers,
            mixed_precision=mixed_precision,
            history_size=self.plan.history_size if o.optimizer == "lbfgs" else o.history_size,
        )

    @property
    def revision(self) -> int:
        return self.recipe.revision

    @property
    def sizes(self) -> list[int]:
        return self.plan.sizes

    @property
    def steps_per_stage(self) -> list[int]:
        return [stage.steps for stage in self.plan.stages]

    @property
    def tile_cores(self) -> list[int | None]:
        return self.plan.tile_plan

    def _validate(self) -> None:
        """What the config could not check alone: the layers' names and weights, that something is painted
        towards, and that a checkpoint can be written (and that its inputs are files)."""
        o = self.config
        self._weigh_layers()
        if not self._has_target():
            raise OptionError(
                "the content, style and Laplacian losses all have zero weight, so there is nothing to paint towards; "
                "give --content-weight or --style-weight (and their layer weights) a positive value"
            )
        if o.checkpoint is not None:
            check_writable(Path(o.checkpoint), "checkpoint")
            sources = [self.content_source, *self.style_sources, *(o.style_masks or [])]
            if any(isinstance(s, Image.Image) for s in sources) or isinstance(o.weights, WeightsObject):
                raise OptionError("checkpoints need image files and a weights file (or the default), not objects")

    def _weigh_layers(self) -> None:
        """Each loss layer's weight at :attr:`style_weight` (checking the layers' names and weights); weighed again
        once ``style_weight="auto"`` has chosen its number."""
        o = self.config
        count = len(self.style_sources)
        blend = list(o.style_blend) if o.style_blend is not None else [1.0] * count
        self.content_weights = _layer_weights(
            o.chosen_content_layers, o.content_layer_weights, "content", scale=o.content_weight, network_name=o.network
        )
        self.style_weights = _layer_weights(
            o.chosen_style_layers, o.style_layer_weights, "style", scale=self.style_weight, network_name=o.network
        )
        self.scales = list(o.per_style_scale) if o.per_style_scale is not None else [1.0] * count
        # Masked styles act in their own regions, so their blend weights are not shared out.
        self.per_style_weights = per_style_layer_weights(
            self.style_weights, blend, o.per_style_layers, normalize=o.style_masks is None
        )

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
        if any(isinstance(s, Image.Image) for s in sources) or isinstance(o.weights, WeightsObject):
            return None
        hashes = self.input_hashes
        return make_provenance(self.checkpoint_config(), hashes, weights_sha256(o.weights, hashes, o.network))

    @functools.cached_property
    def input_hashes(self) -> dict[str, str]:
        """sha256 of every input file (a checkpointed run has only files: :meth:`_validate` refuses objects), read
        once when the run starts: the checkpoint and the pictures' provenance share it."""
        sources = [self.content_source, *self.style_sources, *(self.config.style_masks or []), self.config.weights]
        if self.config.init not in ("content", "noise"):
            sources.append(self.config.init)
        paths = [os.fspath(s) for s in sources if isinstance(s, (str, os.PathLike))]
        return {path: file_sha256(path) for path in paths}

    def objective_at(self, stage_size: int) -> tuple[Objective | TiledObjective, Tensor]:
        """The objective of the stage whose long side is ``stage_size`` (one of :attr:`sizes`), and the content at
        that size (the shape of the stage's image).

        Tiled when the plan gives the stage a tile core, else one pass over the whole image; either is built as
        the run's recipe says (so a resumed older revision builds what it built).  Random choices while building
        targets (MRF patch sampling) draw from torch's global generator: :meth:`execute` seeds it per stage.
        """
        o = self.config
        content = pil_to_tensor(resize_long_side(self.working_content, stage_size)).to(self.device)
        styles = [
            pil_to_tensor(_resize_at_least(s, round(stage_size * o.style_scale * k), self.encoder.min_side))
            for s, k in zip(self.style_images, self.scales, strict=True)
        ]
        stage, recipe, margin = self.plan.stages[self.sizes.index(stage_size)], self.recipe, self.plan.margin
        core = stage.tile_core
        if core is not None:
            height, width = content.shape[-2:]
            gram_core = (
                gram_pass_core(self.encoder.computed_layers, width, height, core=core, margin=margin)
                if recipe.tiled_wide_gram_pass
                else core
            )
            tiled = TiledObjective.build(
                self.encoder, content=content, styles=[s.to(self.device) for s in styles],
                content_layer_weights=self.content_weights, style_layer_weights=stage.style_layer_weights,
                core=core, margin=margin, gram_core=gram_core, low_precision=recipe.tiled_wide_gram_pass,
                grid_step=grid_step(core, self.encoder.max_stride) if recipe.tiled_grid_positions else None,
                tv_weight=o.tv_weight, laplacian_weight=o.laplacian_weight,
                luminance_only=o.color_control == "luminance",
            )  # fmt: skip
            tiled.pixel_terms += self.extra_pixel_terms
            return tiled, content
        objective = Objective.build(
            self.encoder,
            content=content,
            styles=[s.to(self.device) for s in styles],
            content_loss=ContentLoss(accepts_low_precision=recipe.losses_take_low_precision),
            style_loss=self.style_comparison,
            content_layer_weights=self.content_weights,
            style_layer_weights=stage.style_layer_weights,
            style_blend=[1.0] * len(styles),  # folded into per_style_weights
            tv_weight=o.tv_weight,
            laplacian_weight=o.laplacian_weight,
            style_masks=None if self.mask_images is None else [resize_mask(m, content) for m in self.mask_images],
            luminance_only=o.color_control == "luminance",
            normalize_gradients=o.normalize_gradients,
            style_targets=self.style_targets,
        )
        objective.pixel_terms += self.extra_pixel_terms
        return objective, content

    def initial_image(self, content: Tensor) -> Tensor:
        """Where the first stage starts: the content, white noise around mid-grey (seeded), or the init image at
        ``content``'s size; grey when only luminance is optimised."""
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

    def next_start(self, image: Tensor, content: Tensor, previous_content: Tensor) -> Tensor:
        """Where a stage after the first starts: the previous result, upsampled (with the content's detail).

        ``previous_content`` is the content at the previous stage's size, the shape of ``image``.
        """
        height, width = content.shape[-2:]
        if not self.recipe.restore_detail or self.config.init != "content":
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
        # Keep freed blocks for the next evaluation instead of page-faulting them in afresh
        # (painterly.engine.allocator).
        with reuse_freed_memory(self.plan.keep_freed_memory):
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
        hashes = self.input_hashes if checkpoint_path is not None and resume_from is None else None
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

        sizes = tuple(stage.shape for stage in self.plan.stages)
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
            stream.emit(RunStarted(sizes, tuple(self.steps_per_stage), precision, resumed_at_step=step,
                                   provenance=self.provenance))  # fmt: skip
            for index in range(first_stage, len(self.sizes)):
                stage_size, stage_steps = self.sizes[index], self.steps_per_stage[index]
                # Random choices while building targets (MRF patch sampling) come from a generator seeded per
                # stage, so a resumed run rebuilds exactly the same objective; the caller's RNG is untouched.
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(o.seed * 1009 + index)
                    objective, content = self.objective_at(stage_size)
                height, width = content.shape[-2:]
                resuming_here = resume_from is not None and index == resume_from.stage
                if resuming_here:
                    assert resume_from is not None
                    state = resume_from.optimizer_state
                    start, first_step = state["current"].to(self.device), resume_from.stage_steps_done
                else:
                    state, first_step = None, 0
                    if image is None or previous_content is None:
                        start = self.initial_image(content)
                    else:
                        start = self.next_start(image, content, previous_content)
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
                        precision=precision, style_weight=self.style_weight,
                    )  # fmt: skip
                    stream.emit(record)

                periodic = o.checkpoint_every if checkpoint_path is not None else 0
                result = optimize(
                    objective, start, steps=stage_steps, settings=self.settings, on_step=report,
                    should_stop=stop, resume_state=state, first_step=first_step,
                    checkpoint_every=periodic,
                    on_checkpoint=functools.partial(save, index),
                    blowup_factor=BLOWUP_FACTOR if self.recipe.restart_on_blowup else None,
                    on_restart=functools.partial(_report_blowup, stage=index + 1, stream=stream),
                    halve_rate_on_repeated_blowup=self.recipe.halve_rate_on_repeated_blowup,
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
