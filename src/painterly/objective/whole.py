"""The total objective: weighted content, style and smoothness terms over one encoder pass.

Targets are computed once in :meth:`Objective.build`; each evaluation then runs
the encoder once on the image and sums the terms (theory.md §5):

.. math:: L(x) = \\alpha \\sum_l w^c_l L^c_l(x) + \\beta \\sum_s b_s \\sum_l w^s_l L^s_l(x) + \\gamma\\,\\mathrm{TV}(x)
          + \\lambda \\operatorname{mean}(D(x) - D(c))^2

where :math:`D` is :func:`painterly.losses.core.laplacian` (theory.md §6).  The feature terms are
:class:`Term` objects and the pixel terms (TV, Laplacian) :class:`PixelTerm` objects;
:class:`painterly.objective.tiled.TiledObjective` evaluates the same two kinds of list window by window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from painterly.control.spatial import mask_for_layer
from painterly.errors import OptionError
from painterly.losses.core import (
    GuidedGramLoss,
    LaplacianLoss,
    LayerLoss,
    PixelLoss,
    TotalVariationLoss,
    is_low_precision,
)
from painterly.nets.base import Encoder
from painterly.objective.targets import EncoderTargets

__all__ = ["NormalizeGradient", "Objective", "PixelTerm", "Term", "make_pixel_terms"]


class NormalizeGradient(torch.autograd.Function):
    r"""Identity forward; backward divides the incoming gradient by its L1 norm: :math:`g / (\|g\|_1 + \epsilon)`."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, features: Tensor) -> Tensor:
        return features.view_as(features)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        return grad / (grad.abs().sum() + 1e-8)


@dataclass
class Term:
    """One weighted comparison at one layer: ``weight * loss(features[layer], target)``."""

    kind: str  # "content" or "style": the bucket it is reported under
    layer: str
    weight: float
    loss: LayerLoss
    target: Tensor


@dataclass
class PixelTerm:
    """One weighted loss on the image's pixels, reported under its loss's name (``"tv"``, ``"laplacian"``)."""

    weight: float
    loss: PixelLoss

    def __call__(self, image: Tensor) -> Tensor:
        return self.weight * self.loss(image)


def make_pixel_terms(content: Tensor, tv_weight: float, laplacian_weight: float) -> list[PixelTerm]:
    """A stage's total-variation and Laplacian terms (theory.md §4, §6), for either evaluator; weight 0: no term."""
    terms = []
    if tv_weight:
        terms.append(PixelTerm(tv_weight, TotalVariationLoss()))
    if laplacian_weight:
        terms.append(PixelTerm(laplacian_weight, LaplacianLoss(content)))
    return terms


