"""Mixed precision: the convolutions in bfloat16, everything the optimiser sees in float32."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from painterly import OptionError, stylize
from painterly.nets.encoder import VGGEncoder
from painterly.nets.weights import VGGWeights

from .conftest import run_for

LAYERS = ["relu1_1", "relu2_1", "relu3_1"]


def test_mixed_precision_features_are_float32_and_close_and_float32_comes_back(tiny_weights: VGGWeights) -> None:
    encoder = VGGEncoder(tiny_weights, LAYERS)
    image = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        exact = encoder(image)
        encoder.compute_dtype = torch.bfloat16
        mixed = encoder(image)
        encoder.compute_dtype = None
        again = encoder(image)
    for layer in LAYERS:
        assert mixed[layer].dtype == torch.float32
        relative = float((mixed[layer] - exact[layer]).norm() / exact[layer].norm())
        assert 0 < relative < 0.02, layer  # really computed in bfloat16, and still close
        assert torch.equal(again[layer], exact[layer]), "the float32 weights were left as they were"


def test_a_mixed_precision_run_moves_toward_the_style(pair: tuple[Path, Path], tiny_weights: VGGWeights) -> None:
    content, style = pair
    losses: list[float] = []
    image = stylize(content, style, size=48, start_size=None, iterations=15, mixed_precision=True, device="cpu",
                    weights=tiny_weights, style_layers=LAYERS, content_layers=["relu2_1"],
                    on_step=lambda record: losses.append(record.losses["style"]))  # fmt: skip
    assert image.size == (48, 36)
    assert losses[-1] < 0.5 * losses[0]


def test_gram_gradient_in_bfloat16_keeps_the_loss_and_nearly_the_gradient() -> None:
    from painterly.losses.core import GramLoss

    generator = torch.Generator().manual_seed(2)
    # Features as a bfloat16 convolution hands them out: exact in bfloat16, delivered as float32.
    features = torch.rand(1, 32, 24, 24, generator=generator).to(torch.bfloat16).float()
    target = GramLoss().prepare(torch.rand(1, 32, 24, 24, generator=generator))
    results = {}
    for dtype in (None, torch.bfloat16):
        leaf = features.clone().requires_grad_(True)
        loss = GramLoss(gradient_dtype=dtype)(leaf, target)
        loss.backward()
        assert leaf.grad is not None and leaf.grad.dtype == torch.float32
        results[dtype] = (float(loss.detach()), leaf.grad)
    assert results[None][0] == results[torch.bfloat16][0], "the forward (the loss) stays in float32"
    exact, rounded = results[None][1], results[torch.bfloat16][1]
    relative = float((rounded - exact).norm() / exact.norm())
    assert 0 < relative < 0.01  # computed in bfloat16, and within its rounding


def test_gram_precision_follows_the_run_revision(pair, tiny_weights) -> None:
    options = {"weights": tiny_weights, "size": 32, "mixed_precision": True}
    # this revision: bfloat16 features straight into the Gram loss, its backward in their dtype
    current = run_for(*pair, **options).style_comparison
    assert current.accepts_low_precision and current.gradient_dtype is None
    float32_run = run_for(*pair, **{**options, "mixed_precision": False})
    assert float32_run.encoder.compute_dtype is None  # so its losses only ever see float32 features
    # the content loss follows the same revision rule
    objective, _ = run_for(*pair, **options).objective_at(32)
    assert [term.loss.accepts_low_precision for term in objective.terms if term.kind == "content"] == [True]
    objective, _ = run_for(*pair, **options, revision=2).objective_at(32)
    assert [term.loss.accepts_low_precision for term in objective.terms if term.kind == "content"] == [False]
    # a checkpoint of revision 2 resumes as it was made: float32 features, the backward product in bfloat16
    second = run_for(*pair, **options, revision=2).style_comparison
    assert not second.accepts_low_precision and second.gradient_dtype == torch.bfloat16
    # and one of revision 1: everything in float32
    first = run_for(*pair, **options, revision=1).style_comparison
    assert not first.accepts_low_precision and first.gradient_dtype is None
    with pytest.raises(OptionError, match="newer painterly"):
        run_for(*pair, **options, revision=99)


def _features_and_nearby_target(
    channels: int = 32, side: int = 40, batch: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """bfloat16 features (channels_last, as the encoder makes them on the CPU) and a target Gram matrix a few per
    cent away from their mean Gram matrix, as late in a run."""
    from painterly.losses.core import gram_matrix

    generator = torch.Generator().manual_seed(5)
    features = torch.rand(batch, channels, side, side, generator=generator).to(torch.bfloat16)
    features = features.contiguous(memory_format=torch.channels_last)
    exact_gram = gram_matrix(features.double()).mean(0, keepdim=True)
    noise = torch.randn(exact_gram.shape, generator=generator, dtype=torch.float64)
    return features, (exact_gram * (1 + 0.03 * noise)).float()


@pytest.mark.parametrize("batch", [1, 2])
def test_gram_difference_of_bfloat16_features_is_accurate_relative_to_the_difference(batch: int) -> None:
    from painterly.losses.core import gram_difference, gram_matrix

    features, target = _features_and_nearby_target(batch=batch)
    flat = features.reshape(batch, 32, -1)
    target = target.expand(batch, -1, -1)
    exact = gram_matrix(features.double()) - target.double()
    computed = gram_difference(flat, target)
    assert computed.dtype == torch.float32
    error = float((computed.double() - exact).norm() / exact.norm())
    naive = (gram_matrix(features).float() - target).double()  # the Gram matrix rounded to bfloat16 first
    naive_error = float((naive - exact).norm() / exact.norm())
    assert error < 2**-8, "within bfloat16's rounding of the difference itself"
    assert error < naive_error / 5, "far better than rounding the large Gram entries"


def test_gram_loss_takes_bfloat16_features_with_the_float32_loss_and_gradient() -> None:
    from painterly.losses.core import GramLoss

    features, target = _features_and_nearby_target()
    results = {}
    for name, leaf in (("float32", features.float()), ("bfloat16", features.clone())):
        leaf.requires_grad_(True)
        loss = GramLoss(accepts_low_precision=True)(leaf, target)
        loss.backward()
        assert leaf.grad is not None and leaf.grad.dtype == leaf.dtype  # joins the backward stream as it is
        results[name] = (float(loss.detach()), leaf.grad.float())
    assert results["bfloat16"][0] == pytest.approx(results["float32"][0], rel=1e-3)
    exact, rounded = results["float32"][1], results["bfloat16"][1]
    assert float((rounded - exact).norm() / exact.norm()) < 0.01


def test_an_objective_under_mixed_precision_copies_features_only_for_losses_that_need_float32(tiny_weights) -> None:
    """Losses declare whether they take bfloat16 features; the others get a float32 copy, and the totals agree."""
    from painterly.losses.core import ContentLoss, GramLoss
    from painterly.objective.whole import Objective

    encoder = VGGEncoder(tiny_weights, LAYERS)
    encoder.compute_dtype = torch.bfloat16
    generator = torch.Generator().manual_seed(3)
    content, style, image = (torch.rand(1, 3, 40, 48, generator=generator) for _ in range(3))
    seen: dict[str, list[torch.dtype]] = {"content": [], "style": []}

    class Watched(ContentLoss):
        accepts_low_precision = False  # as a loss written for float32 features declares

        def __call__(self, features, target):  # type: ignore[no-untyped-def]
            seen["content"].append(features.dtype)
            return super().__call__(features, target)

    class WatchedGram(GramLoss):
        def __call__(self, features, target):  # type: ignore[no-untyped-def]
            seen["style"].append(features.dtype)
            return super().__call__(features, target)

    results = []
    for accepts in (False, True):
        objective = Objective.build(
            encoder, content=content, styles=[style], content_loss=Watched(),
            style_loss=WatchedGram(accepts_low_precision=accepts), content_layer_weights={"relu2_1": 1.0},
            style_layer_weights=dict.fromkeys(LAYERS, 1.0), style_blend=[1.0], tv_weight=0.0,
        )  # fmt: skip
        leaf = image.clone().requires_grad_(True)
        total, _ = objective(leaf)
        total.backward()
        assert leaf.grad is not None
        results.append((float(total.detach()), leaf.grad))
    assert seen["content"] == [torch.float32, torch.float32]  # a loss that needs float32 always gets its copy
    assert seen["style"] == [torch.float32] * len(LAYERS) + [torch.bfloat16] * len(LAYERS)
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-3)
    assert float((results[1][1] - results[0][1]).norm() / results[0][1].norm()) < 0.02


def test_the_content_loss_takes_bfloat16_features_with_float32_arithmetic() -> None:
    from painterly.losses.core import ContentLoss

    generator = torch.Generator().manual_seed(4)
    features = torch.rand(1, 16, 12, 10, generator=generator).to(torch.bfloat16)
    target = ContentLoss().prepare(torch.rand(1, 16, 12, 10, generator=generator))
    native = features.clone().requires_grad_(True)
    loss = ContentLoss(accepts_low_precision=True)(native, target)
    loss.backward()
    copied = features.float().requires_grad_(True)  # the float32 path: a copy and torch's mse_loss
    expected = torch.nn.functional.mse_loss(copied, target)
    expected.backward()
    assert native.grad is not None and copied.grad is not None
    assert loss.dtype == torch.float32 and float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert native.grad.dtype == torch.bfloat16  # handed back in the features' dtype, rounded once
    assert torch.allclose(native.grad.float(), copied.grad, rtol=2**-8, atol=0)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("compute_dtype", [None, torch.bfloat16])
def test_a_revision_2_objective_computes_exactly_as_revision_2_did(
    tiny_weights, normalize: bool, compute_dtype: torch.dtype | None
) -> None:
    """Checkpoints of revision 2 resume bit-for-bit: float32 features from the encoder, ``mse_loss`` for content."""
    from painterly.losses.core import ContentLoss, GramLoss
    from painterly.objective.whole import NormalizeGradient, Objective

    encoder = VGGEncoder(tiny_weights, LAYERS)
    encoder.compute_dtype = compute_dtype
    generator = torch.Generator().manual_seed(6)
    content, style, image = (torch.rand(1, 3, 40, 48, generator=generator) for _ in range(3))
    content_weights, style_weights = {"relu2_1": 0.37}, {"relu1_1": 1.3, "relu2_1": 0.7, "relu3_1": 2.1}
    objective = Objective.build(
        encoder, content=content, styles=[style], content_loss=ContentLoss(), style_loss=GramLoss(compute_dtype),
        content_layer_weights=content_weights, style_layer_weights=style_weights, style_blend=[1.0],
        tv_weight=0.0, normalize_gradients=normalize,
    )  # fmt: skip
    leaf = image.clone().requires_grad_(True)
    objective(leaf)[0].backward()

    # Revision 2 as it was written: the encoder's float32 features, torch's mse_loss, the Gram loss on float32.
    reference = image.clone().requires_grad_(True)
    features = encoder(reference)
    parts: dict[str, torch.Tensor] = {}
    for term in objective.terms:
        layer_features = NormalizeGradient.apply(features[term.layer]) if normalize else features[term.layer]
        if term.kind == "content":
            value = term.weight * torch.nn.functional.mse_loss(layer_features, term.target)
        else:
            value = term.weight * GramLoss(compute_dtype)(layer_features, term.target)
        parts[term.kind] = parts[term.kind] + value if term.kind in parts else value
    torch.stack(list(parts.values())).sum().backward()
    assert leaf.grad is not None and reference.grad is not None
    assert torch.equal(leaf.grad, reference.grad)


def test_gradient_normalisation_under_mixed_precision_works_on_float32_features(tiny_weights) -> None:
    from painterly.losses.core import ContentLoss, GramLoss
    from painterly.objective.whole import Objective

    encoder = VGGEncoder(tiny_weights, LAYERS)
    encoder.compute_dtype = torch.bfloat16
    seen: list[torch.dtype] = []

    class Watched(GramLoss):
        def __call__(self, features, target):  # type: ignore[no-untyped-def]
            seen.append(features.dtype)
            return super().__call__(features, target)

    generator = torch.Generator().manual_seed(7)
    content, style, image = (torch.rand(1, 3, 40, 48, generator=generator) for _ in range(3))
    objective = Objective.build(
        encoder, content=content, styles=[style], content_loss=ContentLoss(accepts_low_precision=True),
        style_loss=Watched(accepts_low_precision=True), content_layer_weights={"relu2_1": 1.0},
        style_layer_weights=dict.fromkeys(LAYERS, 1.0), style_blend=[1.0], tv_weight=0.0, normalize_gradients=True,
    )  # fmt: skip
    leaf = image.clone().requires_grad_(True)
    objective(leaf)[0].backward()
    assert seen == [torch.float32] * len(LAYERS)  # normalisation sums each gradient: in float32, never bfloat16
    assert leaf.grad is not None and bool(torch.isfinite(leaf.grad).all())
