"""Style losses beyond the Gram matrix, each one small :class:`~painterly.losses.core.LayerLoss` subclass.

Every class here is registered by name (``stylize(style_loss=...)``, ``--style-loss``)
in :mod:`painterly.losses.registry`.  Definitions, gradients, costs and what
each changes in the picture are in ``docs/theory.md`` §9; the section of each
class is named in its docstring.  Internal constants (shift, scale, patch budget,
histogram weight) are class attributes, so a variant can be tuned by subclassing.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from painterly.losses.core import LayerLoss, gram_matrix

__all__ = ["HistogramLoss", "MRFLoss", "ShiftedGramLoss", "WassersteinLoss", "match_histograms"]


class ShiftedGramLoss(LayerLoss):
    r"""Gram matrix of shifted features (Novak & Nikulin 2016; theory.md §9.1).

    :math:`G^\delta = (F + \delta)(F + \delta)^\top / (HW)`,
    loss :math:`\operatorname{mean}(G^\delta(F) - G^\delta(S))^2`.
    ReLU features are non-negative and sparse, so their plain Gram matrix is dominated by
    co-activation; the shift :math:`\delta = -1` (one mean activation of the normalised
    network) also penalises co-*absence*, which brings out more of the style's structure.
    """

    name = "shifted-gram"
    shift: ClassVar[float] = -1.0

    def prepare(self, target_features: Tensor) -> Tensor:
        return gram_matrix(target_features.detach() + self.shift).mean(0, keepdim=True)

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        gram = gram_matrix(features + self.shift)
        return F.mse_loss(gram, target.expand(features.shape[0], -1, -1))


def _gaussian_fit(features: Tensor) -> tuple[Tensor, Tensor]:
    """Per batch item: channel means (B x C) and covariance over positions (B x C x C, divided by HW)."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    mean = flat.mean(2)
    centred = flat - mean.unsqueeze(2)
    return mean, torch.bmm(centred, centred.transpose(1, 2)) / (height * width)


class WassersteinLoss(LayerLoss):
    r"""Squared 2-Wasserstein distance between Gaussian fits of the features (theory.md §9.2).

    With means :math:`\mu, \mu_s` and covariances :math:`\Sigma, \Sigma_s` over positions:
    :math:`\frac{\kappa}{C}\big(\lVert\mu-\mu_s\rVert^2 + \operatorname{tr}\Sigma + \operatorname{tr}\Sigma_s
    - 2\operatorname{tr}(\Sigma_s^{1/2}\Sigma\,\Sigma_s^{1/2})^{1/2}\big)`.
    ``prepare`` computes :math:`\Sigma_s^{1/2}` once by an eigendecomposition; every step
    then needs the eigenvalues of one C x C symmetric matrix (``eigvalsh``, :math:`O(C^3)`).
    The target representation packs :math:`\mu_s` (row 0) above :math:`\Sigma_s^{1/2}` (rows 1..C).
    """

    name = "wasserstein"
    #: :math:`\kappa`: at 1 the result keeps about as much content as with the Gram loss (docs/gallery.md).
    scale: ClassVar[float] = 1.0
    #: Eigenvalues below this are treated as zero (the square root's slope is infinite at 0).
    eps: ClassVar[float] = 1e-8

    def prepare(self, target_features: Tensor) -> Tensor:
        features = target_features.detach()
        channels = features.shape[1]
        flat = features.transpose(0, 1).reshape(channels, -1)  # pool positions of all batch items
        mean = flat.mean(1)
        centred = flat - mean.unsqueeze(1)
        covariance = centred @ centred.T / flat.shape[1]
        values, vectors = torch.linalg.eigh(covariance.double())
        root = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
        return torch.cat([mean.unsqueeze(0), root.to(features.dtype)])

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        channels = features.shape[1]
        style_mean, style_root = target[0], target[1:]
        mean, covariance = _gaussian_fit(features)
        middle = style_root @ covariance @ style_root
        middle = (middle + middle.transpose(1, 2)) / 2  # exactly symmetric for eigvalsh
        cross = torch.linalg.eigvalsh(middle).clamp_min(self.eps).sqrt().sum(1)
        trace = covariance.diagonal(dim1=1, dim2=2).sum(1)
        style_trace = style_root.pow(2).sum()  # tr(Sigma_s) = ||Sigma_s^{1/2}||_F^2
        distance = (mean - style_mean).pow(2).sum(1) + trace + style_trace - 2 * cross
        return self.scale * distance.mean() / channels


