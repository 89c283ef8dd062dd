"""Optical flow between two frames, forward and backward, with OpenCV's DIS (dense inverse search).

Why DIS: it is in OpenCV's main module (no contrib wheel), runs in milliseconds per frame at the sizes painterly
stylises, and needs no downloaded weights; the paper's DeepFlow + DeepMatching are external binaries.  OpenCV is used
for flow only; video files go through PyAV (painterly.video.io).

A flow ``w`` from frame ``a`` to frame ``b`` is a float32 H x W x 2 array of (dx, dy) in pixels, ``a``'s grid: the
point ``x`` of ``a`` is seen at ``x + w(x)`` in ``b``, so ``a(x) ≈ b(x + w(x))`` (what :func:`painterly.video.warp.warp`
samples).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch

from painterly.errors import OptionError

__all__ = ["DIS_PRESETS", "MIN_FLOW_SIDE", "FlowPair", "dis_flow", "flow_pair", "to_grey"]

#: OpenCV's DIS presets by name: more accurate and slower from left to right.
DIS_PRESETS = {
    "ultrafast": cv2.DISOpticalFlow_PRESET_ULTRAFAST,
    "fast": cv2.DISOpticalFlow_PRESET_FAST,
    "medium": cv2.DISOpticalFlow_PRESET_MEDIUM,
}

Preset = Literal["ultrafast", "fast", "medium"]

#: Frames whose long side is shorter are enlarged by a whole factor for DIS, and the flow shrunk back.  Why: DIS
#: chooses its coarsest pyramid level from the frame's size and patch size, and below about 128 px the "medium"
#: preset gets a single level and loses motions of 5 px and more (measured on a 64 px pan: tests/test_video_flow.py).
MIN_FLOW_SIDE = 128


def to_grey(frame: np.ndarray) -> np.ndarray:
    """An RGB ``uint8`` frame (H x W x 3) as grey ``uint8`` (H x W), what DIS reads; grey frames pass through."""
    if frame.dtype != np.uint8:
        raise OptionError(f"optical flow needs uint8 frames, not {frame.dtype}")
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    raise OptionError(f"optical flow needs H x W x 3 RGB or H x W grey frames, not shape {frame.shape}")


def dis_flow(a: np.ndarray, b: np.ndarray, preset: Preset = "medium") -> np.ndarray:
    """The flow from frame ``a`` to frame ``b`` (float32, H x W x 2, (dx, dy) in pixels on ``a``'s grid).

    Frames smaller than :data:`MIN_FLOW_SIDE` are enlarged for DIS and the flow brought back to their size.
    """
    grey_a, grey_b = to_grey(a), to_grey(b)
    if grey_a.shape != grey_b.shape:
        raise OptionError(f"optical flow needs frames of one size, not {grey_a.shape[::-1]} and {grey_b.shape[::-1]}")
    if preset not in DIS_PRESETS:
        raise OptionError(f"unknown DIS preset {preset!r}; use one of {', '.join(DIS_PRESETS)}")
    height, width = grey_a.shape
    factor = -(-MIN_FLOW_SIDE // max(height, width))
    if factor > 1:
        grey_a, grey_b = (cv2.resize(g, (width * factor, height * factor), interpolation=cv2.INTER_CUBIC)
                          for g in (grey_a, grey_b))  # fmt: skip
    dis = cv2.DISOpticalFlow.create(DIS_PRESETS[preset])
    flow = dis.calc(grey_a, grey_b, np.zeros((*grey_a.shape, 2), np.float32))  # filled, not read (no initial flow)
    if factor > 1:
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_AREA) / factor
    return np.ascontiguousarray(flow, dtype=np.float32)


class FlowPair:
    """The forward flow (``a`` to ``b``) and the backward flow (``b`` to ``a``) of two frames, as numpy or torch."""

    def __init__(self, forward: np.ndarray, backward: np.ndarray) -> None:
        self.forward = forward
        self.backward = backward

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Both flows as float32 torch tensors (H x W x 2), sharing the arrays' memory."""
        return torch.from_numpy(self.forward), torch.from_numpy(self.backward)


def flow_pair(a: np.ndarray, b: np.ndarray, preset: Preset = "medium") -> FlowPair:
    """Forward and backward DIS flow between frames ``a`` and ``b``: what the consistency check compares."""
    return FlowPair(dis_flow(a, b, preset), dis_flow(b, a, preset))
