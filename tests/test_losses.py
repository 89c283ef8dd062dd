"""Core losses: Gram matrices are size-normalised; losses vanish at their targets."""

from __future__ import annotations

import torch

from painterly.losses import ContentLoss, GramLoss, gram_matrix, total_variation


def _generator(seed: int) -> torch.Generator:
    """Seeded, so a failure repeats and a pass is not luck."""
    return torch.Generator().manual_seed(seed)


def test_gram_matrix_is_independent_of_image_size() -> None:
    features = torch.rand(1, 5, 6, 7, generator=_generator(0))
    tiled = features.repeat(1, 1, 3, 2)  # same statistics over six times the area
    assert torch.allclose(gram_matrix(features), gram_matrix(tiled), atol=1e-6)
    flat = features.reshape(5, -1)
    assert torch.allclose(gram_matrix(features)[0], flat @ flat.T / 42, atol=1e-6)


def test_losses_are_zero_at_their_target_and_positive_elsewhere() -> None:
    generator = _generator(1)
    target, other = torch.rand(1, 4, 8, 8, generator=generator), torch.rand(1, 4, 8, 8, generator=generator)
    for loss in (ContentLoss(), GramLoss()):
        prepared = loss.prepare(target)
        assert float(loss(target, prepared)) < 1e-10
        assert float(loss(other, prepared)) > 1e-4


def test_total_variation_is_zero_for_flat_images_and_grows_with_noise() -> None:
    flat = torch.full((1, 3, 8, 8), 0.4)
    assert float(total_variation(flat)) == 0.0
    generator = _generator(3)
    noisy = flat + 0.1 * torch.randn(1, 3, 8, 8, generator=generator)
    quieter = flat + 0.01 * torch.randn(1, 3, 8, 8, generator=generator)
    assert float(total_variation(noisy)) > float(total_variation(quieter))
