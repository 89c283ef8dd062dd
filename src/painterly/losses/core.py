"""Losses on encoder features, under one small interface, and the two losses on pixels.

Each :class:`LayerLoss` compares one layer's features ``F`` (shape B x C x H x W)
with a *target representation* computed once from the target image's features
(``prepare``), so the style's Gram matrices are never recomputed during the
optimisation.  A loss with a closed-form feature gradient owns it: a
:class:`PositionwiseLoss` (content MSE) or a :class:`GramStatisticLoss` (Gram
MSE) hands the tiled evaluator one window's gradient without autograd through the
whole image, and its own autograd backward uses the same formula.  Total
variation and the Laplacian term are :class:`PixelLoss` terms both evaluators
share.  The mathematics is written down in ``docs/theory.md``; every function here
names the section it implements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

__all__ = [
    "ContentLoss",
    "GramLoss",
    "GramStatisticLoss",
    "GuidedGramLoss",
    "LaplacianLoss",
    "LayerLoss",
    "PixelLoss",
    "PositionwiseLoss",
    "TotalVariationLoss",
    "gram_difference",
    "gram_matrix",
    "guided_gram_matrix",
    "is_low_precision",
    "laplacian",
    "square_slope",
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


def square_slope(tensor: Tensor, weight: Tensor | float, count: int) -> Tensor:
    r"""``tensor`` times :math:`2 w / n`: the gradient of :math:`w \sum x^2 / n` at :math:`x` = ``tensor``.

    The one place the factor of a mean square's gradient is written (theory.md §2, §3, §7): the content and Gram
    losses' autograd backward and the tiled evaluator all form it here.  ``weight`` is a float in the tiled
    evaluator and the incoming gradient (a tensor) inside a backward; either way the scalar factor is formed first
    and multiplies the tensor once.  The Gram matrix's own factor has the same form: for a symmetric :math:`S`,
    :math:`\partial_F \langle S, F F^\top \rangle / M = 2 S F / M` (:meth:`GramStatisticLoss.feature_grad`).
    """
    return tensor * (2.0 * weight / count)


class LayerLoss(ABC):
    """A comparison of one layer's features against a precomputed target.

    Subclasses implement ``prepare`` (target features -> representation, run once)
    and ``__call__`` (current features, representation -> scalar loss, run every
    step).  A new style loss is one small subclass; one whose feature gradient has a
    closed form that windows can share subclasses :class:`PositionwiseLoss` or
    :class:`GramStatisticLoss` instead, and the tiled evaluator can then take it.
    """

    #: Name used by ``--style-loss`` and in reports.
    name: ClassVar[str]
    #: Whether ``__call__`` takes features in the encoder's lower compute precision (bfloat16) as they are.
    #: Otherwise :class:`~painterly.objective.whole.Objective` hands it a float32 copy.
    accepts_low_precision: bool = False
    #: Whether ``prepare`` draws random numbers (a cached target is then reused only under the same random state,
    #: painterly.objective.targets).
    random_prepare: ClassVar[bool] = False

    @abstractmethod
    def prepare(self, target_features: Tensor) -> Tensor:
        """Compute the target representation once, detached from any graph."""

    @abstractmethod
    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        """Return the scalar loss of ``features`` against ``target``."""


class PositionwiseLoss(LayerLoss):
    """A loss that sums a function of each position's features and target, over all positions.

    Each position's gradient then depends only on that position, so a window's core gives its own share of the
    loss and of the feature gradient by itself: what the tiled evaluator needs (theory.md §10).  ``prepare`` must
    keep positions where they are (the tiled evaluator hands it the target's whole feature map and cuts each core's
    region out of the result).
    """

    @abstractmethod
    def value_and_feature_grad(
        self, features: Tensor, target: Tensor, weight: float, count: int
    ) -> tuple[Tensor, Tensor]:
        """``weight`` times the loss's sum over ``features`` divided by ``count``, and its gradient w.r.t. ``features``.

        Why: the tiled evaluator computes the loss and its gradient one window at a time, without autograd through
        the whole image.  ``features`` are one core's, ``target`` the same positions of the prepared target, and
        ``count`` the number of entries of the whole image's feature map, so the cores' shares add up to the whole
        image's mean.  The gradient comes back in the features' dtype, to join the window's backward as it is.
        """


class GramStatisticLoss(LayerLoss):
    r"""A loss that sees the features only through their Gram matrix :math:`G = F F^\top / M` (theory.md §3, §10).

    The tiled evaluator sums :math:`G` over windows (its pass 1), takes the loss and :math:`\partial L / \partial G`
    from :meth:`value_and_gram_grad`, and turns that into each window's feature gradient with :meth:`feature_grad`,
    from the window's own features (pass 2); the whole-image backward uses the same :meth:`feature_grad`.
    ``prepare`` must return the mean Gram matrix of the target's features (1 x C x C), which is what the tiled
    evaluator computes for it window by window.
    """

    @abstractmethod
    def value_and_gram_grad(self, gram: Tensor, target: Tensor, weight: float) -> tuple[Tensor, Tensor]:
        r"""``weight`` times the loss of the Gram matrix ``gram`` against ``target``, and its gradient w.r.t. ``gram``.

        Why: the tiled evaluator knows the whole image's Gram matrix only as a sum over windows, so the loss is
        taken on that matrix, and its gradient :math:`\partial L / \partial G` (symmetric, C x C) is what every
        window's :meth:`feature_grad` needs.
        """

    @staticmethod
    def feature_grad(
        gram_grad: Tensor,
        flat: Tensor,
        positions: int,
        dtype: torch.dtype | None = None,
        *,
        weight: Tensor | float = 1.0,
    ) -> Tensor:
        r""":math:`\partial L / \partial F = \frac{2w}{M} (\partial L / \partial G) F` for ``flat`` = F (B x C x M').

        Why: a window's features give their own share of the gradient once :math:`\partial L / \partial G` is
        known for the whole image, so the tiled evaluator needs no autograd through the whole image; ``positions``
        is :math:`M`, the number of positions :math:`G` was normalised by (the whole image's, however few of them
        ``flat`` holds).  ``gram_grad`` must be symmetric (the identity behind one product instead of autograd's
        two, theory.md §7).  The product runs in ``dtype`` (default: the features' own) and the result comes back
        in the features' dtype, laid out as they are (:func:`times_features`).  ``weight`` scales it.
        """
        dtype = dtype or flat.dtype
        scaled = square_slope(gram_grad, weight, positions)
        return times_features(scaled.to(dtype), flat.to(dtype)).to(flat.dtype)


class ContentLoss(PositionwiseLoss):
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

    def value_and_feature_grad(
        self, features: Tensor, target: Tensor, weight: float, count: int
    ) -> tuple[Tensor, Tensor]:
        r""":math:`w \sum (F - P)^2 / n` and :math:`2 w (F - P) / n`: the difference in float32, as
        :class:`_FeatureMSE` forms it, the gradient rounded once to the features' dtype."""
        difference = _feature_difference(features, target)
        value = weight * difference.pow(2).sum() / count
        return value, square_slope(difference, weight, count).to(features.dtype)


def _feature_difference(features: Tensor, target: Tensor) -> Tensor:
    """``F - P`` in the target's dtype (float32) for features of any precision, broadcasting a target of batch 1."""
    return features.to(target.dtype) - target


class _FeatureMSE(torch.autograd.Function):
    r"""``mean((F - P)²)`` in float32 for features of any precision; gradient :math:`2 (F - P) / N` in ``F``'s dtype."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, features: Tensor, target: Tensor) -> Tensor:
        difference = _feature_difference(features, target)
        ctx.save_for_backward(difference)
        ctx.dtype = features.dtype  # type: ignore[attr-defined]
        return difference.pow(2).mean()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
        (difference,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return square_slope(difference, grad, difference.numel()).to(ctx.dtype), None  # type: ignore[attr-defined]


class GramLoss(GramStatisticLoss):
    r"""Gatys et al.'s style loss (theory.md §3): :math:`\operatorname{mean}(G(F) - G(S))^2`.

    The mean runs over the :math:`C^2` entries, i.e. the paper's
    :math:`\frac{1}{4 N_l^2 M_l^2}\sum (G - A)^2` times 4 with ``G`` normalised by :math:`M_l`.
    """

    name = "gram"

    def __init__(self, gradient_dtype: torch.dtype | None = None, *, accepts_low_precision: bool = False) -> None:
        #: Precision of the backward product (None: the features' own).  Mixed-precision runs of revision 2 set the
        #: encoder's compute dtype: the gradient is rounded to it by the convolutions' backward anyway, so only
        #: the difference matrix is rounded in addition, and the product runs faster (theory.md §7).
        #: The tiled evaluator chooses its own precision (``TiledObjective.low_precision``) and does not read this.
        self.gradient_dtype = gradient_dtype
        #: Take bfloat16 features as they come (revision 3): the Gram difference is then formed inside one
        #: bfloat16 product with float32 accumulation (:func:`gram_difference`), and no float32 copy of the
        #: features is ever made (theory.md §7).
        self.accepts_low_precision = accepts_low_precision

    def prepare(self, target_features: Tensor) -> Tensor:
        return _mean_gram(target_features)

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        return _GramMSE.apply(features, target, self.gradient_dtype)

    def value_and_gram_grad(self, gram: Tensor, target: Tensor, weight: float) -> tuple[Tensor, Tensor]:
        r""":math:`w \operatorname{mean}(G - A)^2` and :math:`2 w (G - A) / C^2`."""
        difference = gram - target
        return weight * difference.pow(2).mean(), square_slope(difference, weight, difference.numel())


def _mean_gram(target_features: Tensor) -> Tensor:
    """The style target of the Gram losses: the mean of the target features' Gram matrices (1 x C x C)."""
    return gram_matrix(target_features.detach()).mean(0, keepdim=True)


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
        # dL/dG = square_slope(G - A, grad, C²) (as GramLoss.value_and_gram_grad); its factor 2 grad / C² is folded
        # into the product's 2 / M, so the C x C matrix is scaled once, by 2 (2 grad) / (C² M): the order in which
        # this backward has always rounded (the tiled evaluator scales the sum of a layer's dL/dG instead).
        d_features = GramStatisticLoss.feature_grad(
            difference,
            flat,
            difference.numel() * flat.shape[-1],
            ctx.gradient_dtype,  # type: ignore[attr-defined]
            weight=2.0 * grad,
        )
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


class GuidedGramLoss(LayerLoss):
    """:class:`GramLoss` restricted to a region of the generated image (spatial control).

    The style target is the ordinary Gram matrix of the whole style image; the generated image's
    Gram matrix is :func:`guided_gram_matrix` under ``mask``, the region's mask at this layer's
    resolution (:func:`painterly.control.spatial.mask_for_layer`).  Not registered by name: built per term.
    Not a :class:`GramStatisticLoss`: its Gram matrix weights positions by the mask, which the tiled
    evaluator's sum over windows does not.
    """

    name = "guided-gram"
    accepts_low_precision = False  # its Gram matrix is formed by guided_gram_matrix, in the features' dtype

    def __init__(self, mask: Tensor) -> None:
        self.mask = mask

    def prepare(self, target_features: Tensor) -> Tensor:
        return _mean_gram(target_features)

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        gram = guided_gram_matrix(features, self.mask)
        return torch.nn.functional.mse_loss(gram, target.expand(features.shape[0], -1, -1))


class PixelLoss(ABC):
    """A loss on the image's pixels rather than its features (theory.md §4, §6).

    Both evaluators differentiate it by autograd on the whole image they judge (grey under luminance-only
    transfer): it costs little next to the encoder, and needs no tiling.
    """

    #: The part of the objective it is reported as.
    name: ClassVar[str]

    @abstractmethod
    def __call__(self, image: Tensor) -> Tensor:
        """Return the scalar loss of ``image`` (B x 3 x H x W)."""


class TotalVariationLoss(PixelLoss):
    """Smoothness: :func:`total_variation` of the image (theory.md §4); no target."""

    name = "tv"

    def __call__(self, image: Tensor) -> Tensor:
        return total_variation(image)


class LaplacianLoss(PixelLoss):
    r"""Content structure: :math:`\operatorname{mean}(D(x) - D(c))^2`, :math:`D` = :func:`laplacian` (theory.md §6).

    :math:`D(c)` is computed once, from the stage's content image.
    """

    name = "laplacian"

    def __init__(self, content: Tensor) -> None:
        self.target = laplacian(content).detach()

    def __call__(self, image: Tensor) -> Tensor:
        difference = laplacian(image) - self.target
        return difference.pow(2).mean()
