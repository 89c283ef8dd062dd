"""The temporal term: Ruder's (1/D) Σ c (x − ω)², its own gradient, coarse stages, and its place in an objective."""

from __future__ import annotations

import pytest
import torch

from painterly.errors import OptionError
from painterly.losses.core import PixelLoss
from painterly.objective.whole import PixelTerm
from painterly.video.temporal import TemporalLoss, temporal_term, temporal_value_and_grad


def _random(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_the_value_is_the_weighted_mean_square_over_all_entries() -> None:
    image, warped = _random(1, 3, 5, 7, seed=0), _random(1, 3, 5, 7, seed=1)
    weights = (_random(5, 7, seed=2) > 0.5).float()
    loss = TemporalLoss([warped], [weights])
    expected = (weights * (image - warped) ** 2).sum() / image.numel()
    assert isinstance(loss, PixelLoss) and loss.name == "temporal"
    assert float(loss(image)) == pytest.approx(float(expected), rel=1e-6)


def test_its_own_gradient_is_autograds_of_the_formula_and_zero_where_the_weight_is_zero() -> None:
    warped = [_random(1, 3, 6, 6, seed=s) for s in (1, 2)]
    weights = [_random(6, 6, seed=3), (_random(6, 6, seed=4) > 0.5).float()]
    weights[0][0] = 0.0
    weights[1][0] = 0.0
    image = _random(1, 3, 6, 6, seed=0).requires_grad_(True)
    TemporalLoss(warped, weights)(image).backward()
    reference = _random(1, 3, 6, 6, seed=0).requires_grad_(True)
    plain = sum((w * (reference - x) ** 2).sum() for x, w in zip(warped, weights, strict=True)) / reference.numel()
    plain.backward()
    assert image.grad is not None and reference.grad is not None
    assert torch.allclose(image.grad, reference.grad, atol=1e-7)
    assert float(image.grad[..., 0, :].abs().max()) == 0.0, "an unreliable pixel is free"
    value, grad = temporal_value_and_grad(image.detach(), torch.cat(warped), torch.stack(weights).unsqueeze(1))
    assert float(value) == pytest.approx(float(plain.detach()), rel=1e-6)
    assert torch.allclose(grad, reference.grad, atol=1e-7)


def test_minimising_it_moves_reliable_pixels_to_the_warped_frame_and_leaves_the_others() -> None:
    warped = _random(1, 3, 8, 8, seed=1)
    weights = torch.ones(8, 8)
    weights[:, :3] = 0.0
    start = _random(1, 3, 8, 8, seed=0)
    image = start.clone().requires_grad_(True)
    optimiser = torch.optim.SGD([image], lr=image.numel() / 2.0)  # one step of size D / 2 lands on ω exactly
    loss = TemporalLoss([warped], [weights])
    optimiser.zero_grad()
    loss(image).backward()
    optimiser.step()
    assert torch.allclose(image[..., 3:], warped[..., 3:], atol=1e-5)
    assert torch.equal(image[..., :3], start[..., :3])


def test_a_coarse_stage_compares_at_its_own_size() -> None:
    warped, weights = torch.full((1, 3, 8, 8), 0.5), torch.ones(8, 8)
    loss = TemporalLoss([warped], [weights])
    small = torch.zeros(1, 3, 4, 4)
    assert float(loss(small)) == pytest.approx(0.25)
    assert loss.at_size(4, 4)[0].shape == (1, 3, 4, 4) and loss.at_size(4, 4)[0] is loss.at_size(4, 4)[0]


def test_as_an_objective_term_it_is_weighted_and_checked() -> None:
    warped, weights = torch.zeros(1, 3, 4, 4), torch.ones(4, 4)
    term = temporal_term(10.0, [warped], [weights])
    assert isinstance(term, PixelTerm) and term.loss.name == "temporal"
    assert float(term(torch.ones(1, 3, 4, 4))) == pytest.approx(10.0)
    with pytest.raises(OptionError, match="0 or more"):
        temporal_term(-1.0, [warped], [weights])
    with pytest.raises(OptionError, match="one weight mask per warped frame"):
        TemporalLoss([warped], [])
    with pytest.raises(OptionError, match="one size"):
        TemporalLoss([warped], [torch.ones(5, 4)])


def test_a_run_given_the_term_minimises_it_at_every_stage(tiny_weights, pair) -> None:
    """StyleTransferRun's ``pixel_terms`` join each stage's objective (a coarse stage compares at its own size)."""
    from painterly.config import RunConfig
    from painterly.session import Session

    term = temporal_term(5.0, [torch.zeros(1, 3, 36, 48)], [torch.ones(36, 48)])
    records: list[tuple[int, float]] = []
    config = RunConfig(weights=tiny_weights, size=48, start_size=32, iterations=6, device="cpu")
    Session("cpu").run(*pair, config, pixel_terms=[term],
                       on_step=lambda r: records.append((r.stage, float(r.losses["temporal"]))))  # fmt: skip
    assert {stage for stage, _ in records} == {1, 2} and all(value > 0 for _, value in records)
