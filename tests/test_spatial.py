"""Spatial control (masks), scale control (per-style sizes and layer sets), and the coarse-to-fine schedule."""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import OptionError, StepRecord, stylize
from painterly.control.spatial import mask_for_layer, per_style_layer_weights
from painterly.io.images import load_image, pil_to_tensor, resize_long_side
from painterly.losses.core import ContentLoss, GramLoss, GuidedGramLoss, gram_matrix, guided_gram_matrix
from painterly.nets.encoder import VGGEncoder
from painterly.nets.weights import VGGWeights
from painterly.objective.whole import Objective
from painterly.session import default_session
from painterly.stylize import pyramid_sizes

from .conftest import make_image

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _half_mask(path: Path, size: tuple[int, int], left: bool = True) -> Path:
    width, height = size
    mask = Image.new("L", size, 0)
    mask.paste(255, (0, 0, width // 2, height) if left else (width // 2, 0, width, height))
    mask.save(path)
    return path


def _style_objective(encoder: VGGEncoder, style: torch.Tensor, layers, mask: torch.Tensor | None) -> Objective:
    return Objective.build(
        encoder,
        content=torch.zeros(1, 3, 32, 32),
        styles=[style],
        content_loss=ContentLoss(),
        style_loss=GramLoss(),
        content_layer_weights={},
        style_layer_weights=dict.fromkeys(layers, 1.0),
        style_blend=[1.0],
        tv_weight=0.0,
        style_masks=None if mask is None else [mask],
    )


# --- guided Gram matrices -------------------------------------------------------------------------


def test_guided_gram_of_a_binary_mask_is_the_gram_of_the_region() -> None:
    features = torch.rand(2, 5, 6, 10, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, 6, 10)
    mask[..., :4] = 1
    assert torch.allclose(guided_gram_matrix(features, mask), gram_matrix(features[..., :4]), atol=1e-6)
    ones = torch.ones(1, 1, 6, 10)
    assert torch.allclose(guided_gram_matrix(features, ones), gram_matrix(features), atol=1e-6)
    # A soft mask of constant value c is the same region as all ones: the sum(m^2) normalisation cancels c.
    assert torch.allclose(guided_gram_matrix(features, 0.3 * ones), gram_matrix(features), atol=1e-6)


def test_an_all_white_mask_gives_the_unmasked_loss_and_gradient(tiny_weights: VGGWeights) -> None:
    encoder = VGGEncoder(tiny_weights, LAYERS)
    gen = torch.Generator().manual_seed(1)
    style, image = torch.rand(1, 3, 40, 40, generator=gen), torch.rand(1, 3, 36, 44, generator=gen)
    grads = []
    for mask in (None, torch.ones(1, 1, 36, 44)):
        x = image.clone().requires_grad_(True)
        total, _ = _style_objective(encoder, style, LAYERS, mask)(x)
        total.backward()
        grads.append((float(total.detach()), x.grad))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    # The two paths multiply in different orders (the plain Gram loss has a fused backward): float32 rounding,
    # ~1e-7 against gradients of ~0.6, is all that may differ.
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("height", "width"), [(37, 53), (64, 48), (17, 16)])
def test_masks_are_carried_down_to_every_layer_shape(tiny_weights: VGGWeights, height: int, width: int) -> None:
    encoder = VGGEncoder(tiny_weights, LAYERS)
    generator = torch.Generator().manual_seed(3)
    features = encoder(torch.rand(1, 3, height, width, generator=generator))
    mask = torch.rand(1, 1, height, width, generator=generator)
    for layer in LAYERS:
        down = mask_for_layer(mask, layer, encoder.computed_layers)
        assert down.shape[-2:] == features[layer].shape[-2:], layer
        assert float(down.min()) >= 0 and float(down.max()) <= 1


@pytest.mark.parametrize(("layers", "margin"), [(("relu1_1",), 1), (("relu1_1", "relu2_1", "relu3_1"), 24)])
def test_a_left_half_mask_confines_the_style_gradient_to_the_left(tiny_weights: VGGWeights, layers, margin) -> None:
    """Right of the mask (beyond the layers' receptive field) the style loss has zero gradient and ignores edits."""
    encoder = VGGEncoder(tiny_weights, layers)
    gen = torch.Generator().manual_seed(2)
    style, image = torch.rand(1, 3, 48, 48, generator=gen), torch.rand(1, 3, 32, 128, generator=gen)
    mask = torch.zeros(1, 1, 32, 128)
    mask[..., :64] = 1
    free = 64 + margin  # first column no masked neuron can see

    def loss_and_grad(x: torch.Tensor, mask: torch.Tensor | None) -> tuple[float, torch.Tensor]:
        x = x.clone().requires_grad_(True)
        total, _ = _style_objective(encoder, style, layers, mask)(x)
        total.backward()
        assert x.grad is not None
        return float(total.detach()), x.grad

    loss, grad = loss_and_grad(image, mask)
    assert grad[..., free:].abs().max() == 0
    assert grad[..., :64].abs().mean() > 0
    _, unmasked_grad = loss_and_grad(image, None)
    assert unmasked_grad[..., free:].abs().mean() > 0, "without the mask the right half is styled too"
    edited = image.clone()
    edited[..., free:] = torch.rand(1, 3, 32, 128 - free, generator=gen)
    assert loss_and_grad(edited, mask)[0] == loss


def test_an_empty_mask_leaves_no_style_term_and_nothing_at_all_is_refused(tiny_weights: VGGWeights) -> None:
    encoder = VGGEncoder(tiny_weights, LAYERS)
    style = torch.full((1, 3, 32, 32), 0.5)  # its values do not matter here, only which terms exist
    with pytest.raises(OptionError, match="no loss has anything to compare"):
        _style_objective(encoder, style, LAYERS, torch.zeros(1, 1, 40, 40))
    with_tv = Objective.build(
        encoder, content=torch.zeros(1, 3, 32, 32), styles=[style], content_loss=ContentLoss(),
        style_loss=GramLoss(), content_layer_weights={}, style_layer_weights=dict.fromkeys(LAYERS, 1.0),
        style_blend=[1.0], tv_weight=1.0, style_masks=[torch.zeros(1, 1, 40, 40)],
    )  # fmt: skip
    assert with_tv.terms == []  # the empty mask's style terms are left out; smoothing alone is still a loss
    masked = _style_objective(encoder, style, LAYERS, torch.ones(1, 1, 40, 40))
    assert all(isinstance(term.loss, GuidedGramLoss) for term in masked.terms) and len(masked.terms) == 5


# --- spatial control through stylize() ------------------------------------------------------------


def test_stylize_leaves_the_unmasked_half_of_the_content_untouched(tmp_path: Path, tiny_weights: VGGWeights) -> None:
    """With relu1_1 only (3 x 3 receptive field) the right half, beyond one column, keeps the content exactly.

    (No content loss here: it would spread the changes by one column per step, as it should.)
    """
    content = make_image(tmp_path / "c.png", (48, 24), seed=3)
    style = tmp_path / "s.png"
    Image.new("RGB", (32, 32), (20, 30, 220)).save(style)
    mask = _half_mask(tmp_path / "m.png", (48, 24))
    options = {"weights": tiny_weights, "size": 48, "start_size": None, "iterations": 10, "style_weight": 10.0}
    options |= {
        "content_weight": 0.0,
        "content_layers": ["relu1_1"],
        "style_layers": ["relu1_1"],
        "optimizer": "adam",
        "learning_rate": 0.05,
    }
    result = np.asarray(stylize(content, style, style_masks=[mask], **options), dtype=int)
    original = np.asarray(Image.open(content), dtype=int)
    assert np.array_equal(result[:, 26:], original[:, 26:])
    assert np.abs(result[:, :24] - original[:, :24]).mean() > 10
    assert result[:, :24, 2].mean() - result[:, :24, 0].mean() > original[:, :24, 2].mean() - original[:, :24, 0].mean()


def test_two_masked_styles_each_reach_their_own_region(tmp_path: Path, tiny_weights: VGGWeights) -> None:
    content = make_image(tmp_path / "c.png", (48, 24), seed=4)
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (32, 32), (230, 30, 20)).save(red)
    Image.new("RGB", (32, 32), (20, 30, 230)).save(blue)
    left, right = _half_mask(tmp_path / "l.png", (48, 24)), _half_mask(tmp_path / "r.png", (48, 24), left=False)
    out = np.asarray(
        stylize(content, [red, blue], style_masks=[left, right], weights=tiny_weights, size=48, start_size=None,
                iterations=20, style_weight=10.0, style_layers=["relu1_1", "relu2_1"], optimizer="adam",
                learning_rate=0.1),
        dtype=float,
    )  # fmt: skip
    original = np.asarray(Image.open(content), dtype=float)
    redness, before = out[..., 0] - out[..., 2], original[..., 0] - original[..., 2]
    assert redness[:, :20].mean() > before[:, :20].mean() + 40, "the left half turns red"
    assert redness[:, 28:].mean() < before[:, 28:].mean() - 40, "the right half turns blue"


