"""The total objective: weighted content, style and smoothness terms over one encoder pass.

Targets are computed once in :meth:`Objective.build`; each evaluation then runs
the encoder once on the image and sums the terms (theory.md §5):

.. math:: L(x) = \\alpha \\sum_l w^c_l L^c_l(x) + \\beta \\sum_s b_s \\sum_l w^s_l L^s_l(x) + \\gamma\\,\\mathrm{TV}(x)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from painterly.encoder import VGGEncoder
from painterly.losses import LayerLoss, total_variation

__all__ = ["Objective", "Term"]


@dataclass
class Term:
    """One weighted comparison at one layer: ``weight * loss(features[layer], target)``."""

    kind: str  # "content" or "style": the bucket it is reported under
    layer: str
    weight: float
    loss: LayerLoss
    target: Tensor


class Objective:
    """Callable ``image -> (total, {"content": .., "style": .., "tv": ..})``."""

    def __init__(self, encoder: VGGEncoder, terms: Sequence[Term], tv_weight: float = 0.0) -> None:
        self.encoder = encoder
        self.terms = list(terms)
        self.tv_weight = tv_weight

    @classmethod
    def build(
        cls,
        encoder: VGGEncoder,
        *,
        content: Tensor,
        styles: Sequence[Tensor],
        content_loss: LayerLoss,
        style_loss: LayerLoss,
        content_layer_weights: dict[str, float],
        style_layer_weights: dict[str, float],
        style_blend: Sequence[float],
        tv_weight: float,
    ) -> Objective:
        """Encode the content once and each style once and keep only their target representations."""
        terms: list[Term] = []
        with torch.no_grad():
            content_features = encoder(content)
            for layer, weight in content_layer_weights.items():
                if weight:
                    terms.append(
                        Term("content", layer, weight, content_loss, content_loss.prepare(content_features[layer]))
                    )
            del content_features
            for style, blend in zip(styles, style_blend, strict=True):
                style_features = encoder(style)
                for layer, weight in style_layer_weights.items():
                    if weight * blend:
                        target = style_loss.prepare(style_features[layer])
                        terms.append(Term("style", layer, weight * blend, style_loss, target))
                del style_features
        return cls(encoder, terms, tv_weight)

    def __call__(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        features = self.encoder(image)
        parts: dict[str, Tensor] = {}
        for term in self.terms:
            value = term.weight * term.loss(features[term.layer], term.target)
            parts[term.kind] = parts[term.kind] + value if term.kind in parts else value
        if self.tv_weight:
            parts["tv"] = self.tv_weight * total_variation(image)
        total = torch.stack(list(parts.values())).sum()
        return total, parts
