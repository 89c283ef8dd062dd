"""The style-loss variants (painterly.losses.style), the Laplacian term, and the formulas of docs/theory.md."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from painterly.apps.cli import build_parser
from painterly.losses.core import ContentLoss, GramLoss, laplacian
from painterly.losses.registry import STYLE_LOSSES, make_style_loss
from painterly.losses.style import HistogramLoss, MRFLoss, ShiftedGramLoss, WassersteinLoss, match_histograms
from painterly.nets.encoder import VGGEncoder
from painterly.objective.whole import Objective
from painterly.stylize import stylize

VARIANTS = ("gram", "shifted-gram", "wasserstein", "mrf", "histogram")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy machine OpenMP's waiting makes each op ~1000x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def features(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Non-negative, sparse-ish features like a ReLU layer's, with distinct values."""
    generator = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(*shape, generator=generator, dtype=dtype) + 0.5)


def test_every_variant_is_registered_on_import():
    assert set(VARIANTS) <= set(STYLE_LOSSES)
    for name in VARIANTS:
        loss = make_style_loss(name)
        assert loss.name == name


@pytest.mark.parametrize("name", VARIANTS)
def test_loss_is_zero_at_target_and_positive_elsewhere(name):
    torch.manual_seed(0)
    loss = make_style_loss(name)
    style = features(1, 6, 9, 8, seed=1)
    target = loss.prepare(style)
    assert float(loss(style, target)) == pytest.approx(0.0, abs=1e-5)
    assert float(loss(features(1, 6, 9, 8, seed=2), target)) > 1e-3


def test_content_loss_is_zero_at_target():
    content = features(1, 5, 6, 6)
    loss = ContentLoss()
    assert float(loss(content, loss.prepare(content))) == 0.0


@pytest.mark.parametrize("name", [*VARIANTS, "mse"])
def test_gradient_matches_finite_differences(name):
    torch.manual_seed(0)
    loss = ContentLoss() if name == "mse" else make_style_loss(name)
    generator = torch.Generator().manual_seed(0)
    target = loss.prepare(torch.rand(1, 3, 5, 5, generator=generator, dtype=torch.float64))
    # Distinct values: at ties (e.g. a ReLU's zeros) the histogram's rank order, and so the loss, has a kink.
    image_features = torch.rand(1, 3, 5, 5, generator=generator, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: loss(f, target), (image_features,), eps=1e-6, atol=1e-6)


def test_laplacian_term_gradient_matches_finite_differences():
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 13, 18, generator=generator, dtype=torch.float64)  # not multiples of the pool size
    image = torch.rand(1, 3, 13, 18, generator=generator, dtype=torch.float64).requires_grad_(True)
    target = laplacian(content)
    assert torch.autograd.gradcheck(lambda x: (laplacian(x) - target).pow(2).mean(), (image,))


# --- the closed-form gradients written in docs/theory.md -------------------------------------------


def _autograd(loss, image_features, target):
    image_features = image_features.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(loss(image_features, target), image_features)
    return gradient


def test_content_gradient_formula():
    image_features, content = features(1, 4, 5, 6, seed=1, dtype=torch.float64), features(1, 4, 5, 6, seed=2)
    target = content.double()
    expected = 2 * (image_features - target) / image_features.numel()
    torch.testing.assert_close(_autograd(ContentLoss(), image_features, target), expected)


@pytest.mark.parametrize("loss", [GramLoss(), ShiftedGramLoss()])
def test_gram_gradient_formula(loss):
    shift = getattr(loss, "shift", 0.0)
    image_features = features(1, 4, 5, 6, seed=1, dtype=torch.float64)
    target = loss.prepare(features(1, 4, 7, 5, seed=2, dtype=torch.float64))
    channels, positions = 4, 30
    flat = (image_features + shift).reshape(channels, positions)
    difference = flat @ flat.T / positions - target[0]
    expected = (4 * difference @ flat / (channels**2 * positions)).view_as(image_features)
    torch.testing.assert_close(_autograd(loss, image_features, target), expected)


