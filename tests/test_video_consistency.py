"""Ruder's forward/backward consistency check: on true flows it finds exactly the uncovered pixels, on DIS flows
it still marks them, and a pan's revealed strip leaves the frame."""

from __future__ import annotations

import numpy as np
import torch

from painterly.video.consistency import consistency_mask, consistency_parts
from painterly.video.flow import flow_pair
from painterly.video.temporal import earlier_frames, long_term_weights

from .video_clips import HEIGHT, WIDTH, moving_square, pan, revealed_by_square, square_flows


def test_on_the_true_flows_of_a_moving_square_exactly_the_uncovered_strip_is_disoccluded() -> None:
    forward, backward = square_flows(0)
    parts = consistency_parts(backward, forward)  # the mask of frame 1, which the temporal term of frame 1 uses
    assert np.array_equal(parts.disoccluded.numpy(), revealed_by_square(0))
    # Central differences see the square's outline: the pixels with a 4-neighbour on the other side of its edge.
    square = backward[..., 0] != 0
    padded = np.pad(square, 1, mode="edge")
    neighbours = [padded[1:-1, :-2], padded[1:-1, 2:], padded[:-2, 1:-1], padded[2:, 1:-1]]
    outline = np.logical_or.reduce([n != square for n in neighbours])
    expected = outline & ~revealed_by_square(0) & ~parts.outside.numpy()
    assert np.array_equal(parts.motion_boundary.numpy(), expected)
    mask = consistency_mask(backward, forward).numpy()
    assert mask[revealed_by_square(0)].max() == 0.0, "the blur widens a disocclusion outwards, never inwards"
    assert mask[20:28, 20:32].min() == 1.0 and mask[38:44, 4:-4].min() == 1.0, "the square and background are kept"


def test_the_flow_of_a_still_frame_is_reliable_but_for_the_c_code_edge_rule() -> None:
    still = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    parts = consistency_parts(still, still)
    assert not parts.disoccluded.any() and not parts.motion_boundary.any()
    # A zero flow lands the last row and column on x + 1 = size: outside, as consistencyChecker.cpp decides.
    assert parts.outside.numpy()[:-1, :-1].sum() == 0 and parts.outside.numpy()[-1].all()


def test_a_pans_revealed_strip_is_unreliable_and_the_rest_reliable() -> None:
    shift = 4
    first, second = pan(2, shift)
    pair = flow_pair(first, second)
    mask = consistency_mask(pair.backward, pair.forward).numpy()  # frame 1: its right strip was not in frame 0
    assert mask[:, -shift:].mean() < 0.05
    assert mask[4:-4, 4 : -shift - 4].mean() > 0.97


def test_on_dis_flows_the_square_uncovers_unreliable_pixels() -> None:
    first, second = moving_square(2)
    pair = flow_pair(first, second)
    mask = consistency_mask(pair.backward, pair.forward).numpy()
    assert mask[revealed_by_square(0)].mean() < 0.2
    assert mask[38:46, 40:60].mean() > 0.95 and mask[18:30, 22:30].mean() > 0.95


def test_long_term_weights_keep_for_older_frames_only_what_closer_ones_miss() -> None:
    closest = torch.tensor([[1.0, 0.0, 0.0, 0.5]])
    older = torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    oldest = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    first, second, third = long_term_weights([closest, older, oldest])
    assert torch.equal(first, closest)
    assert torch.equal(second, torch.tensor([[0.0, 1.0, 0.0, 0.5]]))
    assert torch.equal(third, torch.tensor([[0.0, 0.0, 1.0, 0.0]]))
    assert long_term_weights([]) == []
    assert earlier_frames(0) == [] and earlier_frames(3) == [2, 1] and earlier_frames(9) == [8, 7, 5]