class Objective:
    """Callable ``image -> (total, {"content": .., "style": .., "tv": .., "laplacian": ..})``."""

    def __init__(self, encoder: Encoder, terms: Sequence[Term], pixel_terms: Sequence[PixelTerm] = ()) -> None:
        self.encoder = encoder
        self.terms = list(terms)
        self.pixel_terms = list(pixel_terms)
        self.luminance_only = False  # see build()
        self.normalize_gradients = False  # see build()

    @classmethod
    def build(
        cls,
        encoder: Encoder,
        *,
        content: Tensor,
        styles: Sequence[Tensor],
        content_loss: LayerLoss,
        style_loss: LayerLoss,
        content_layer_weights: dict[str, float],
        style_layer_weights: dict[str, float] | Sequence[dict[str, float]],
        style_blend: Sequence[float],
        tv_weight: float,
        laplacian_weight: float = 0.0,
        style_masks: Sequence[Tensor | None] | None = None,
        luminance_only: bool = False,
        normalize_gradients: bool = False,
        style_targets: EncoderTargets | None = None,
    ) -> Objective:
        """Encode the content once and each style once and keep only their target representations.

        ``style_layer_weights`` is one ``{layer: weight}`` for all styles or one per style.
        ``style_masks`` (spatial control) gives each style an optional 1 x 1 x H x W mask at the content's
        size; a masked style's terms compare Gram matrices over its region only
        (:class:`~painterly.losses.core.GuidedGramLoss`), and a layer where the mask is empty gets no term.
        With ``luminance_only`` the image is judged by its grey component (channel mean) only, so its
        gradient is grey and a grey start stays grey (luminance-only transfer, painterly.control.color).
        With ``normalize_gradients`` each term's gradient w.r.t. its layer's features is divided by its
        L1 norm (:class:`NormalizeGradient`), so every layer pushes with the same strength whatever its
        loss's scale (Johnson's ``-normalize_gradients``; theory.md).
        ``style_targets`` (a session's cache, painterly.objective.targets) gives a style's targets an earlier job made.
        """
        terms: list[Term] = []
        with torch.no_grad():
            content_features = encoder(content)
            for layer, weight in content_layer_weights.items():
                if weight:
                    terms.append(
                        Term("content", layer, weight, content_loss, content_loss.prepare(content_features[layer]))
                    )
            del content_features
            per_style = (
                [style_layer_weights] * len(styles)
                if isinstance(style_layer_weights, dict)
                else list(style_layer_weights)
            )
            masks = list(style_masks) if style_masks is not None else [None] * len(styles)
            for style, blend, layer_weights, mask in zip(styles, style_blend, per_style, masks, strict=True):
                losses: dict[str, LayerLoss] = {}  # the layers this style is compared at, with their losses
                for layer, weight in layer_weights.items():
                    loss = style_loss
                    if mask is not None:
                        layer_mask = mask_for_layer(mask, layer, encoder.computed_layers)
                        if float(layer_mask.pow(2).sum()) < 1e-12:
                            continue  # the region vanished at this resolution: nothing to compare
                        loss = GuidedGramLoss(layer_mask)
                    if weight * blend:
                        losses[layer] = loss
                if not losses:
                    continue

                def encode(style: Tensor = style, losses: dict[str, LayerLoss] = losses) -> dict[str, Tensor]:
                    features = encoder(style)
                    return {layer: loss.prepare(features[layer]) for layer, loss in losses.items()}

                targets = encode() if style_targets is None else style_targets.of(style, losses, encode)
                terms += [Term("style", layer, layer_weights[layer] * blend, loss, targets[layer])
                          for layer, loss in losses.items()]  # fmt: skip
        if not terms and not tv_weight and not laplacian_weight:
            height, width = content.shape[-2:]
            raise OptionError(
                f"at {width}x{height} px no loss has anything to compare (the content weight is 0 and every style "
                "mask vanishes at this size); use larger mask regions, a positive content weight or --start-size none"
            )
        objective = cls(encoder, terms, make_pixel_terms(content, tv_weight, laplacian_weight))
        objective.luminance_only = luminance_only
        objective.normalize_gradients = normalize_gradients
        return objective

    def __call__(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        if self.luminance_only:
            image = image.mean(1, keepdim=True).expand_as(image)
        features = self.encoder(image, in_compute_dtype=True)
        float_copies: dict[str, Tensor] = {}  # one float32 copy per layer, for the losses that need it
        parts: dict[str, Tensor] = {}
        for term in self.terms:
            layer_features = features[term.layer]
            # Gradient normalisation sums a layer's gradient: in float32 (the losses then get float32 features).
            needs_float = self.normalize_gradients or not term.loss.accepts_low_precision
            if needs_float and is_low_precision(layer_features.dtype):
                if term.layer not in float_copies:
                    float_copies[term.layer] = layer_features.float()
                layer_features = float_copies[term.layer]
            if self.normalize_gradients:
                layer_features = NormalizeGradient.apply(layer_features)
            value = term.weight * term.loss(layer_features, term.target)
            parts[term.kind] = parts[term.kind] + value if term.kind in parts else value
        for pixel_term in self.pixel_terms:
            parts[pixel_term.loss.name] = pixel_term(image)
        total = torch.stack(list(parts.values())).sum()
        return total, parts
