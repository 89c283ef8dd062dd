"""Colour control (Gatys, Ecker, Bethge, Hertzmann & Shechtman 2017, §5): keep the content's colours.

Plain functions on ``B x 3 x H x W`` RGB tensors in [0, 1], one per operation:

* :func:`rgb_to_yiq` / :func:`yiq_to_rgb`: the NTSC YIQ colour space, luminance Y plus two chroma channels.
* :func:`match_luminance`: shift and scale a luminance channel to another's mean and standard deviation.
* :func:`transfer_chroma`: the luminance of one image with the chroma (I, Q) of another.
* :func:`match_color_linear`: the affine colour transform that gives an image another's mean and covariance.
* :func:`match_histograms`: full per-channel histogram matching.

:func:`prepare_color_inputs` and :func:`restore_colors` apply a :data:`ColorControl` mode
before and after the optimisation; :func:`painterly.stylize` calls them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from PIL import Image
from torch import Tensor

from painterly.io.images import pil_to_tensor, tensor_to_pil

__all__ = [
    "COLOR_CONTROLS",
    "ColorControl",
    "LinearColorMethod",
    "gray_to_rgb",
    "luminance",
    "match_color_linear",
    "match_histograms",
    "match_luminance",
    "prepare_color_inputs",
    "restore_colors",
    "rgb_to_yiq",
    "transfer_chroma",
    "yiq_to_rgb",
]

#: ``stylize(color_control=...)``: see :func:`prepare_color_inputs` and docs/perceptual_control.md.
ColorControl = Literal["none", "luminance", "linear", "match-histograms", "original-colors"]
COLOR_CONTROLS: tuple[str, ...] = get_args(ColorControl)

#: How :func:`match_color_linear` takes the matrix square root of a covariance.
LinearColorMethod = Literal["eigen", "cholesky"]

# NTSC (FCC 1953) RGB -> YIQ; the inverse is computed from it so a round trip is exact to float precision.
_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.5959, -0.2746, -0.3213],
        [0.2115, -0.5227, 0.3112],
    ],
    dtype=torch.float64,
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _check_rgb(image: Tensor, name: str = "image") -> None:
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"{name} must be a B x 3 x H x W tensor, got shape {tuple(image.shape)}")


def _apply_matrix(matrix: Tensor, image: Tensor) -> Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(image), image)


def rgb_to_yiq(image: Tensor) -> Tensor:
    """RGB -> YIQ.  Y (luminance) lies in [0, 1] for RGB in [0, 1]; I and Q are signed chroma."""
    _check_rgb(image)
    return _apply_matrix(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: Tensor) -> Tensor:
    """YIQ -> RGB (not clamped: a YIQ triple may lie outside the RGB cube)."""
    _check_rgb(image)
    return _apply_matrix(_YIQ_TO_RGB, image)


def luminance(image: Tensor) -> Tensor:
    """The Y channel of an RGB image, ``B x 1 x H x W``."""
    return rgb_to_yiq(image)[:, :1]


def gray_to_rgb(luma: Tensor) -> Tensor:
    """Replicate a ``B x 1 x H x W`` luminance image to three equal channels (a grey RGB image)."""
    if luma.ndim != 4 or luma.shape[1] != 1:
        raise ValueError(f"luminance must be B x 1 x H x W, got shape {tuple(luma.shape)}")
    return luma.expand(-1, 3, -1, -1).contiguous()


def match_luminance(luma: Tensor, reference: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Give ``luma`` the mean and standard deviation of ``reference`` (per batch item, not clamped).

    :math:`L' = \frac{\sigma_r}{\sigma_l}(L - \mu_l) + \mu_r`: the paper's luminance matching of the
    style to the content before luminance-only transfer.
    """
    mean, std = luma.mean((1, 2, 3), keepdim=True), luma.std((1, 2, 3), correction=0, keepdim=True)
    ref_mean, ref_std = reference.mean((1, 2, 3), keepdim=True), reference.std((1, 2, 3), correction=0, keepdim=True)
    return (luma - mean) * (ref_std / (std + eps)) + ref_mean