def test_wasserstein_gradient_is_the_gaussian_transport_map():
    loss = WassersteinLoss()
    image_features = features(1, 4, 6, 6, seed=1, dtype=torch.float64)
    target = loss.prepare(features(1, 4, 7, 5, seed=2, dtype=torch.float64))
    style_mean, root = target[0], target[1:]
    channels, positions = 4, 36
    flat = image_features.reshape(channels, positions)
    mean = flat.mean(1, keepdim=True)
    covariance = (flat - mean) @ (flat - mean).T / positions
    values, vectors = torch.linalg.eigh(root @ covariance @ root)
    inverse_root = (vectors / values.sqrt()) @ vectors.T
    transport = root @ inverse_root @ root  # T with T Sigma T = Sigma_s
    torch.testing.assert_close(transport @ covariance @ transport, root @ root)
    eye = torch.eye(channels, dtype=torch.float64)
    expected = 2 * loss.scale / (channels * positions) * ((eye - transport) @ (flat - mean) + (mean.T - style_mean).T)
    torch.testing.assert_close(_autograd(loss, image_features, target), expected.view_as(image_features))


def test_wasserstein_is_the_closed_form_in_one_dimension():
    loss = WassersteinLoss()
    style, image_features = features(1, 1, 8, 8, seed=1), features(1, 1, 8, 8, seed=2)
    expected = (image_features.mean() - style.mean()) ** 2 + (
        image_features.std(unbiased=False) - style.std(unbiased=False)
    ) ** 2
    assert float(loss(image_features, loss.prepare(style))) == pytest.approx(loss.scale * float(expected), rel=1e-4)


def test_histogram_gradient_formula():
    loss = HistogramLoss()
    image_features = features(1, 3, 5, 6, seed=1, dtype=torch.float64)
    target = loss.prepare(features(1, 3, 7, 5, seed=2, dtype=torch.float64))
    gram_part = _autograd(GramLoss(), image_features, target[:, :3].unsqueeze(0))
    matched = match_histograms(image_features, target[:, 3:])
    expected = gram_part + loss.histogram_weight * 2 * (image_features - matched) / image_features.numel()
    torch.testing.assert_close(_autograd(loss, image_features, target), expected)


def test_mrf_gradient_is_the_folded_patch_difference():
    loss = MRFLoss()
    image_features = features(1, 3, 6, 7, seed=1, dtype=torch.float64)
    target = loss.prepare(features(1, 3, 5, 5, seed=2, dtype=torch.float64))
    patches = F.unfold(image_features, 3)
    matched = target[loss.match(image_features, target)].transpose(1, 2)
    expected = F.fold(2 * loss.scale * (patches - matched) / patches.numel(), (6, 7), 3)
    torch.testing.assert_close(_autograd(loss, image_features, target), expected)


# --- invariances --------------------------------------------------------------------------------------


def _permute_positions(tensor: torch.Tensor, seed: int = 0) -> torch.Tensor:
    batch, channels, height, width = tensor.shape
    order = torch.randperm(height * width, generator=torch.Generator().manual_seed(seed))
    return tensor.reshape(batch, channels, -1)[..., order].reshape(tensor.shape)


@pytest.mark.parametrize("name", ["gram", "shifted-gram", "wasserstein", "histogram"])
def test_statistics_losses_ignore_where_things_are(name):
    torch.manual_seed(0)
    loss = make_style_loss(name)
    target = loss.prepare(features(1, 5, 8, 8, seed=1))
    image_features = features(1, 5, 8, 8, seed=2)
    moved = _permute_positions(image_features)
    assert not torch.equal(moved, image_features)
    assert float(loss(moved, target)) == pytest.approx(float(loss(image_features, target)), rel=1e-5)


