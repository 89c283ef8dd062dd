"""Core losses: Gram matrices are size-normalised; losses vanish at their targets."""

from __future__ import annotations

import torch

from painterly.losses import ContentLoss, GramLoss, gram_matrix, total_variation


def test_gram_matrix_is_independent_of_image_size() -> None:
    features = torch.rand(1, 5, 6, 7)
    tiled = features.repeat(1, 1, 3, 2)  # same statistics over six times the area
    assert torch.allclose(gram_matrix(features), gram_matrix(tiled), atol=1e-6)
    flat = features.reshape(5, -1)
    assert torch.allclose(gram_matrix(features)[0], flat @ flat.T / 42, atol=1e-6)


def test_losses_are_zero_at_their_target_and_positive_elsewhere() -> None:
    target, other = torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8)
    for loss in (ContentLoss(), GramLoss()):
        prepared = loss.prepare(target)
        assert float(loss(target, prepared)) < 1e-10
        assert float(loss(other, prepared)) > 1e-4


def test_gram_loss_of_several_styles_equals_loss_to_blended_target_up_to_a_constant() -> None:
    first, second, image = torch.rand(1, 3, 5, 5), torch.rand(1, 3, 5, 5), torch.rand(1, 3, 5, 5, requires_grad=True)
    loss = GramLoss()
    summed = 0.3 * loss(image, loss.prepare(first)) + 0.7 * loss(image, loss.prepare(second))
    blended = torch.nn.functional.mse_loss(gram_matrix(image), 0.3 * gram_matrix(first) + 0.7 * gram_matrix(second))
    (grad_summed,) = torch.autograd.grad(summed, image)
    (grad_blended,) = torch.autograd.grad(blended, image)
    assert torch.allclose(grad_summed, grad_blended, atol=1e-6)


def test_total_variation_is_zero_for_flat_images_and_grows_with_noise() -> None:
    flat = torch.full((1, 3, 8, 8), 0.4)
    assert float(total_variation(flat)) == 0.0
    noisy = flat + 0.1 * torch.randn(1, 3, 8, 8)
    assert float(total_variation(noisy)) > float(total_variation(flat + 0.01 * torch.randn(1, 3, 8, 8)))
