"""Optical flow and warping on synthetic clips whose true flow is known (tests/video_clips.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from painterly.errors import OptionError
from painterly.video.consistency import consistency_mask
from painterly.video.flow import dis_flow, flow_pair, to_grey
from painterly.video.warp import flow_tensor, warp

from .video_clips import SQUARE_LEFT, SQUARE_SIDE, SQUARE_STEP, SQUARE_TOP, moving_square, pan


def as_tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0).float() / 255


@pytest.mark.parametrize("shift", [2, 5])
def test_dis_flow_on_a_pan_is_the_shift_in_the_interior(shift: int) -> None:
    first, second = pan(2, shift)
    pair = flow_pair(first, second)
    interior = (slice(8, -8), slice(8, -8))
    forward, backward = pair.forward[interior], pair.backward[interior]
    assert pair.forward.dtype == np.float32 and pair.forward.shape == (*first.shape[:2], 2)
    assert np.median(np.abs(forward[..., 0] + shift)) < 0.1 and np.median(np.abs(forward[..., 1])) < 0.1
    assert np.median(np.abs(backward[..., 0] - shift)) < 0.1
    assert np.mean(np.hypot(forward[..., 0] + shift, forward[..., 1]) < 0.5) > 0.9
    torch_forward, _ = pair.tensors()
    assert torch.equal(torch_forward, torch.from_numpy(pair.forward))


def test_dis_flow_sees_the_square_move_and_the_background_stay() -> None:
    first, second = moving_square(2)
    flow = dis_flow(first, second)
    inside = flow[SQUARE_TOP + 5 : SQUARE_TOP + SQUARE_SIDE - 5, SQUARE_LEFT + 5 : SQUARE_LEFT + SQUARE_SIDE - 5]
    assert np.abs(np.median(inside[..., 0]) - SQUARE_STEP) < 0.3
    assert np.abs(flow[40:, 40:]).max() < 0.5, "the background far from the square stays still"


def test_warping_the_next_frame_back_by_the_flow_gives_the_frame_where_the_flow_is_reliable() -> None:
    first, second = pan(2, 3)
    pair = flow_pair(first, second)
    reliable = consistency_mask(pair.forward, pair.backward) > 0.99
    warped = warp(as_tensor(second), pair.forward)
    error = (warped - as_tensor(first)).abs().mean(1)[0]
    assert reliable.float().mean() > 0.8, "most of a pan is reliable"
    assert float(error[reliable].mean()) < 0.01
    unwarped = (as_tensor(second) - as_tensor(first)).abs().mean(1)[0]
    assert float(error[reliable].mean()) < float(unwarped[reliable].mean()) / 10, "the flow did the work"


def test_warp_by_a_whole_pixel_flow_is_exact_and_border_filled() -> None:
    image = torch.rand(1, 3, 6, 8, generator=torch.Generator().manual_seed(0))
    flow = torch.zeros(6, 8, 2)
    flow[..., 0] = 2.0  # sample two columns to the right
    warped = warp(image, flow)
    assert torch.allclose(warped[..., :6], image[..., 2:], atol=1e-6)
    assert torch.allclose(warped[..., 6:], image[..., 7:].expand(-1, -1, -1, 2), atol=1e-6), "edge repeated"
    zeros = warp(image, flow, padding="zeros")
    assert float(zeros[..., 7].abs().max()) == 0.0


def test_warp_interpolates_between_pixels_and_passes_gradients() -> None:
    image = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 4, 8).clone().requires_grad_(True)
    flow = np.zeros((4, 8, 2), np.float32)
    flow[..., 0] = 0.25
    warped = warp(image, flow)
    assert torch.allclose(warped[0, 0, 0, :7], torch.arange(7.0) + 0.25)
    warped.sum().backward()
    assert image.grad is not None  # each output takes 0.75 of its own pixel and 0.25 of its right neighbour
    assert torch.allclose(image.grad[0, 0, :, 0], torch.full((4,), 0.75))
    assert torch.allclose(image.grad[0, 0, :, 1:7], torch.ones(4, 6))


def test_flow_inputs_are_checked() -> None:
    with pytest.raises(OptionError, match="uint8"):
        to_grey(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(OptionError, match="one size"):
        dis_flow(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(OptionError, match="H x W x 2"):
        flow_tensor(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(OptionError, match="one size"):
        warp(torch.zeros(1, 3, 4, 4), np.zeros((4, 5, 2), np.float32))
