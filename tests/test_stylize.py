"""stylize(): the schedule, the API contract, and with real weights, a result that moves toward the style."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import OptionError, StepRecord, stylize
from painterly.engine.optim import MAX_AUTO_HISTORY, auto_history_size
from painterly.io.images import load_image, pil_to_tensor, resize_long_side
from painterly.losses.core import gram_matrix
from painterly.nets.encoder import VGGEncoder
from painterly.nets.weights import VGGWeights
from painterly.objective.whole import Objective
from painterly.plan.stages import COARSE_STAGE_MIN_STRIDE, FINAL_STAGE_SHARE
from painterly.run import StyleTransferRun
from painterly.stylize import DEFAULT_STYLE_LAYERS, pyramid_sizes, split_iterations

from .conftest import EXAMPLES, make_image, run_for


def test_pyramid_grows_by_sqrt2_and_ends_at_the_requested_size() -> None:
    assert pyramid_sizes(512, 256) == [256, 362, 512]
    assert pyramid_sizes(1000, 300)[-1] == 1000 and pyramid_sizes(1000, 300)[0] >= 300
    assert pyramid_sizes(91, 32) == [32, 45, 64, 91], "never starts below start_size"
    assert pyramid_sizes(512, None) == [512] and pyramid_sizes(512, 600) == [512]
    sizes = pyramid_sizes(2048, 256)
    assert all(1.3 < b / a < 1.5 for a, b in itertools.pairwise(sizes))


def test_iterations_go_mostly_to_the_final_stage_and_halve_over_the_coarse_ones() -> None:
    assert split_iterations(300, 3) == [60, 30, 210]
    assert split_iterations(300, 1) == [300]
    assert split_iterations(700, 3, final_share=None) == [400, 200, 100], "the halving schedule of older runs"
    for share in (FINAL_STAGE_SHARE, None):
        for total in range(3, 60):
            assert all(sum(split_iterations(total, stages, share)) == total for stages in range(1, total + 1))
    late = split_iterations(300, 7)  # 256 -> 2048 px: the big late stages must still do real work
    assert sum(late) == 300 and min(late) >= 20 and late[-1] == max(late)
    assert late[:-1] == sorted(late[:-1], reverse=True)


def _run(pair, weights: VGGWeights, **options: object) -> StyleTransferRun:
    return run_for(*pair, weights=weights, **options)


def test_a_later_stage_starts_from_the_upsampled_result_with_the_contents_detail(pair, tiny_weights) -> None:
    run = _run(pair, tiny_weights, size=48, start_size=24)
    fine = pil_to_tensor(resize_long_side(run.working_content, 48))
    coarse = pil_to_tensor(resize_long_side(run.working_content, 34))
    plain = torch.nn.functional.interpolate(coarse, size=fine.shape[-2:], mode="bicubic", align_corners=False)
    # A coarse stage that changed nothing hands on the sharp content, not a blurred copy of it.
    assert torch.allclose(run.next_start(coarse, fine, coarse), fine, atol=1e-5)
    assert (plain.clamp(0, 1) - fine).abs().mean() > 0.02, "the content has detail that upsampling alone loses"
    # A stylised result keeps what the stage made of it; only the band it could not hold comes from the content.
    stylised = (1 - coarse).clamp(0, 1)
    upsampled = torch.nn.functional.interpolate(stylised, size=fine.shape[-2:], mode="bicubic", align_corners=False)
    started = run.next_start(stylised, fine, coarse)
    assert torch.allclose(started, (upsampled + fine - plain).clamp(0, 1), atol=1e-5)
    # Other starts are upsampled only; a luminance-only run stays grey.
    noise = _run(pair, tiny_weights, size=48, start_size=24, init="noise")
    assert torch.allclose(noise.next_start(stylised, fine, coarse), upsampled.clamp(0, 1), atol=1e-6)
    grey = _run(pair, tiny_weights, size=48, start_size=24, color_control="luminance")
    grey_fine, grey_coarse = (pil_to_tensor(resize_long_side(grey.working_content, s)) for s in (48, 34))
    start = grey.next_start(stylised, grey_fine, grey_coarse)
    assert torch.allclose(start[:, 0], start[:, 1]) and torch.allclose(start[:, 1], start[:, 2])


def test_coarse_stages_leave_the_fine_style_layers_to_the_last_stage(pair, tiny_weights) -> None:
    """Texture settled at a coarse stage is blurred away by upsampling: those steps go to the coarser layers."""

    def style_layers(run: StyleTransferRun, stage: int) -> list[str]:
        objective, _ = run.objective_at(run.sizes[stage])
        assert isinstance(objective, Objective)
        return [term.layer for term in objective.terms if term.kind == "style"]

    run = _run(pair, tiny_weights, size=64, start_size=32)
    assert len(run.sizes) == 3
    coarse = [layer for layer in DEFAULT_STYLE_LAYERS if run.encoder.stride(layer) >= COARSE_STAGE_MIN_STRIDE]
    assert style_layers(run, 0) == style_layers(run, 1) == coarse == ["relu3_1", "relu4_1", "relu5_1"]
    assert style_layers(run, 2) == list(DEFAULT_STYLE_LAYERS)  # the full-size stage has them all
    kept = run.plan.stages[0].style_layer_weights[0]
    assert all(kept[layer] == run.per_style_weights[0][layer] for layer in coarse)  # the others keep their weights
    # A checkpoint of revision 4 resumes as it was made; a run weighting only fine layers keeps them everywhere.
    assert style_layers(_run(pair, tiny_weights, size=64, start_size=32, revision=4), 0) == list(DEFAULT_STYLE_LAYERS)
    fine_only = _run(pair, tiny_weights, size=64, start_size=32, style_layers=["relu1_1", "relu2_1"])
    assert style_layers(fine_only, 0) == ["relu1_1", "relu2_1"]
    # Decided for the whole run: with two styles, one on every layer and one on the fine layers only, the coarse
    # stages match neither's fine layers (the second sits them out), and the last stage both.
    content, style = pair
    two = _run(
        (content, [style, style]), tiny_weights, size=64, start_size=32, per_style_layers=["all", "relu1_1,relu2_1"]
    )
    first, second = two.plan.stages[0].style_layer_weights
    assert [layer for layer, w in first.items() if w] == coarse and not any(second.values())
    assert list(two.plan.stages[-1].style_layer_weights) == two.per_style_weights and any(
        two.per_style_weights[1].values()
    )
    assert style_layers(two, 0) == coarse


def test_unset_history_is_chosen_once_for_the_final_size_and_kept_with_the_run(tmp_path, tiny_weights) -> None:
    wide = make_image(tmp_path / "wide.png", (1024, 768), seed=4), make_image(tmp_path / "s.png", (64, 64), seed=5)
    automatic = _run(wide, tiny_weights, size=1024, check_memory=False)
    assert automatic.settings.history_size == automatic.resolved_config.history_size == auto_history_size(1024 * 768)
    assert automatic.settings.history_size == 28, "what fits in 512 MiB at 1024 x 768"
    assert _run(wide, tiny_weights, size=512).settings.history_size == MAX_AUTO_HISTORY == 50
    assert _run(wide, tiny_weights, size=512, history_size=7).settings.history_size == 7


def test_result_has_requested_size_and_steps_are_reported(pair, tiny_weights: VGGWeights) -> None:
    records: list[StepRecord] = []
    result = stylize(*pair, weights=tiny_weights, size=40, start_size=20, iterations=6, on_step=records.append)
    assert result.size == (40, 30) and result.mode == "RGB"
    assert [r.step for r in records] == list(range(1, 7))
    assert {r.stage for r in records} == {1, 2} and records[-1].size == (40, 30)  # the 20 px stage is too small
    assert all({"content", "style", "total"} <= set(r.losses) for r in records)
    assert records[-1].elapsed >= records[0].elapsed
    assert records[-1].to_pil().size == (40, 30)


def test_same_seed_same_image_and_other_seed_differs(pair, tiny_weights: VGGWeights) -> None:
    def run(seed: int) -> np.ndarray:
        image = stylize(*pair, weights=tiny_weights, size=32, start_size=None, iterations=4, init="noise", seed=seed)
        return np.asarray(image)

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


@pytest.mark.parametrize(
    "options", [{"optimizer": "lbfgs"}, {"optimizer": "adam", "tile_size": 64}], ids=["lbfgs", "adam-tiled"]
)
def test_the_reported_total_is_the_sum_of_the_reported_parts(pair, tiny_weights: VGGWeights, options) -> None:
    """Traces and progress show each part beside the total, from the same evaluation: they must add up.

    (That both optimisers lower the loss is test_optimizers.py's test_every_optimiser_lowers_the_loss.)
    """
    records: list[StepRecord] = []
    stylize(*pair, weights=tiny_weights, size=96, start_size=None, iterations=3, init="noise",
            tv_weight=0.1, laplacian_weight=1.0, on_step=records.append, **options)  # fmt: skip
    assert len(records) == 3
    for record in records:
        parts = {name: value for name, value in record.losses.items() if name != "total"}
        assert set(parts) == {"content", "style", "tv", "laplacian"}
        assert all(value > 0 for value in parts.values())
        assert record.losses["total"] == pytest.approx(sum(parts.values()), rel=1e-5)


def test_alpha_of_the_content_is_kept(tmp_path: Path, tiny_weights: VGGWeights) -> None:
    content = Image.new("RGBA", (32, 24), (200, 100, 50, 255))
    content.paste((0, 0, 0, 0), (0, 0, 16, 24))
    style = make_image(tmp_path / "style.png")
    result = stylize(content, style, weights=tiny_weights, size=32, start_size=None, iterations=2)
    assert result.mode == "RGBA"
    alpha = np.asarray(result.getchannel("A"))
    assert alpha[:, :12].max() < 30 and alpha[:, 20:].min() > 225


def test_init_from_an_image_file_starts_there(pair, tmp_path: Path, tiny_weights: VGGWeights) -> None:
    start = tmp_path / "start.png"
    Image.new("RGB", (10, 10), (255, 0, 0)).save(start)
    first: list[torch.Tensor] = []
    stylize(*pair, weights=tiny_weights, size=32, start_size=None, iterations=1, init=str(start),
            optimizer="adam", learning_rate=1e-4, on_step=lambda r: first.append(r.image.clone()))  # fmt: skip
    assert float(first[0][0, 0].mean()) > 0.95 and float(first[0][0, 1].mean()) < 0.05


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 4}, "size must be at least"),
        ({"iterations": 0}, "iterations must be at least 1"),
        ({"style_weight": -1.0}, "style weight must be non-negative"),
        ({"tv_weight": float("nan")}, "tv weight"),
        ({"style_layers": ["relu1_1", "relu7_1"]}, "unknown layer"),
        ({"style_layer_weights": [1.0]}, "1 style layer weights given for 5"),
        ({"style_blend": [1.0, 2.0]}, "2 blend weights given for 1"),
        ({"init": "nothing-here.png"}, "init must be"),
        ({"optimizer": "sgdx"}, "unknown optimizer"),
        ({"style_loss": "nope"}, "unknown style loss"),
        ({"style_scale": 0.0}, "style scale must be positive"),
        ({"device": "cuda:0"}, "cuda"),
    ],
)
def test_nonsensical_options_fail_with_one_sentence(pair, tiny_weights, options, message) -> None:
    if options.get("device") and torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    with pytest.raises(OptionError, match=message):
        stylize(*pair, weights=tiny_weights, **({"size": 32, "iterations": 1} | options))


def test_several_styles_blend_toward_the_weighted_style(tmp_path: Path, tiny_weights: VGGWeights) -> None:
    content = make_image(tmp_path / "c.png", (32, 32), seed=5)
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (32, 32), (230, 20, 20)).save(red)
    Image.new("RGB", (32, 32), (20, 20, 230)).save(blue)

    def redness(blend: list[float]) -> float:
        out = np.asarray(stylize(content, [red, blue], style_blend=blend, weights=tiny_weights, size=32,
                                 start_size=None, iterations=30, style_weight=1e4), dtype=float)  # fmt: skip
        return float(out[..., 0].mean() - out[..., 2].mean())

    assert redness([0.9, 0.1]) > redness([0.1, 0.9]) + 10


def test_fewer_steps_than_stages_run_the_finest_stages_only(pair, tiny_weights: VGGWeights) -> None:
    records: list[StepRecord] = []
    result = stylize(*pair, weights=tiny_weights, size=48, start_size=24, iterations=2, on_step=records.append)
    assert len(records) == 2 and records[-1].size == result.size == (48, 36)


def test_too_small_or_too_thin_content_is_refused(tmp_path: Path, tiny_weights: VGGWeights) -> None:
    thin = make_image(tmp_path / "thin.png", (200, 2))
    style = make_image(tmp_path / "style.png")
    with pytest.raises(OptionError, match="short side of 3 px"):
        stylize(thin, style, weights=tiny_weights, size=256, iterations=1)


@pytest.mark.slow
def test_real_vgg19_moves_toward_the_style_and_keeps_the_content(real_weights: VGGWeights) -> None:
    """End to end at 96 px with the real network: style statistics approach the artwork's, layout stays."""
    content_path, style_path = EXAMPLES / "tubingen.jpg", EXAMPLES / "starry_night.jpg"
    records: list[StepRecord] = []
    result = stylize(content_path, style_path, weights=real_weights, size=96, start_size=None, iterations=60,
                     on_step=records.append)  # fmt: skip
    assert records[-1].losses["style"] < 0.2 * records[0].losses["style"], "style loss falls substantially"

    content = pil_to_tensor(resize_long_side(load_image(content_path).rgb, 96))
    style = pil_to_tensor(resize_long_side(load_image(style_path).rgb, 96))
    output = pil_to_tensor(result)
    encoder = VGGEncoder(real_weights, DEFAULT_STYLE_LAYERS)
    with torch.no_grad():
        targets = {k: gram_matrix(v) for k, v in encoder(style).items()}

        def style_distance(image: torch.Tensor) -> float:
            return sum(float((gram_matrix(v) - targets[k]).pow(2).mean()) for k, v in encoder(image).items())

    assert style_distance(output) < 0.3 * style_distance(content), "independently measured style statistics moved"

    # content recognisable: luminance correlates with the photo far better than with the painting
    def luminance(t: torch.Tensor) -> np.ndarray:
        return (0.299 * t[0, 0] + 0.587 * t[0, 1] + 0.114 * t[0, 2]).flatten().numpy()

    with_content = np.corrcoef(luminance(output), luminance(content))[0, 1]
    assert with_content > 0.5


def test_a_pil_image_is_handled_like_the_same_file(tmp_path: Path, tiny_weights: VGGWeights) -> None:
    picture = Image.new("RGBA", (40, 30), (255, 0, 0, 0))  # fully transparent red: a viewer shows white
    picture.paste((0, 0, 255, 255), (0, 0, 20, 30))
    path = tmp_path / "alpha.png"
    picture.save(path)
    style = make_image(tmp_path / "style.png")
    options = {"weights": tiny_weights, "size": 32, "start_size": None, "iterations": 2, "init": "content"}
    from_object = np.asarray(stylize(picture, style, **options))
    from_file = np.asarray(stylize(path, style, **options))
    assert np.array_equal(from_object, from_file)
    assert from_object[..., 3][:, 20:].max() < 30, "the transparent half stays transparent"
