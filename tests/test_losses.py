"""Core losses: Gram matrices are size-normalised; losses vanish at their targets; their closed-form feature
gradients are autograd's."""

from __future__ import annotations

import pytest
import torch

from painterly.losses.core import ContentLoss, GramLoss, gram_matrix, total_variation


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


# --- the closed-form feature gradients the tiled evaluator uses (theory.md §7, §10) ------------------------------

PRECISIONS = [torch.float32, torch.bfloat16]


def _features(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Random features as the encoder hands them out on the CPU: channels_last, exact in ``dtype``."""
    features = torch.rand(shape, generator=_generator(seed)).to(dtype)
    return features.contiguous(memory_format=torch.channels_last)


def _autograd(function, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Value and gradient by autograd through ``function`` (float32 arithmetic; the gradient in the leaf's dtype)."""
    leaf = features.clone().requires_grad_(True)
    value = function(leaf)
    (gradient,) = torch.autograd.grad(value, leaf)
    return value.detach(), gradient


def _relative_error(computed: torch.Tensor, reference: torch.Tensor) -> float:
    return float((computed.float() - reference.float()).norm() / reference.float().norm())


@pytest.mark.parametrize("dtype", PRECISIONS)
def test_content_closed_form_gradient_equals_autograd(dtype: torch.dtype) -> None:
    features = _features((1, 5, 6, 7), dtype, seed=4)
    target = ContentLoss().prepare(torch.rand(1, 5, 6, 7, generator=_generator(5)))
    weight = 0.37
    value, gradient = ContentLoss().value_and_feature_grad(features, target, weight, features.numel())
    expected_value, expected = _autograd(lambda f: weight * torch.nn.functional.mse_loss(f.float(), target), features)
    assert gradient.dtype == dtype and gradient.shape == features.shape
    assert float(value) == pytest.approx(float(expected_value), rel=1e-6)
    if dtype == torch.float32:  # the same products, rounded in another order
        torch.testing.assert_close(gradient, expected, rtol=1e-6, atol=0.0)
    else:  # both round a float32 gradient to bfloat16 once: at most one bfloat16 step apart
        torch.testing.assert_close(gradient.float(), expected.float(), rtol=2**-7, atol=0.0)


def test_content_window_shares_add_up_to_the_whole_image() -> None:
    """A core's share is its own positions' part of the whole mean: what lets the tiled evaluator sum them."""
    features = _features((1, 4, 9, 8), torch.float32, seed=6)
    target = torch.rand(1, 4, 9, 8, generator=_generator(7))
    loss, weight, count = ContentLoss(), 2.5, features.numel()
    whole_value, whole_gradient = loss.value_and_feature_grad(features, target, weight, count)
    shares = [loss.value_and_feature_grad(features[..., rows, :], target[..., rows, :], weight, count)
              for rows in (slice(0, 4), slice(4, 9))]  # fmt: skip
    assert float(sum(value for value, _ in shares)) == pytest.approx(float(whole_value), rel=1e-6)
    assert torch.equal(torch.cat([gradient for _, gradient in shares], dim=-2), whole_gradient)


def _gram_closed_form(features: torch.Tensor, target: torch.Tensor, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gram loss and its feature gradient as the tiled evaluator forms them, for one window that is the image."""
    batch, channels, height, width = features.shape
    loss = GramLoss()
    value, gram_grad = loss.value_and_gram_grad(gram_matrix(features.float())[0], target[0], weight)
    flat = features.reshape(batch, channels, height * width)
    gradient = loss.feature_grad(gram_grad, flat, height * width, features.dtype)
    return value, gradient.reshape(features.shape)


@pytest.mark.parametrize("dtype", PRECISIONS)
def test_gram_closed_form_gradient_equals_autograd(dtype: torch.dtype) -> None:
    features = _features((1, 6, 7, 8), dtype, seed=8)
    target = GramLoss().prepare(torch.rand(1, 6, 9, 5, generator=_generator(9)))
    weight = 0.37
    value, gradient = _gram_closed_form(features, target, weight)

    def through_bmm(leaf: torch.Tensor) -> torch.Tensor:  # autograd's own gradient: through F Fᵀ, two products
        return weight * torch.nn.functional.mse_loss(gram_matrix(leaf.float()), target)

    expected_value, expected = _autograd(through_bmm, features)
    assert gradient.dtype == dtype and gradient.shape == features.shape
    assert float(value) == pytest.approx(float(expected_value), rel=1e-5)
    if dtype == torch.float32:
        torch.testing.assert_close(gradient, expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max()))
        # The whole-image backward (_GramMSE) folds the same factors in another order: the same gradient.
        _, whole = _autograd(lambda leaf: weight * GramLoss()(leaf, target), features)
        torch.testing.assert_close(whole, gradient, rtol=1e-5, atol=1e-6 * float(expected.abs().max()))
    else:  # the product in bfloat16, as the mixed-precision backward computes it
        assert 0 < _relative_error(gradient, expected) < 1e-2


def test_gram_feature_gradient_of_a_core_is_its_part_of_the_whole() -> None:
    """With dL/dG of the whole image, each core's features give their own positions' gradient."""
    features = _features((1, 5, 8, 6), torch.float32, seed=10)
    target = GramLoss().prepare(torch.rand(1, 5, 8, 6, generator=_generator(11)))
    loss = GramLoss()
    _, gram_grad = loss.value_and_gram_grad(gram_matrix(features)[0], target[0], 1.5)
    whole = _gram_closed_form(features, target, 1.5)[1]
    cores = []
    for rows in (slice(0, 3), slice(3, 8)):
        core = features[..., rows, :]
        flat = core.reshape(1, 5, -1)
        cores.append(loss.feature_grad(gram_grad, flat, positions=8 * 6).reshape(core.shape))
    torch.testing.assert_close(torch.cat(cores, dim=-2), whole)
