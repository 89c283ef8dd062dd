"""The per-step record that feeds the progress bar, previews, traces and user callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image
from torch import Tensor

from painterly.io.images import tensor_to_pil

__all__ = ["StepRecord"]


@dataclass(frozen=True)
class StepRecord:
    """What happened in one optimiser step; feeds the progress bar, previews and traces."""

    step: int  #: 1-based, counted across all stages
    total_steps: int
    stage: int  #: 1-based
    stages: int
    size: tuple[int, int]  #: (width, height) of this stage
    #: "content", "style", "tv", "laplacian" (weighted, when on) and "total". Coarse stages leave the finest style
    #: layers out (theory.md §8.3), so "style" sums fewer layers there and steps up when the last stage begins.
    losses: dict[str, float]
    elapsed: float  #: seconds since the optimisation began
    image: Tensor = field(repr=False)  #: current image, 1 x 3 x H x W in [0, 1]; do not modify
    evaluations: int = 1  #: objective evaluations this step (L-BFGS line search makes several)
    precision: str = "float32"  #: what the network computes in: "float32" or "bfloat16" (mixed precision)
    #: the style weight the run uses: as given, or the number "auto" chose (painterly.plan.balance); None where a
    #: record is not made by a stylize run
    style_weight: float | None = None

    def to_pil(self) -> Image.Image:
        return tensor_to_pil(self.image)