def test_a_black_mask_means_no_style_at_all(pair_paths, tiny_weights: VGGWeights, tmp_path: Path) -> None:
    black = tmp_path / "black.png"
    Image.new("L", (48, 36), 0).save(black)
    options = {"weights": tiny_weights, "size": 48, "start_size": None, "iterations": 3, "init": "noise"}
    masked = stylize(*pair_paths, style_masks=[black], **options)
    no_style = stylize(*pair_paths, style_weight=0.0, **options)
    assert np.array_equal(np.asarray(masked), np.asarray(no_style))


@pytest.fixture
def pair_paths(tmp_path: Path) -> tuple[Path, Path]:
    return make_image(tmp_path / "content.png", (48, 36), seed=1), make_image(tmp_path / "style.png", (40, 40), seed=2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"style_masks": []}, "0 style masks given for 1"),
        ({"style_masks": ["m.png"], "style_loss": "wasserstein"}, "gram style loss only"),
        ({"per_style_scale": [1.0, 2.0]}, "2 style scales given for 1"),
        ({"per_style_scale": [0.0]}, "each style scale must be positive"),
        ({"per_style_layers": ["relu1_1", "relu2_1"]}, "2 style layer sets given for 1"),
        ({"per_style_layers": ["relu4_2"]}, "not among the style layers"),
        ({"per_style_layers": ["relu9_9"]}, "relu9_9, which is not among the style layers"),
        ({"color_control": "sepia"}, "unknown color control"),
    ],
)
def test_control_options_fail_with_one_sentence(pair_paths, tiny_weights, options, message) -> None:
    with pytest.raises(OptionError, match=message):
        stylize(*pair_paths, weights=tiny_weights, size=32, iterations=1, **options)