def _pad_to(features: Tensor, size: int) -> Tensor:
    """Edge-pad a feature map that is smaller than one ``size`` x ``size`` patch (tiny images, deep layers)."""
    height, width = features.shape[-2:]
    pad_h, pad_w = max(0, size - height), max(0, size - width)
    return F.pad(features, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else features


def _patches(features: Tensor, size: int) -> Tensor:
    """All ``size`` x ``size`` patches (stride 1, no padding): B x (C size^2) x L."""
    return F.unfold(_pad_to(features, size), size)


class MRFLoss(LayerLoss):
    r"""Markov-random-field patch matching (Li & Wand 2016; theory.md §9.3).

    Each 3 x 3 patch of the image's features is matched to the style patch with the
    highest normalised cross-correlation (computed as a convolution with the unit-norm
    style patches as filters), and the loss is the mean squared distance to the matched
    patches.  Style patches are randomly subsampled to at most ``max_patches`` (torch's
    global RNG, which ``stylize`` seeds), and the correlation runs in chunks of at most
    ``max_response`` numbers, so memory stays bounded.  Use it on mid-level layers
    (Li & Wand: relu3_1 and relu4_1); on relu1_1/relu2_1 it is slow and matches mere colours.
    """

    name = "mrf"
    random_prepare = True  # the style patches are subsampled at random
    patch_size: ClassVar[int] = 3
    max_patches: ClassVar[int] = 4096
    max_response: ClassVar[int] = 1 << 24
    #: :math:`\kappa`: at the default style weight 50, 0.02 barely changes the content and 0.1 already copies
    #: the style image wholesale (hard nearest-patch assignments flip together); 0.05 is in between.
    scale: ClassVar[float] = 0.05

    def prepare(self, target_features: Tensor) -> Tensor:
        patches = _patches(target_features.detach(), self.patch_size)
        patches = patches.transpose(1, 2).reshape(-1, patches.shape[1])  # (B L) x (C k^2)
        if patches.shape[0] > self.max_patches:
            keep = torch.randperm(patches.shape[0])[: self.max_patches].to(patches.device)
            patches = patches[keep]
        return patches

    def match(self, features: Tensor, target: Tensor) -> Tensor:
        """Index of the best-matching style patch for every image patch, B x L (no gradient).

        The image patch's own norm does not change which style patch wins, so only the
        style patches are normalised.
        """
        k = self.patch_size
        with torch.no_grad():
            image = _pad_to(features, k)
            batch, channels, height, width = image.shape
            filters = (target / target.norm(dim=1, keepdim=True).clamp_min(1e-12)).view(-1, channels, k, k)
            positions = (height - k + 1) * (width - k + 1)
            chunk = max(1, self.max_response // (batch * positions))
            best = torch.full((batch, positions), -torch.inf, dtype=image.dtype, device=image.device)
            index = torch.zeros((batch, positions), dtype=torch.long, device=image.device)
            for start in range(0, filters.shape[0], chunk):
                response = F.conv2d(image, filters[start : start + chunk]).flatten(2)  # B x n x L
                score, which = response.max(1)
                better = score > best
                best = torch.where(better, score, best)
                index = torch.where(better, which + start, index)
        return index

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        index = self.match(features, target)
        patches = _patches(features, self.patch_size)  # B x (C k^2) x L
        matched = target[index].transpose(1, 2)  # B x (C k^2) x L
        return self.scale * F.mse_loss(patches, matched)


def match_histograms(features: Tensor, sorted_style: Tensor) -> Tensor:
    r"""Remap each channel of ``features`` (B x C x H x W) onto the style's value distribution.

    ``sorted_style`` is C x N (each channel's style values in ascending order).  The
    :math:`k`-th smallest of the :math:`n` values of a channel becomes the style's quantile
    :math:`k/(n-1)`, linearly interpolated between sorted style values (theory.md §9.4).
    """
    batch, channels = features.shape[:2]
    flat = features.reshape(batch, channels, -1)
    count, style_count = flat.shape[-1], sorted_style.shape[-1]
    position = torch.arange(count, device=features.device, dtype=sorted_style.dtype)
    position = position * ((style_count - 1) / max(count - 1, 1))
    low = position.floor().long().clamp_max(style_count - 1)
    high = (low + 1).clamp_max(style_count - 1)
    fraction = position - low
    quantiles = torch.lerp(sorted_style[:, low], sorted_style[:, high], fraction)  # C x n
    order = flat.argsort(dim=2)
    matched = torch.empty_like(flat).scatter_(2, order, quantiles.to(flat.dtype).expand(batch, -1, -1))
    return matched.view_as(features)


class HistogramLoss(LayerLoss):
    r"""Gram loss plus a per-channel histogram loss (Risser, Wilmot & Barnes 2017; theory.md §9.4).

    :math:`L = \operatorname{mean}(G(F) - G(S))^2 + \eta\,\operatorname{mean}(F - \operatorname{sg}[R(F)])^2`
    where :math:`R` is :func:`match_histograms` and :math:`\operatorname{sg}` stops the gradient.
    The target packs the style's Gram matrix (C x C) beside its sorted values (C x N).
    """

    name = "histogram"
    #: :math:`\eta`: the histogram term's weight relative to the Gram term.
    histogram_weight: ClassVar[float] = 1.0

    def prepare(self, target_features: Tensor) -> Tensor:
        features = target_features.detach()
        channels = features.shape[1]
        gram = gram_matrix(features).mean(0)
        values = features.transpose(0, 1).reshape(channels, -1).sort(dim=1).values
        return torch.cat([gram, values], dim=1)

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        channels = features.shape[1]
        gram_target, sorted_style = target[:, :channels], target[:, channels:]
        gram_term = F.mse_loss(gram_matrix(features), gram_target.expand(features.shape[0], -1, -1))
        with torch.no_grad():
            matched = match_histograms(features, sorted_style)
        return gram_term + self.histogram_weight * F.mse_loss(features, matched)
