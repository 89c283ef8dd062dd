"""``stylize()``: the product.  Everything else (CLI, benchmarks) is a thin layer over it.

The image is optimised coarse-to-fine: first at ``start_size`` pixels on the
long side, then upsampled by about sqrt(2) per stage until ``size``.  Each stage
starts from the previous result, so most of the work happens where it is cheap;
because Gram matrices and content losses are size-normalised, the same weights
mean the same thing at every stage.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from painterly.color import ColorControl, gray_to_rgb, luminance, prepare_color_inputs, restore_colors
from painterly.control import per_style_layer_weights, resize_mask
from painterly.encoder import Pooling, VGGEncoder, validate_layers
from painterly.engine import optimize
from painterly.errors import OptionError
from painterly.images import DEFAULT_MAX_PIXELS, LoadedImage, load_image, pil_to_tensor, resize_long_side, tensor_to_pil
from painterly.losses import ContentLoss, make_style_loss
from painterly.objective import Objective
from painterly.optim import OptimizerName
from painterly.progress import WorkProgress
from painterly.records import StepRecord
from painterly.weights import VGGWeights, default_weights, load_weights

__all__ = [
    "DEFAULT_CONTENT_LAYERS",
    "DEFAULT_STYLE_LAYERS",
    "ImageInput",
    "StepRecord",
    "pyramid_sizes",
    "resolve_device",
    "split_iterations",
    "stylize",
]

log = logging.getLogger("painterly")

ImageInput = str | os.PathLike[str] | Image.Image
DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


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
    count = max(1, math.ceil(math.log(size / start_size, factor) - 1e-9))
    return [round(size / factor ** (count - index)) for index in range(count)] + [size]


def split_iterations(total: int, stages: int) -> list[int]:
    """Share ``total`` steps so each stage gets half the previous one's.

    Each sqrt(2) stage doubles the pixels and so the cost per step: halving the
    steps gives every stage about the same wall time, most steps where they are cheap.
    """
    shares = [0.5**index for index in range(stages)]
    counts = [max(1, math.floor(total * share / sum(shares))) for share in shares]
    counts[0] = max(1, counts[0] + total - sum(counts))  # every stage runs at least once
    return counts


def _load(source: ImageInput, role: str, max_pixels: int) -> LoadedImage:
    if isinstance(source, Image.Image):
        image = source
        alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
        return LoadedImage(rgb=image.convert("RGB"), alpha=alpha, path=None, notes=[])
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


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise OptionError(f"{name} must be {'non-negative' if allow_zero else 'positive'} and finite, not {value}")


def _initial_image(init: str, content: Tensor, generator: torch.Generator, max_pixels: int) -> Tensor:
    if init == "content":
        return content.clone()
    if init == "noise":
        # White noise around mid-grey (the paper starts from white noise).
        noise = torch.randn(content.shape, generator=generator, dtype=content.dtype)
        return (0.5 + 0.25 * noise.to(content.device)).clamp(0, 1)
    picture = load_image(init, max_pixels=max_pixels, role="init image").rgb
    return pil_to_tensor(picture.resize((content.shape[-1], content.shape[-2]), Image.Resampling.LANCZOS)).to(content)


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


def _upsample(image: Tensor, height: int, width: int) -> Tensor:
    return F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def stylize(
    content: ImageInput,
    styles: ImageInput | Sequence[ImageInput],
    *,
    size: int = 512,
    start_size: int | None = 256,
    iterations: int = 400,
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
    pooling: Pooling = "max",
    seed: int = 0,
    device: str = "auto",
    weights: str | os.PathLike[str] | VGGWeights | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = False,
    on_step: Callable[[StepRecord], None] | None = None,
) -> Image.Image:
    """Paint ``content`` in the style of ``styles`` (Gatys, Ecker & Bethge 2015).

    Args:
        content: the photo (or sketch) whose layout is kept: a path or a PIL image.
        styles: one or more artworks whose style is transferred.
        size: long side of the result in pixels.
        start_size: long side of the first coarse-to-fine stage; stages grow by sqrt(2) up to size.
            None (or a value >= size) optimises at the final size only, as in the paper.
        iterations: optimiser steps in total over all stages; each stage gets half the steps of the
            previous one, so every stage takes about the same time.
        style_weight: weight of the style (Gram) loss relative to the content loss; higher = more style.
        content_weight: weight of the content loss.
        tv_weight: weight of the total-variation smoothness term (0 = off); ~1 removes fine noise.
        laplacian_weight: weight of the Laplacian loss (Li et al. 2017) that keeps the content's edges and
            fine structure (0 = off); try ~100.
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
        optimizer: "lbfgs" (fast convergence, the paper's choice) or "adam".
        learning_rate: step size; default 1.0 for lbfgs, 0.02 for adam.
        pooling: "max" (standard VGG) or "avg" (the paper's suggestion; smoother gradients).
        seed: random seed for the noise initialisation and any random choice.
        device: "auto", "cpu", "cuda" or "mps".
        weights: VGG-19 weights file (default: the cached Caffe VGG-19, fetched on first use).
        max_pixels: refuse input images with more pixels than this (decompression-bomb guard).
        progress: show a progress bar with losses and ETA on stderr.
        on_step: called with a StepRecord after every optimiser step.

    Returns:
        The stylized image (RGB; RGBA when the content had transparency, with the content's alpha).
    """
    style_list: list[ImageInput] = [styles] if isinstance(styles, (str, os.PathLike, Image.Image)) else list(styles)
    if not style_list:
        raise OptionError("at least one style image is needed")
    if isinstance(size, bool) or size < 16:
        raise OptionError(f"size must be at least 16 pixels, not {size}")
    if start_size is not None and start_size < 16:
        raise OptionError(f"start size must be at least 16 pixels, not {start_size}")
    if iterations < 1:
        raise OptionError(f"iterations must be at least 1, not {iterations}")
    for name, value in (
        ("style weight", style_weight),
        ("content weight", content_weight),
        ("tv weight", tv_weight),
        ("laplacian weight", laplacian_weight),
    ):
        _check_positive(name, value, allow_zero=True)
    _check_positive("style scale", style_scale)
    blend = list(style_blend) if style_blend is not None else [1.0] * len(style_list)
    if len(blend) != len(style_list):
        raise OptionError(f"{len(blend)} blend weights given for {len(style_list)} style images")
    if any(not math.isfinite(b) or b < 0 for b in blend) or sum(blend) <= 0:
        raise OptionError(f"style blend weights must be non-negative with a positive sum, got {blend}")
    content_weights = _layer_weights(content_layers, content_layer_weights, "content", scale=content_weight)
    style_weights = _layer_weights(style_layers, style_layer_weights, "style", scale=style_weight)
    scales = list(style_scales) if style_scales is not None else [1.0] * len(style_list)
    if len(scales) != len(style_list):
        raise OptionError(f"{len(scales)} style scales given for {len(style_list)} style images")
    for value in scales:
        _check_positive("each style scale", value)
    if style_masks is not None and len(style_masks) != len(style_list):
        raise OptionError(f"{len(style_masks)} style masks given for {len(style_list)} style images")
    if style_masks is not None and style_loss != "gram":
        raise OptionError(f"style masks work with the gram style loss only, not {style_loss!r}")
    # Masked styles act in their own regions, so their blend weights are not shared out.
    per_style_weights = per_style_layer_weights(style_weights, blend, style_layer_sets, normalize=style_masks is None)
    if init not in ("content", "noise") and not Path(init).exists():
        raise OptionError(f"init must be 'content', 'noise' or an existing image file, not {init!r}")

    style_comparison = make_style_loss(style_loss)
    target_device = resolve_device(device)
    content_image = _load(content, "content image", max_pixels)
    loaded_styles = [_load(s, "style image", max_pixels) for s in style_list]
    for note in [*content_image.notes, *(n for s in loaded_styles for n in s.notes)]:
        log.warning(note)
    style_images = [s.rgb for s in loaded_styles]
    working_content, style_images = prepare_color_inputs(content_image.rgb, style_images, color_control)
    mask_images = None if style_masks is None else [_load(m, "style mask", max_pixels).rgb for m in style_masks]
    for mask in mask_images or []:
        if abs(math.log(mask.width * content_image.rgb.height / (mask.height * content_image.rgb.width))) > 0.02:
            log.warning(f"a style mask is {mask.width}x{mask.height}, not the content's shape; it is stretched to fit")
    vgg = weights if isinstance(weights, VGGWeights) else (load_weights(weights) if weights else default_weights())
    encoder = VGGEncoder(vgg, [*content_weights, *style_weights], pooling=pooling).to(target_device)
    if target_device.type == "cpu":
        encoder = encoder.to(memory_format=torch.channels_last)

    sizes = _feasible_sizes(pyramid_sizes(size, start_size), content_image.rgb.size, encoder.min_side)
    steps_per_stage = split_iterations(iterations, len(sizes))
    total_steps = sum(steps_per_stage)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    plan = [
        (steps, s * _short_side(content_image.rgb.size, s)) for steps, s in zip(steps_per_stage, sizes, strict=True)
    ]
    bar = WorkProgress(plan) if progress else None
    started = time.perf_counter()
    step = 0
    image: Tensor | None = None
    try:
        for stage, (stage_size, stage_steps) in enumerate(zip(sizes, steps_per_stage, strict=True), start=1):
            content_tensor = pil_to_tensor(resize_long_side(working_content, stage_size)).to(target_device)
            style_tensors = [
                pil_to_tensor(_resize_at_least(s, round(stage_size * style_scale * k), encoder.min_side)).to(
                    target_device
                )
                for s, k in zip(style_images, scales, strict=True)
            ]
            objective = Objective.build(
                encoder,
                content=content_tensor,
                styles=style_tensors,
                content_loss=ContentLoss(),
                style_loss=style_comparison,
                content_layer_weights=content_weights,
                style_layer_weights=per_style_weights,
                style_blend=[1.0] * len(style_tensors),  # folded into per_style_weights
                tv_weight=tv_weight,
                laplacian_weight=laplacian_weight,
                style_masks=None if mask_images is None else [resize_mask(m, content_tensor) for m in mask_images],
            )
            height, width = content_tensor.shape[-2:]
            if image is None:
                start = _initial_image(init, content_tensor, generator, max_pixels)
                if color_control == "luminance":  # the whole optimisation runs on grey images
                    start = gray_to_rgb(luminance(start))
            else:
                start = _upsample(image, height, width)

            def report(current: Tensor, losses: dict[str, float], stage: int = stage, size=(width, height)) -> None:
                nonlocal step
                step += 1
                record = StepRecord(
                    step=step,
                    total_steps=total_steps,
                    stage=stage,
                    stages=len(sizes),
                    size=size,
                    losses=losses,
                    elapsed=time.perf_counter() - started,
                    image=current,
                )
                if bar is not None:
                    bar.update(record)
                if on_step is not None:
                    on_step(record)

            image = optimize(
                objective, start, steps=stage_steps, optimizer=optimizer, learning_rate=learning_rate, on_step=report
            )
            del objective
    finally:
        if bar is not None:
            bar.close()
    assert image is not None
    if color_control in ("luminance", "original-colors"):  # the result's luminance, the content's colours
        original = pil_to_tensor(resize_long_side(content_image.rgb, sizes[-1])).to(image)
        image = restore_colors(image, original, color_control)
    result = tensor_to_pil(image)
    if content_image.alpha is not None:
        result.putalpha(content_image.alpha.resize(result.size, Image.Resampling.LANCZOS))
    return result
