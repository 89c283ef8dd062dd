"""Where a flow can be trusted: Ruder, Dosovitskiy & Brox's forward/backward consistency check (2016).

Why: the temporal term (painterly.video.temporal) pulls each pixel of a new frame towards the previous stylised
frame moved along the flow; where the flow is wrong (a region just revealed, the edge of a moving object, a point
that leaves the picture), that pull would paint the wrong thing, so those pixels get weight 0.

For a flow ``w`` from frame ``a`` to ``b`` and the flow ``ŵ`` back from ``b`` to ``a``, sampled at ``x + w(x)``
(bilinearly), a pixel ``x`` of ``a`` is unreliable where (the constants of ``consistencyChecker.cpp`` in the paper's
public code):

- it is disoccluded: :math:`|w + ŵ|^2 \\ge 0.01 (|w|^2 + |ŵ|^2) + 0.5` (going there and back misses by more
  than the flows' own uncertainty);
- it is on a motion boundary: :math:`|\\nabla u|^2 + |\\nabla v|^2 > 0.01 |w|^2 + 0.002` (central differences);
- ``x + w(x)`` falls outside ``b`` (both bilinear neighbours must lie inside, as in the C++ code).

Disoccluded pixels are set to -1 before a Gaussian blur (sigma 0.8, 5 taps), so the blur widens them outwards; the
result is clipped to [0, 1].  1 means reliable.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from painterly.errors import OptionError
from painterly.video.warp import flow_tensor, warp

__all__ = [
    "DISOCCLUSION_ABSOLUTE",
    "DISOCCLUSION_RELATIVE",
    "MOTION_BOUNDARY_ABSOLUTE",
    "MOTION_BOUNDARY_RELATIVE",
    "SMOOTHING_SIGMA",
    "ConsistencyParts",
    "consistency_mask",
    "consistency_parts",
]

#: The disocclusion test's tolerance: relative to the squared flow lengths, plus an absolute floor in px².
DISOCCLUSION_RELATIVE = 0.01
DISOCCLUSION_ABSOLUTE = 0.5
#: The motion-boundary test's tolerance: relative to the squared flow length, plus an absolute floor.
MOTION_BOUNDARY_RELATIVE = 0.01
MOTION_BOUNDARY_ABSOLUTE = 0.002
#: The Gaussian blur of the mask (``SMOOTH_STRENGH`` in consistencyChecker.cpp), cut at two sigmas.
SMOOTHING_SIGMA = 0.8


class ConsistencyParts:
    """The three tests' verdicts per pixel (boolean H x W tensors, True where the test fails) before smoothing.

    Exposed so a caller (a test, a figure) can see why a pixel is unreliable; :func:`consistency_mask` combines them.
    """

    def __init__(self, outside: Tensor, disoccluded: Tensor, motion_boundary: Tensor) -> None:
        self.outside = outside
        self.disoccluded = disoccluded
        self.motion_boundary = motion_boundary

    def unsmoothed(self) -> Tensor:
        """The mask as the C++ code holds it before its blur: 1 reliable, 0 outside or on a motion boundary, -1
        disoccluded (a pixel outside the frame is only outside; a disoccluded one is not also a boundary)."""
        mask = torch.ones(self.outside.shape, dtype=torch.float32, device=self.outside.device)
        mask[self.motion_boundary] = 0.0
        mask[self.disoccluded] = -1.0
        mask[self.outside] = 0.0
        return mask


def _central_differences(field: Tensor) -> tuple[Tensor, Tensor]:
    """d/dx and d/dy of an H x W x K field by central differences, (f(x+1) - f(x-1)) / 2, edges replicated."""
    padded = torch.nn.functional.pad(field.permute(2, 0, 1).unsqueeze(0), (1, 1, 1, 1), mode="replicate")[0]
    dx = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) / 2
    dy = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) / 2
    return dx.permute(1, 2, 0), dy.permute(1, 2, 0)


def consistency_parts(flow: np.ndarray | Tensor, back: np.ndarray | Tensor) -> ConsistencyParts:
    """Run the three tests on ``flow`` (``a`` to ``b``) against ``back`` (``b`` to ``a``), both H x W x 2."""
    w, w_back = flow_tensor(flow), flow_tensor(back)
    if w.shape != w_back.shape:
        raise OptionError(f"the forward and backward flows differ in shape: {tuple(w.shape)} and {tuple(w_back.shape)}")
    height, width = w.shape[:2]
    ys = torch.arange(height, dtype=w.dtype).view(-1, 1)
    xs = torch.arange(width, dtype=w.dtype).view(1, -1)
    x1 = torch.floor(xs + w[..., 0])
    y1 = torch.floor(ys + w[..., 1])
    outside = (x1 < 0) | (x1 + 1 >= width) | (y1 < 0) | (y1 + 1 >= height)
    # ŵ at x + w(x): inside the frame this is the same bilinear interpolation as the C++ code's.
    w_hat = warp(w_back.permute(2, 0, 1).unsqueeze(0), w)[0].permute(1, 2, 0)
    miss = (w + w_hat).pow(2).sum(-1)
    tolerance = DISOCCLUSION_RELATIVE * (w.pow(2).sum(-1) + w_hat.pow(2).sum(-1)) + DISOCCLUSION_ABSOLUTE
    disoccluded = (miss >= tolerance) & ~outside
    dx, dy = _central_differences(w)
    edge = dx.pow(2).sum(-1) + dy.pow(2).sum(-1)
    boundary = (edge > MOTION_BOUNDARY_RELATIVE * w.pow(2).sum(-1) + MOTION_BOUNDARY_ABSOLUTE) & ~outside & ~disoccluded
    return ConsistencyParts(outside, disoccluded, boundary)


def _gaussian_blur(mask: Tensor, sigma: float) -> Tensor:
    """A separable, normalised Gaussian blur of an H x W mask, cut at two sigmas, edges replicated."""
    radius = max(1, int(np.ceil(2 * sigma)))
    taps = torch.arange(-radius, radius + 1, dtype=mask.dtype)
    kernel = torch.exp(-taps.pow(2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    image = mask.view(1, 1, *mask.shape)
    image = torch.nn.functional.pad(image, (radius, radius, 0, 0), mode="replicate")
    image = torch.nn.functional.conv2d(image, kernel.view(1, 1, 1, -1))
    image = torch.nn.functional.pad(image, (0, 0, radius, radius), mode="replicate")
    return torch.nn.functional.conv2d(image, kernel.view(1, 1, -1, 1))[0, 0]


def consistency_mask(
    flow: np.ndarray | Tensor, back: np.ndarray | Tensor, *, smoothing: float = SMOOTHING_SIGMA
) -> Tensor:
    """Per-pixel reliability of ``flow`` (``a`` to ``b``) on ``a``'s grid, in [0, 1] (float32 H x W): 1 where the
    flow passes Ruder's three tests, 0 where it fails one, blurred by ``smoothing`` (0: no blur)."""
    mask = consistency_parts(flow, back).unsmoothed()
    if smoothing > 0:
        mask = _gaussian_blur(mask, smoothing)
    return mask.clamp(0.0, 1.0)
