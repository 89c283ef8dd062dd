"""Warping an image by an optical flow with a bilinear sampler (``torch.nn.functional.grid_sample``).

Why: the temporal term compares a new frame's stylisation with the previous one moved along the flow, and the next
frame starts from it; both need ``warped(x) = image(x + w(x))`` at sub-pixel positions, differentiable in the image.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from painterly.errors import OptionError

__all__ = ["flow_tensor", "sample_grid", "warp"]


def flow_tensor(flow: np.ndarray | Tensor, *, device: torch.device | None = None) -> Tensor:
    """A flow (H x W x 2, numpy or torch) as a float32 tensor; the one place a flow's layout is checked."""
    tensor = torch.from_numpy(np.ascontiguousarray(flow)) if isinstance(flow, np.ndarray) else flow
    if tensor.ndim != 3 or tensor.shape[-1] != 2:
        raise OptionError(f"a flow is H x W x 2 (dx, dy), not shape {tuple(tensor.shape)}")
    return tensor.to(device=device, dtype=torch.float32)


def sample_grid(flow: Tensor) -> Tensor:
    """``grid_sample``'s grid (1 x H x W x 2, in [-1, 1] with ``align_corners=True``) for the points ``x + w(x)``."""
    height, width = flow.shape[:2]
    ys = torch.arange(height, dtype=flow.dtype, device=flow.device).view(-1, 1).expand(height, width)
    xs = torch.arange(width, dtype=flow.dtype, device=flow.device).view(1, -1).expand(height, width)
    x = (xs + flow[..., 0]) * (2.0 / max(width - 1, 1)) - 1.0
    y = (ys + flow[..., 1]) * (2.0 / max(height - 1, 1)) - 1.0
    return torch.stack([x, y], dim=-1).unsqueeze(0)


def warp(
    image: Tensor, flow: np.ndarray | Tensor, *, padding: Literal["border", "zeros", "reflection"] = "border"
) -> Tensor:
    """``image`` (B x C x H x W) sampled at ``x + w(x)``: with ``w`` the flow from frame ``a`` to frame ``b`` and
    ``image`` frame ``b``, the result is ``b`` moved onto ``a``'s grid, which matches ``a`` where the flow is right.

    Bilinear; points outside the image take the nearest border pixel (``padding="border"``, a better start for the
    next frame than black), or zero.  The consistency mask (painterly.video.consistency) marks those points
    unreliable, so the temporal term ignores them either way.
    """
    grid_flow = flow_tensor(flow, device=image.device).to(image.dtype)
    if image.ndim != 4 or image.shape[-2:] != grid_flow.shape[:2]:
        raise OptionError(f"cannot warp an image of shape {tuple(image.shape)} by a flow of shape "
                          f"{tuple(grid_flow.shape)}: B x C x H x W and H x W x 2 of one size")  # fmt: skip
    grid = sample_grid(grid_flow).expand(image.shape[0], -1, -1, -1)
    return torch.nn.functional.grid_sample(image, grid, mode="bilinear", padding_mode=padding, align_corners=True)