def transfer_chroma(luma_source: Tensor, chroma_source: Tensor) -> Tensor:
    """RGB image with the luminance of ``luma_source`` and the I, Q chroma of ``chroma_source``, clamped to [0, 1].

    Both are RGB tensors of the same shape.  This is the paper's recombination step and,
    applied to a finished result and the content, the "original colors" post-processing.
    """
    _check_rgb(luma_source, "luma_source")
    _check_rgb(chroma_source, "chroma_source")
    if luma_source.shape != chroma_source.shape:
        raise ValueError(f"shapes differ: {tuple(luma_source.shape)} and {tuple(chroma_source.shape)}")
    yiq = torch.cat([luminance(luma_source), rgb_to_yiq(chroma_source)[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def _mean_cov(image: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    flat = image.reshape(image.shape[0], 3, -1).double()
    mean = flat.mean(-1, keepdim=True)
    centred = flat - mean
    cov = centred @ centred.transpose(1, 2) / flat.shape[-1]
    return mean, cov + eps * torch.eye(3, dtype=cov.dtype, device=cov.device)


def _sqrt_and_inverse_sqrt(cov: Tensor) -> tuple[Tensor, Tensor]:
    values, vectors = torch.linalg.eigh(cov)
    root = values.clamp_min(1e-12).sqrt()
    return (vectors * root.unsqueeze(-2)) @ vectors.transpose(-1, -2), (
        vectors / root.unsqueeze(-2)
    ) @ vectors.transpose(-1, -2)


def _linear_transform(image: Tensor, reference: Tensor, method: str, eps: float) -> Tensor:
    mean, cov = _mean_cov(image, eps)
    ref_mean, ref_cov = _mean_cov(reference, eps)
    if method == "eigen":
        ref_root, _ = _sqrt_and_inverse_sqrt(ref_cov)
        _, inverse_root = _sqrt_and_inverse_sqrt(cov)
        transform = ref_root @ inverse_root
    elif method == "cholesky":
        transform = torch.linalg.cholesky(ref_cov) @ torch.linalg.inv(torch.linalg.cholesky(cov))
    else:
        raise ValueError(f"method must be 'eigen' or 'cholesky', not {method!r}")
    flat = image.reshape(image.shape[0], 3, -1).double()
    return (transform @ (flat - mean) + ref_mean).reshape(image.shape).to(image.dtype)


def match_color_linear(
    image: Tensor,
    reference: Tensor,
    method: LinearColorMethod = "eigen",
    *,
    clamp: bool = True,
    rounds: int = 10,
    eps: float = 1e-5,
) -> Tensor:
    r"""Affine colour transform :math:`x' = A(x - \mu_x) + \mu_r` so ``image`` gets ``reference``'s colour mean and
    covariance (the paper's colour histogram matching, §5).

    ``A`` satisfies :math:`A \Sigma_x A^\top = \Sigma_r`.  Two choices of ``A`` are offered:
    ``"eigen"`` (the default), :math:`A = \Sigma_r^{1/2} \Sigma_x^{-1/2}` with symmetric matrix square
    roots from an eigen decomposition (the 3-D colour matching of Image Analogies, Hertzmann et al. 2001),
    and ``"cholesky"``, :math:`A = L_r L_x^{-1}` with :math:`\Sigma = L L^\top`.  ``eps`` regularises flat
    (e.g. grey) images.

    With ``clamp`` the result is clipped to [0, 1].  Clipping moves the moments when the transform
    leaves the RGB cube (about 10 % of the values for a dark photo such as coffee.jpg against a light
    print), so the match is repeated on the clipped image up to ``rounds`` times, which brings mean and
    covariance to within about 1e-3 (eigen) or 1e-2 (cholesky, which converges more slowly).  Without
    ``clamp`` one exact round is done.
    """
    _check_rgb(image)
    _check_rgb(reference, "reference")
    if image.shape[0] != reference.shape[0] and reference.shape[0] != 1:
        raise ValueError("reference must have batch size 1 or the image's batch size")
    result = _linear_transform(image, reference, method, eps)
    if not clamp:
        return result
    for _ in range(rounds - 1):
        if result.min() >= 0 and result.max() <= 1:
            break
        result = _linear_transform(result.clamp(0, 1), reference, method, eps)
    return result.clamp(0, 1)


def _match_channel(values: Tensor, reference: Tensor) -> Tensor:
    """Monotone map of ``values`` (1-D) onto the distribution of ``reference`` (1-D); ties stay tied."""
    ordered, _ = values.sort()
    ref_sorted, _ = reference.sort()
    # Mid-rank quantile of every value: equal inputs get equal outputs, which matters for 8-bit images.
    below = torch.searchsorted(ordered, values, right=False)
    upto = torch.searchsorted(ordered, values, right=True)
    quantile = (below + upto).to(torch.float64) / (2 * values.numel())
    position = quantile * (ref_sorted.numel() - 1)
    low = position.floor().long().clamp(0, ref_sorted.numel() - 1)
    high = (low + 1).clamp_max(ref_sorted.numel() - 1)
    frac = (position - low).to(reference.dtype)
    return ref_sorted[low] * (1 - frac) + ref_sorted[high] * frac


def match_histograms(image: Tensor, reference: Tensor) -> Tensor:
    """Per-channel histogram matching: each RGB channel of ``image`` gets ``reference``'s distribution.

    Stronger than :func:`match_color_linear` (all quantiles, not just two moments) but ignores
    correlations between channels.  Stays within the reference's range, so no clamping is needed.
    """
    _check_rgb(image)
    _check_rgb(reference, "reference")
    result = torch.empty_like(image)
    for item in range(image.shape[0]):
        ref = reference[min(item, reference.shape[0] - 1)]
        for channel in range(3):
            result[item, channel] = _match_channel(image[item, channel].flatten(), ref[channel].flatten()).view(
                image.shape[-2:]
            )
    return result


def prepare_color_inputs(
    content: Image.Image, styles: Sequence[Image.Image], mode: ColorControl
) -> tuple[Image.Image, list[Image.Image]]:
    """Pre-process the inputs for ``mode`` before any optimisation (once, at the loaded resolution).

    * ``"luminance"``: content and styles become grey images of their luminance, each style's luminance
      first matched to the content's mean and variance (the paper's luminance-only transfer).
    * ``"linear"``: each style gets the content's colour mean and covariance (:func:`match_color_linear`; called
      "histogram" before issue 17, a name that also meant a style loss).
    * ``"match-histograms"``: each style's RGB channels get the content's histograms (:func:`match_histograms`;
      called "histogram-full" before).
    * ``"none"`` and ``"original-colors"``: unchanged.
    """
    if mode not in COLOR_CONTROLS:
        from painterly.errors import OptionError

        raise OptionError(f"unknown color control {mode!r}; choose one of {', '.join(COLOR_CONTROLS)}")
    if mode in ("none", "original-colors"):
        return content, list(styles)
    content_tensor = pil_to_tensor(content)
    style_tensors = [pil_to_tensor(style) for style in styles]
    if mode == "luminance":
        content_luma = luminance(content_tensor)
        styles_out = [gray_to_rgb(match_luminance(luminance(s), content_luma).clamp(0, 1)) for s in style_tensors]
        content_tensor = gray_to_rgb(content_luma)
    elif mode == "linear":
        styles_out = [match_color_linear(s, content_tensor) for s in style_tensors]
    else:
        styles_out = [match_histograms(s, content_tensor) for s in style_tensors]
    return tensor_to_pil(content_tensor), [tensor_to_pil(s) for s in styles_out]


def restore_colors(result: Tensor, content: Tensor, mode: ColorControl) -> Tensor:
    """Post-process the optimised ``result`` for ``mode`` using the original ``content`` at the same size.

    ``"luminance"`` and ``"original-colors"`` keep the result's luminance and take the content's chroma
    (:func:`transfer_chroma`); the other modes return ``result`` unchanged.
    """
    if mode in ("luminance", "original-colors"):
        return transfer_chroma(result, content)
    return result