def test_content_and_mrf_losses_see_where_things_are():
    image_features = features(1, 5, 8, 8, seed=2)
    moved = _permute_positions(image_features)
    content = ContentLoss()
    target = content.prepare(image_features)
    assert float(content(image_features, target)) == 0.0
    assert float(content(moved, target)) > 0.1
    mrf = MRFLoss()
    patches = mrf.prepare(image_features)
    assert float(mrf(image_features, patches)) == pytest.approx(0.0, abs=1e-6)
    assert float(mrf(moved, patches)) / mrf.scale > 0.1


def test_multi_style_gram_equals_blended_target_up_to_a_constant():
    """theory.md §5: sum_s b_s mean(G - A_s)^2 = mean(G - sum_s b_s A_s)^2 + const, so the gradients agree."""
    loss = GramLoss()
    targets = [loss.prepare(features(1, 4, 6, 6, seed=seed, dtype=torch.float64)) for seed in (1, 2, 3)]
    blend = [0.5, 0.3, 0.2]
    blended = sum(b * a for b, a in zip(blend, targets, strict=True))
    image_features = features(1, 4, 6, 6, seed=9, dtype=torch.float64).requires_grad_(True)
    several = sum(b * loss(image_features, a) for b, a in zip(blend, targets, strict=True))
    one = loss(image_features, blended)
    constant = sum(b * F.mse_loss(a, blended) for b, a in zip(blend, targets, strict=True))
    torch.testing.assert_close(several, one + constant)
    (gradient_several,) = torch.autograd.grad(several, image_features)
    (gradient_one,) = torch.autograd.grad(one, image_features)
    torch.testing.assert_close(gradient_several, gradient_one)


# --- the variants' own mechanics ----------------------------------------------------------------------


@pytest.mark.parametrize("loss", [MRFLoss(), HistogramLoss(), WassersteinLoss()])
def test_optimising_the_features_lowers_the_loss(loss):
    torch.manual_seed(0)
    target = loss.prepare(features(1, 4, 10, 10, seed=1))
    free = features(1, 4, 10, 10, seed=2).requires_grad_(True)
    optimizer = torch.optim.Adam([free], lr=0.05)
    with torch.no_grad():
        start = float(loss(free, target))
    for _ in range(60):
        optimizer.zero_grad()
        loss(free, target).backward()
        optimizer.step()
    with torch.no_grad():
        assert float(loss(free, target)) < 0.5 * start


def test_histogram_matching_keeps_order_and_takes_the_style_values():
    style = features(1, 3, 6, 6, seed=1)
    sorted_style = style.reshape(3, -1).sort(dim=1).values
    image_features = features(1, 3, 6, 6, seed=2) * 3
    matched = match_histograms(image_features, sorted_style)
    torch.testing.assert_close(matched.reshape(3, -1).sort(dim=1).values, sorted_style)
    # rank-preserving: the remapped values are in the same order as the originals, channel by channel
    order = image_features.reshape(3, -1).argsort(dim=1)
    remapped_in_order = matched.reshape(3, -1).gather(1, order)
    assert bool((remapped_in_order.diff(dim=1) >= 0).all())


def test_histogram_matching_interpolates_between_sizes():
    sorted_style = torch.tensor([[0.0, 1.0, 2.0]])
    image_features = torch.tensor([4.0, 1.0, 3.0, 2.0, 0.0]).view(1, 1, 1, 5)
    matched = match_histograms(image_features, sorted_style)
    torch.testing.assert_close(matched.view(-1), torch.tensor([2.0, 0.5, 1.5, 1.0, 0.0]))


def test_mrf_subsamples_style_patches_and_chunks_the_matching():
    class Small(MRFLoss):
        max_patches = 10
        max_response = 7  # one patch per chunk

    torch.manual_seed(0)
    style, image_features = features(1, 3, 9, 9, seed=1), features(1, 3, 8, 8, seed=2)
    assert MRFLoss().prepare(style).shape == (49, 27)
    small_target = Small().prepare(style)
    assert small_target.shape == (10, 27)
    chunked = Small().match(image_features, small_target)
    torch.testing.assert_close(chunked, MRFLoss().match(image_features, small_target))


