"""A fixed quality scorer, independent of any run's own settings.

Content score: mean squared error of normalised VGG-19 ``relu4_2`` features
against the content photo.  Style score: mean over ``relu1_1 … relu5_1`` of the
Gram-matrix MSE against the artwork.  Both at the image's own size, the style
image resized to the same long side.  Lower is better for both; two images are
only comparable when scored against the same pair at the same size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from painterly.io.images import load_image, pil_to_tensor, resize_long_side
from painterly.losses.core import gram_matrix
from painterly.nets.encoder import VGGEncoder
from painterly.nets.registry import default_weights

__all__ = ["Score", "Scorer"]

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class Score:
    content: float
    style: float

    def beats(self, other: Score) -> bool:
        return self.content <= other.content and self.style <= other.style


class Scorer:
    def __init__(self, content: Path, style: Path) -> None:
        self.encoder = VGGEncoder(default_weights(), [CONTENT_LAYER, *STYLE_LAYERS])
        self.content = load_image(content).rgb
        self.style = load_image(style).rgb
        self._targets: dict[tuple[int, int], tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}

    def _targets_for(self, size: tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if size not in self._targets:
            with torch.no_grad():
                content = self.encoder(pil_to_tensor(self.content.resize(size, Image.Resampling.LANCZOS)))
                style = self.encoder(pil_to_tensor(resize_long_side(self.style, max(size))))
            self._targets[size] = (content[CONTENT_LAYER], {k: gram_matrix(style[k]) for k in STYLE_LAYERS})
        return self._targets[size]

    def score(self, image: Image.Image) -> Score:
        content_target, grams = self._targets_for(image.size)
        with torch.no_grad():
            features = self.encoder(pil_to_tensor(image.convert("RGB")))
            content = float((features[CONTENT_LAYER] - content_target).pow(2).mean())
            style = sum(float((gram_matrix(features[k]) - grams[k]).pow(2).mean()) for k in STYLE_LAYERS)
        return Score(content=content, style=style / len(STYLE_LAYERS))
