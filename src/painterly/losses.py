"""Losses on encoder features, under one small interface.

Each :class:`LayerLoss` compares one layer's features ``F`` (shape B x C x H x W)
with a *target representation* computed once from the target image's features
(``prepare``), so the style's Gram matrices are never recomputed during the
optimisation.  The mathematics is written down in ``docs/theory.md``; every
function here names the section it implements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

__all__ = [
    "ContentLoss",
    "GramLoss",
    "GuidedGramLoss",
    "LayerLoss",
    "gram_difference",
    "gram_matrix",
    "guided_gram_matrix",
    "is_low_precision",
    "laplacian",
    "times_features",
    "total_variation",
]


def is_low_precision(dtype: torch.dtype) -> bool:
    """Whether ``dtype`` is narrower than float32 (bfloat16, float16): what mixed precision computes features in."""
    return torch.finfo(dtype).bits < 32


def gram_matrix(features: Tensor) -> Tensor:
    r"""Size-normalised Gram matrix :math:`G = F F^\top / (H W)` per batch item (theory.md §3).

    Dividing by the number of positions ``H W`` makes ``G`` an average over the
    image, so the same style weight means the same thing at every image size.
    """
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return torch.bmm(flat, flat.transpose(1, 2)) / (height * width)


def guided_gram_matrix(features: Tensor, mask: Tensor) -> Tensor:
    r"""Gram matrix over a weighted region (Gatys et al. 2017, §4): :math:`G = (F m)(F m)^\top / \sum m^2`.

    ``mask`` (1 x 1 x H x W, values in [0, 1]) has the features' spatial size.  Normalising by
    :math:`\sum m^2` makes ``G`` the average over the region, so a binary mask gives exactly the
    :func:`gram_matrix` of the positions it selects and style weights mean the same as without masks.
    """
    batch, channels, height, width = features.shape
    weights = mask.reshape(1, 1, height * width)
    flat = features.reshape(batch, channels, height * width) * weights
    return torch.bmm(flat, flat.transpose(1, 2)) / weights.pow(2).sum()


def total_variation(image: Tensor) -> Tensor:
    r"""Squared total variation, averaged over pixels (theory.md §4).

    :math:`\mathrm{TV}(x) = \operatorname{mean}(\Delta_h x)^2 + \operatorname{mean}(\Delta_v x)^2`.
    """
    dh = image[..., :, 1:] - image[..., :, :-1]
    dv = image[..., 1:, :] - image[..., :-1, :]
    return dh.pow(2).mean() + dv.pow(2).mean()


#: 4-neighbour Laplacian stencil (theory.md §6).
LAPLACIAN_KERNEL = ((0.0, -1.0, 0.0), (-1.0, 4.0, -1.0), (0.0, -1.0, 0.0))


def laplacian(image: Tensor, pool: int = 4) -> Tensor:
    r"""Laplacian of the ``pool`` x ``pool`` average-pooled image, per channel (theory.md §6).

    :math:`D(x) = \Delta * P_p(x)`, the pooled image edge-padded by one pixel so the
    output keeps the pooled size (Li et al. 2017 use :math:`p = 4`).
    """
    channels = image.shape[1]
    pool = max(1, min(pool, *image.shape[-2:]))
    pooled = torch.nn.functional.avg_pool2d(image, pool)
    kernel = torch.tensor(LAPLACIAN_KERNEL, dtype=image.dtype, device=image.device)
    padded = torch.nn.functional.pad(pooled, (1, 1, 1, 1), mode="replicate")
    return torch.nn.functional.conv2d(padded, kernel.expand(channels, 1, 3, 3), groups=channels)


class LayerLoss(ABC):
    """A comparison of one layer's features against a precomputed target.

    Subclasses implement ``prepare`` (target features -> representation, run once)
    and ``__call__`` (current features, representation -> scalar loss, run every
    step).  A new style loss is one small subclass.
    """

    #: Name used by ``--style-loss`` and in reports.
    name: ClassVar[str]
    #: Whether ``__call__`` takes features in the encoder's lower compute precision (bfloat16) as they are.
    #: Otherwise :class:`~painterly.objective.Objective` hands it a float32 copy.
    accepts_low_precision: bool = False

    @abstractmethod
    def prepare(self, target_features: Tensor) -> Tensor:
        """Compute the target representation once, detached from any graph."""

    @abstractmethod
    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        """Return the scalar loss of ``features`` against ``target``."""


class ContentLoss(LayerLoss):
    r"""Mean squared error of feature maps (theory.md §2): :math:`\operatorname{mean}(F - P)^2`."""

    name = "mse"

    def __init__(self, *, accepts_low_precision: bool = False) -> None:
        #: Take bfloat16 features as they come (revision 3): they are subtracted from the float32 target in
        #: float32, as a float32 copy would be, and the gradient goes back in their dtype (:class:`_FeatureMSE`),
        #: with no copy on the way in and no cast node on the way back.
        self.accepts_low_precision = accepts_low_precision

    def prepare(self, target_features: Tensor) -> Tensor:
        return target_features.detach()

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        if is_low_precision(features.dtype):
            return _FeatureMSE.apply(features, target)
        return torch.nn.functional.mse_loss(features, target.expand_as(features))


class _FeatureMSE(torch.autograd.Function):
    r"""``mean((F - P)²)`` in float32 for features of any precision; gradient :math:`2 (F - P) / N` in ``F``'s dtype."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, features: Tensor, target: Tensor) -> Tensor:
        difference = features.to(target.dtype) - target  # broadcasts a target of batch 1 over the features' batch
        ctx.save_for_backward(difference)
        ctx.dtype = features.dtype  # type: ignore[attr-defined]
        return difference.pow(2).mean()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
        (difference,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return (difference * (2.0 * grad / difference.numel())).to(ctx.dtype), None  # type: ignore[attr-defined]


class GramLoss(LayerLoss):
    r"""Gatys et al.'s style loss (theory.md §3): :math:`\operatorname{mean}(G(F) - G(S))^2`.

    The mean runs over the :math:`C^2` entries, i.e. the paper's
    :math:`\frac{1}{4 N_l^2 M_l^2}\sum (G - A)^2` times 4 with ``G`` normalised by :math:`M_l`.
    """

    name = "gram"

    def __init__(self, gradient_dtype: torch.dtype | None = None, *, accepts_low_precision: bool = False) -> None:
        #: Precision of the backward product (None: the features' own).  Mixed-precision runs of revision 2 set the
        #: encoder's compute dtype: the gradient is rounded to it by the convolutions' backward anyway, so only
        #: the difference matrix is rounded in addition, and the product runs about 4x faster (theory.md §7).
        self.gradient_dtype = gradient_dtype
        #: Take bfloat16 features as they come (revision 3): the Gram difference is then formed inside one
        #: bfloat16 product with float32 accumulation (:func:`gram_difference`), and no float32 copy of the
        #: features is ever made (theory.md §7).
        self.accepts_low_precision = accepts_low_precision

    def prepare(self, target_features: Tensor) -> Tensor:
        return gram_matrix(target_features.detach()).mean(0, keepdim=True)

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        return _GramMSE.apply(features, target, self.gradient_dtype)


class _GramMSE(torch.autograd.Function):
    r"""``mean((F Fᵀ / HW - A)²)`` with a hand-written backward (theory.md §3, the gradient).

    Because :math:`G - A` is symmetric, :math:`\partial L / \partial F = 2\,(\partial L/\partial G)\,F / HW`: one
    matrix product, where autograd through ``bmm`` and ``transpose`` spends two plus an addition.  The forward
    forms the difference with :func:`gram_difference` (float32 output: the loss is a small difference of large
    Gram entries); the backward product runs in ``gradient_dtype``, or the features' own dtype.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, features: Tensor, target: Tensor, gradient_dtype: torch.dtype | None
    ) -> Tensor:
        batch, channels, height, width = features.shape
        flat = features.reshape(batch, channels, height * width)
        difference = gram_difference(flat, target.expand(batch, -1, -1))
        ctx.save_for_backward(flat, difference)
        ctx.shape = features.shape  # type: ignore[attr-defined]
        ctx.gradient_dtype = gradient_dtype  # type: ignore[attr-defined]
        return difference.pow(2).mean()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None, None]:
        flat, difference = ctx.saved_tensors  # type: ignore[attr-defined]
        d_gram = difference * (2.0 * grad * 2.0 / (difference.numel() * flat.shape[-1]))
        dtype = ctx.gradient_dtype or flat.dtype  # type: ignore[attr-defined]
        d_features = times_features(d_gram.to(dtype), flat.to(dtype)).to(flat.dtype)
        return d_features.reshape(ctx.shape), None, None  # type: ignore[attr-defined]


def gram_difference(flat: Tensor, target: Tensor) -> Tensor:
    r""":math:`F F^\top / M - A` in float32, for features ``flat`` (B x C x M), float32 target ``A`` (theory.md §7).

    Float32 features: one float32 product.  Lower-precision features (bfloat16, as the encoder computes them
    under mixed precision) are not copied to float32 (at relu1_1 the copy alone costs about as much as the
    product).  Instead the target is split as :math:`A = A_h + A_l` with :math:`A_h` = ``A`` rounded to
    bfloat16, and :math:`F F^\top / M - A_h` is formed inside one bfloat16 product (``addmm``), which
    accumulates in float32 and rounds only the result.  That result is the small difference, so its rounding
    error is relative to :math:`G - A`, not to the large Gram entries; subtracting :math:`A_l` in float32 then
    leaves an error of about 2^-9 of the difference, as the backward's own rounding of it does.  This is done on
    the CPU, where oneDNN's bfloat16 products accumulate in float32 (tested); elsewhere the features are copied.
    """
    positions = flat.shape[-1]
    if is_low_precision(flat.dtype) and flat.device.type != "cpu":
        # On CUDA, cuBLAS may add a long product's partial sums in bfloat16, which would round relative to G:
        # there the features are copied to float32 instead.
        flat = flat.float()
    if not is_low_precision(flat.dtype):
        return torch.bmm(flat, flat.transpose(1, 2)) / positions - target
    high = target.to(flat.dtype)
    low = target - high.to(target.dtype)
    # addmm: beta * input + alpha * (F Fᵀ), computed in float32 before the one rounding to bfloat16.  Per batch
    # item: baddbmm copies channels_last features to a contiguous buffer first (as long as the product at relu1_1).
    difference = torch.stack(
        [torch.addmm(h, f, f.T, beta=-1.0, alpha=1.0 / positions) for h, f in zip(high, flat, strict=True)]
    )
    return difference.to(target.dtype) - low


def times_features(matrix: Tensor, flat: Tensor) -> Tensor:
    """``matrix @ flat`` for a symmetric ``matrix``, laid out in memory the way ``flat`` (B x C x HW) is.

    The encoder runs channels_last on the CPU, so ``flat`` is the transpose of a contiguous HW x C matrix.
    Computing :math:`(F^\top M)^\top` instead of :math:`M F` gives the gradient that same layout, so autograd
    adds it to the rest of the backward stream and the convolution consumes it without a strided copy.
    """
    if flat.stride(-2) == 1:  # channels_last: positions are the slow axis
        return torch.matmul(flat.transpose(-1, -2), matrix).transpose(-1, -2)
    return torch.matmul(matrix, flat)


class GuidedGramLoss(GramLoss):
    """:class:`GramLoss` restricted to a region of the generated image (spatial control).

    The style target is the ordinary Gram matrix of the whole style image; the generated image's
    Gram matrix is :func:`guided_gram_matrix` under ``mask``, the region's mask at this layer's
    resolution (:func:`painterly.control.mask_for_layer`).  Not registered by name: built per term.
    """

    name = "guided-gram"
    accepts_low_precision = False  # its Gram matrix is formed by guided_gram_matrix, in the features' dtype

    def __init__(self, mask: Tensor) -> None:
        self.mask = mask

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        gram = guided_gram_matrix(features, self.mask)
        return torch.nn.functional.mse_loss(gram, target.expand(features.shape[0], -1, -1))