def test_mrf_match_prefers_the_same_direction_not_the_larger_patch():
    loss = MRFLoss()
    unit = torch.zeros(2, 3, 3)
    unit[0] = 1.0
    other = torch.zeros(2, 3, 3)
    other[1] = 5.0  # larger, but orthogonal to the query
    target = torch.stack([other.flatten(), unit.flatten()])
    query = (unit * 0.5).unsqueeze(0)
    assert loss.match(query, target).tolist() == [[1]]


def test_mrf_handles_maps_smaller_than_a_patch():
    loss = MRFLoss()
    target = loss.prepare(features(1, 3, 2, 2, seed=1))
    value = loss(features(1, 3, 1, 2, seed=2).requires_grad_(True), target)
    assert torch.isfinite(value)


# --- the Laplacian term -------------------------------------------------------------------------------


def test_laplacian_vanishes_on_flat_and_linear_images():
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert float(laplacian(flat).abs().max()) == pytest.approx(0.0, abs=1e-6)
    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32)
    interior = laplacian(ramp)[..., 1:-1, 1:-1]  # edge padding bends the ramp only at the border
    assert float(interior.abs().max()) == pytest.approx(0.0, abs=1e-6)
    assert laplacian(ramp).shape == (1, 3, 8, 8)


def test_objective_reports_the_laplacian_term(tiny_weights):
    encoder = VGGEncoder(tiny_weights, ["relu1_1", "relu2_1"])
    generator = torch.Generator().manual_seed(0)
    content, style = torch.rand(2, 1, 3, 24, 24, generator=generator)
    objective = Objective.build(
        encoder,
        content=content,
        styles=[style],
        content_loss=ContentLoss(),
        style_loss=GramLoss(),
        content_layer_weights={"relu2_1": 1.0},
        style_layer_weights={"relu1_1": 1.0},
        style_blend=[1.0],
        tv_weight=0.0,
        laplacian_weight=10.0,
    )
    _, at_content = objective(content)
    assert float(at_content["laplacian"]) == 0.0
    _, at_style = objective(style)
    expected = 10.0 * float((laplacian(style) - laplacian(content)).pow(2).mean())
    assert float(at_style["laplacian"]) == pytest.approx(expected, rel=1e-5)


# --- through the product ------------------------------------------------------------------------------


def _picture(seed: int) -> Image.Image:
    generator = torch.Generator().manual_seed(seed)
    array = (torch.rand(32, 40, 3, generator=generator) * 255).byte().numpy()
    return Image.fromarray(array, "RGB")


@pytest.mark.parametrize("name", sorted(STYLE_LOSSES))
def test_every_variant_runs_through_stylize(tiny_weights, name):
    steps = []
    content = _picture(0)
    result = stylize(
        content,
        _picture(1),
        weights=tiny_weights,
        size=32,
        start_size=None,
        iterations=3,
        style_loss=name,
        laplacian_weight=1.0,
        device="cpu",
        on_step=lambda record: steps.append(record.losses),
    )
    assert result.size == (32, 26)
    assert len(steps) == 3
    assert {"content", "style", "laplacian", "total"} <= set(steps[-1])
    assert all(torch.isfinite(torch.tensor(list(losses.values()))).all() for losses in steps)
    assert steps[-1]["total"] < steps[0]["total"]


def test_help_lists_every_variant_and_the_laplacian_weight():
    text = build_parser().format_help()
    for name in STYLE_LOSSES:
        assert name in text
    assert "--style-loss" in text
    assert "--laplacian-weight" in text
    args = build_parser().parse_args(["c.jpg", "s.jpg", "--style-loss", "mrf", "--laplacian-weight", "5"])
    assert (args.style_loss, args.laplacian_weight) == ("mrf", 5.0)


def test_negative_laplacian_weight_is_refused(tiny_weights):
    from painterly.errors import OptionError

    with pytest.raises(OptionError, match="laplacian weight"):
        stylize(_picture(0), _picture(1), weights=tiny_weights, size=32, iterations=1, laplacian_weight=-1.0)