# --- scale control ---------------------------------------------------------------------------------


def test_layer_sets_give_each_layer_to_its_styles_only() -> None:
    weights = {"relu1_1": 0.5, "relu3_1": 0.5}
    assert per_style_layer_weights(weights, [1.0, 3.0]) == [
        {"relu1_1": 0.125, "relu3_1": 0.125},
        {"relu1_1": 0.375, "relu3_1": 0.375},
    ], "without sets: the usual blend normalised to sum one"
    fine_coarse = per_style_layer_weights(weights, [1.0, 3.0], ["relu1_1", "relu3_1"])
    assert fine_coarse == [{"relu1_1": 0.5}, {"relu3_1": 0.5}], "a layer fed by one style keeps its full weight"
    shared = per_style_layer_weights(weights, [1.0, 1.0], ["all", "relu3_1"])
    assert shared == [{"relu1_1": 0.5, "relu3_1": 0.25}, {"relu3_1": 0.25}]
    assert per_style_layer_weights(weights, [2.0, 1.0], normalize=False)[0] == {"relu1_1": 1.0, "relu3_1": 1.0}


def test_style_scales_resize_each_style_and_layer_sets_pick_its_terms(
    pair_paths, tiny_weights: VGGWeights, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[list[tuple[int, ...]], list[tuple[str, float]]]] = []
    build = Objective.build.__func__  # type: ignore[attr-defined]

    def spy(cls, encoder, **kwargs):
        objective = build(cls, encoder, **kwargs)
        seen.append(([tuple(s.shape[-2:]) for s in kwargs["styles"]], [(t.layer, t.weight) for t in objective.terms]))
        return objective

    monkeypatch.setattr(Objective, "build", classmethod(spy))
    content, style = pair_paths
    stylize(content, [style, style], weights=tiny_weights, size=64, start_size=None, iterations=1, style_weight=1.0,
            per_style_scale=[0.5, 1.5], per_style_layers=["relu1_1,relu2_1", "relu3_1,relu4_1,relu5_1"])  # fmt: skip
    ((shapes, terms),) = seen
    assert [max(shape) for shape in shapes] == [32, 96], "style 40x40 resized to 0.5 and 1.5 times the 64 px output"
    style_terms = [(layer, weight) for layer, weight in terms if layer != "relu4_2"]
    assert style_terms == [(layer, pytest.approx(0.2)) for layer in LAYERS], "each layer once, at full weight"


