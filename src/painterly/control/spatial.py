"""Spatial and scale control (Gatys, Ecker, Bethge, Hertzmann & Shechtman 2017, §4 and §6).

* Spatial control: one grayscale mask per style says where in the content that style goes
  (white = there).  Each mask is resized to every stage's content size and carried down to each
  layer's resolution by :func:`mask_for_layer`; the style's Gram matrices are then taken over the
  masked region only (:class:`painterly.losses.core.GuidedGramLoss`).  Where no mask is white, no style
  term acts and only the content (and smoothness) terms shape the image.
* Scale control: per-style layer sets (:func:`per_style_layer_weights`) let one style supply the
  fine scale (low layers) and another the coarse scale (high layers); per-style sizes are handled
  in :func:`painterly.stylize` (``per_style_scale``).

Colour control lives in :mod:`painterly.control.color`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from painterly.errors import OptionError
from painterly.io.images import pil_to_tensor
from painterly.nets.base import LayerInfo

__all__ = ["mask_for_layer", "parse_layer_set", "per_style_layer_weights", "resize_mask"]


def mask_for_layer(mask: Tensor, layer: str, layers: Sequence[LayerInfo]) -> Tensor:
    """Carry an image-resolution ``mask`` (1 x 1 x H x W) down to ``layer``'s resolution.

    ``layers`` are the encoder's layers in forward order (:attr:`~painterly.nets.base.Encoder.computed_layers`).
    Every window operation that changes the feature map's side on the way to ``layer``
    (:attr:`~painterly.nets.base.LayerInfo.resampling`: VGG's 2 x 2 poolings, a strided convolution) is applied to
    the mask as an average over the same windows, padding left out of the average: the result has exactly the
    layer's shape, and each value is the mask's mean over what that position's window covers (for VGG, the pooled
    block: the paper's simple down-sampling of guidance channels).
    """
    info = next((info for info in layers if info.name == layer), None)
    if info is None:
        raise ValueError(f"{layer} is not among the encoder's layers ({', '.join(info.name for info in layers)})")
    for window in info.resampling:
        mask = F.avg_pool2d(mask, window.kernel, window.stride, window.padding, ceil_mode=window.ceil_mode,
                            count_include_pad=False)  # fmt: skip
    return mask


def resize_mask(mask: Image.Image, like: Tensor) -> Tensor:
    """A mask image as a 1 x 1 x H x W tensor in [0, 1] (white = 1) with the size and device of ``like``."""
    resized = mask.convert("L").resize((like.shape[-1], like.shape[-2]), Image.Resampling.LANCZOS)
    return pil_to_tensor(resized)[:, :1].to(like.device)


def parse_layer_set(text: str | Sequence[str], style_layers: Sequence[str]) -> list[str]:
    """Layers of one style's set: ``"relu1_1,relu2_1"`` (or a list of names), or ``"all"``.

    Every layer must be one of ``style_layers``: the set only chooses which of them this style feeds.
    """
    names = [part.strip() for part in text.split(",")] if isinstance(text, str) else list(text)
    names = [name for name in names if name]
    if names == ["all"]:
        return list(style_layers)
    outside = [name for name in names if name not in style_layers]
    if outside:
        raise OptionError(
            f"style layer set names {', '.join(outside)}, which is not among the style layers "
            f"({', '.join(style_layers)}); add it to --style-layers or remove it from the set"
        )
    if not names:
        raise OptionError("a style layer set is empty; name at least one layer, or 'all'")
    return names


def per_style_layer_weights(
    layer_weights: dict[str, float],
    blend: Sequence[float],
    layer_sets: Sequence[str | Sequence[str]] | None = None,
    *,
    normalize: bool = True,
) -> list[dict[str, float]]:
    """``{layer: weight}`` for each style, with the style's blend weight folded in.

    Without ``layer_sets`` every style feeds every layer.  With ``normalize`` the blend weights of
    the styles that feed a layer are divided by their sum at that layer, so a layer fed by one
    style gets its full weight (with no sets this is the usual blend normalised to sum one).
    Without ``normalize`` (spatial masks: each style acts in its own region) the blend weights
    are used as given.
    """
    if layer_sets is not None and len(layer_sets) != len(blend):
        raise OptionError(f"{len(layer_sets)} style layer sets given for {len(blend)} style images")
    layers = list(layer_weights)
    chosen = layer_sets if layer_sets is not None else ["all"] * len(blend)
    sets = [set(parse_layer_set(s, layers)) for s in chosen]
    result: list[dict[str, float]] = [{} for _ in blend]
    for layer, weight in layer_weights.items():
        users = [index for index, used in enumerate(sets) if layer in used]
        total = sum(blend[index] for index in users)
        for index in users:
            share = blend[index] / total if normalize and total > 0 else blend[index]
            result[index][layer] = weight * share
    return result