# --- the coarse-to-fine schedule -------------------------------------------------------------------


def test_the_schedule_runs_every_stage_and_ends_at_the_requested_size(tmp_path: Path, tiny_weights) -> None:
    content = make_image(tmp_path / "c.png", (150, 100), seed=5)
    style = make_image(tmp_path / "s.png", (60, 60), seed=6)
    records: list[StepRecord] = []
    result = stylize(content, style, weights=tiny_weights, size=91, start_size=32, iterations=12,
                     on_step=records.append)  # fmt: skip
    assert result.size == (91, 61)
    sizes = pyramid_sizes(91, 32)
    assert sizes[-1] == 91 and sizes[0] <= 32
    stage_sizes = [next(r.size for r in records if r.stage == stage) for stage in range(1, records[-1].stages + 1)]
    long_sides = [max(size) for size in stage_sizes]
    assert long_sides == [s for s in sizes if round(s * 100 / 150) >= 16], "stages too small for relu5_1 dropped"
    assert stage_sizes[-1] == (91, 61) and long_sides == sorted(long_sides)


def test_only_one_stage_is_held_in_memory_at_a_time(
    tmp_path: Path, tiny_weights: VGGWeights, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a stage starts, no objective, content target or activation of an earlier stage may still be alive (the
    style targets stay in the session's cache, bounded in bytes, for the next job), and the encoder only ever sees
    that stage's content, style and image shapes."""
    content = make_image(tmp_path / "c.png", (120, 90), seed=7)
    style = make_image(tmp_path / "s.png", (80, 80), seed=8)
    earlier: list[weakref.ref] = []  # objectives, their targets, and every activation the encoder produced
    alive_at_start: list[int] = []
    shapes: list[set[tuple[int, ...]]] = []
    build = Objective.build.__func__  # type: ignore[attr-defined]
    forward = VGGEncoder.forward

    def tracked_build(cls, encoder, **kwargs):
        alive_at_start.append(sum(ref() is not None for ref in earlier))
        shapes.append(set())
        objective = build(cls, encoder, **kwargs)
        content_targets = [term.target for term in objective.terms if term.kind == "content"]
        earlier.extend(weakref.ref(item) for item in (objective, *content_targets))
        return objective

    def tracked_forward(self, image, **options):
        shapes[-1].add(tuple(image.shape[-2:]))
        features = forward(self, image, **options)
        earlier.extend(weakref.ref(value) for value in features.values())
        return features

    monkeypatch.setattr(Objective, "build", classmethod(tracked_build))
    monkeypatch.setattr(VGGEncoder, "forward", tracked_forward)
    stylize(content, style, weights=tiny_weights, size=96, start_size=48, iterations=8)
    assert len(alive_at_start) == 3 and alive_at_start == [0, 0, 0]
    cache = default_session().targets
    assert len(cache) >= 3 and cache.bytes <= cache.max_bytes  # one style's targets per stage size
    for stage, size in enumerate(pyramid_sizes(96, 48)):
        content_shape = tuple(reversed(resize_long_side(Image.new("RGB", (120, 90)), size).size))
        style_shape = (size, size)
        assert shapes[stage] == {content_shape, style_shape}, f"stage {stage + 1} saw {shapes[stage]}"


def test_real_mask_file_is_read_like_any_image(tmp_path: Path) -> None:
    """Masks go through the same loader as the other inputs (EXIF, modes); grey levels become weights."""
    path = tmp_path / "mask.png"
    Image.new("LA", (8, 4), (128, 255)).save(path)
    from painterly.control.spatial import resize_mask

    mask = resize_mask(load_image(path).rgb, pil_to_tensor(Image.new("RGB", (4, 2))))
    assert mask.shape == (1, 1, 2, 4) and torch.allclose(mask, torch.full_like(mask, 128 / 255))
