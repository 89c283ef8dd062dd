"""Seamless tiling: tiles cover the image exactly, and tiled losses and gradients match the untiled ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from painterly import StepRecord, stylize
from painterly.errors import OptionError
from painterly.losses.core import ContentLoss, GramLoss, GuidedGramLoss, LaplacianLoss, TotalVariationLoss
from painterly.nets.encoder import VGGEncoder
from painterly.nets.vgg import LAYER_NAMES, VGG19_LAYERS
from painterly.nets.weights import VGGWeights, load_weights
from painterly.objective.tiled import GRID_POSITIONS, TiledObjective, grid_step, plan_tiles, tiled_features, tiled_grams
from painterly.objective.whole import Objective, Term
from painterly.plan.memory import BASE_BYTES, estimate_run_bytes, estimate_tiled_run_bytes

SHALLOW = ["relu1_1", "relu2_1", "relu3_1"]  # reach 10 px: a 16 px margin already makes tiling exact


@pytest.mark.parametrize("offset", [(0, 0), (16, 48), (32, 16)])
def test_cores_partition_the_image_and_windows_hold_them(offset: tuple[int, int]) -> None:
    height, width = 100, 131
    owner = torch.zeros(height, width, dtype=torch.int64)
    for tile in plan_tiles(height, width, 48, 16, offset=offset, align=16):
        y0, y1, x0, x1 = tile.core
        wy0, wy1, wx0, wx1 = tile.window
        owner[y0:y1, x0:x1] += 1
        assert wy0 <= y0 and y1 <= wy1 and wx0 <= x0 and x1 <= wx1
        assert wy0 % 16 == 0 and wx0 % 16 == 0  # windows share the image's pooling grid
        assert wy0 == max(0, y0 - 16) and wx1 == min(width, x1 + 16)
    assert bool((owner == 1).all())


def test_unaligned_tiling_is_refused() -> None:
    with pytest.raises(ValueError, match="multiples of 16"):
        plan_tiles(64, 64, 40, 16, align=16)


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    content = torch.rand(1, 3, 88, 120, generator=generator)
    style = torch.rand(1, 3, 72, 72, generator=generator)
    image = torch.rand(1, 3, 88, 120, generator=generator)
    return content, style, image


def _objectives(
    weights: VGGWeights,
    margin: int,
    layers: list[str],
    *,
    gram_core: int | None = None,
    compute_dtype: torch.dtype | None = None,
    laplacian_weight: float = 0.0,
) -> tuple[Objective, TiledObjective, torch.Tensor]:
    encoder = VGGEncoder(weights, layers)
    encoder.compute_dtype = compute_dtype
    content, style, image = _pair()
    content_weights = {layers[-1]: 1.0}
    style_weights = {layer: 10.0 / len(layers) for layer in layers}
    low = compute_dtype is not None  # as a run of this revision: losses on the features as computed
    whole = Objective.build(
        encoder, content=content, styles=[style], content_loss=ContentLoss(accepts_low_precision=low),
        style_loss=GramLoss(accepts_low_precision=low), content_layer_weights=content_weights,
        style_layer_weights=style_weights, style_blend=[1.0], tv_weight=0.1, laplacian_weight=laplacian_weight,
    )  # fmt: skip
    tiled = TiledObjective.build(
        encoder, content=content, styles=[style], content_layer_weights=content_weights,
        style_layer_weights=[style_weights], core=32, margin=margin, gram_core=gram_core, low_precision=low,
        tv_weight=0.1, laplacian_weight=laplacian_weight,
    )  # fmt: skip
    return whole, tiled, image


def _loss_and_grad(objective: Objective | TiledObjective, image: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    x = image.clone().requires_grad_(True)
    total, parts = objective(x)
    total.backward()
    assert x.grad is not None
    return {"total": float(total.detach()), **{k: float(v.detach()) for k, v in parts.items()}}, x.grad


@pytest.mark.parametrize("gram_core", [None, 64, 128])
def test_tiled_loss_and_gradient_equal_untiled_with_a_full_margin(
    tiny_weights: VGGWeights, gram_core: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Gram pass in wider windows (64 px cores, or one unshifted window for the whole 88 x 120 image) sums the
    # same Gram matrices as in the backward pass's 32 px windows.
    import painterly.objective.tiled

    seen: list[int] = []
    grams_over = painterly.objective.tiled.grams_over

    def counting(encoder: VGGEncoder, image: torch.Tensor, layers: list[str], tiles: list) -> dict:
        seen.append(len(tiles))  # windows of this Gram pass
        return grams_over(encoder, image, layers, tiles)

    monkeypatch.setattr(painterly.objective.tiled, "grams_over", counting)
    whole, tiled, image = _objectives(tiny_weights, margin=32, layers=SHALLOW, gram_core=gram_core)
    seen.clear()  # (building the targets encodes the style with the backward pass's cores)
    untiled_losses, untiled_grad = _loss_and_grad(whole, image)
    tiled_losses, tiled_grad = _loss_and_grad(tiled, image)
    backward_windows = len(plan_tiles(88, 120, 32, 32, offset=tiled.last_offset, align=tiled.encoder.max_stride))
    assert backward_windows >= 12  # really tiled: 3 x 4 cores or more
    if gram_core is None:
        assert seen == [backward_windows]
    elif gram_core == 64:
        assert len(seen) == 1 and 4 <= seen[0] < backward_windows
    else:
        assert seen == [1]
    for name, value in untiled_losses.items():
        assert tiled_losses[name] == pytest.approx(value, rel=1e-4), name
    assert torch.allclose(tiled_grad, untiled_grad, rtol=1e-3, atol=1e-5 * float(untiled_grad.abs().max()))


def test_both_objectives_evaluate_the_same_pixel_terms(tiny_weights: VGGWeights) -> None:
    """Total variation and the Laplacian term: one implementation, on the same judged image, in both objectives."""
    whole, tiled, image = _objectives(tiny_weights, margin=32, layers=SHALLOW, laplacian_weight=3.0)
    kinds = [TotalVariationLoss, LaplacianLoss]
    assert [type(term.loss) for term in whole.pixel_terms] == [type(term.loss) for term in tiled.pixel_terms] == kinds
    untiled_losses, untiled_grad = _loss_and_grad(whole, image)
    tiled_losses, tiled_grad = _loss_and_grad(tiled, image)
    assert untiled_losses["laplacian"] > 0 and untiled_losses["tv"] > 0
    assert tiled_losses["tv"] == untiled_losses["tv"] and tiled_losses["laplacian"] == untiled_losses["laplacian"]
    assert torch.allclose(tiled_grad, untiled_grad, rtol=1e-3, atol=1e-5 * float(untiled_grad.abs().max()))


def test_tiling_refuses_a_loss_it_cannot_tile_by_its_type(
    tiny_weights: VGGWeights, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    import painterly.objective.tiled
    from painterly.losses.registry import STYLE_LOSSES
    from painterly.losses.style import MRFLoss

    class Renamed(GramLoss):  # the loss's type decides, not its name
        name = "my-gram"

    assert [name for name, kind in STYLE_LOSSES.items() if TiledObjective.can_tile(kind(), "style")] == ["gram"]
    assert TiledObjective.can_tile(Renamed(), "style") and TiledObjective.can_tile(ContentLoss(), "content")
    assert not TiledObjective.can_tile(ContentLoss(), "style") and not TiledObjective.can_tile(GramLoss(), "content")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a target was encoded before the loss was refused")

    monkeypatch.setattr(painterly.objective.tiled, "tiled_features", never)
    monkeypatch.setattr(painterly.objective.tiled, "tiled_grams", never)
    encoder = VGGEncoder(tiny_weights, SHALLOW)
    content, style, _ = _pair()
    options = {"content": content, "styles": [style], "content_layer_weights": {"relu3_1": 1.0},
               "style_layer_weights": [dict.fromkeys(SHALLOW, 1.0)], "core": 32, "margin": 16}  # fmt: skip
    sentence = (
        "tiling cannot evaluate the mrf style loss, which has no feature gradient one window can compute alone; "
        "use the gram style loss, or no tiling"
    )
    with pytest.raises(OptionError, match=f"^{re.escape(sentence)}$"):
        TiledObjective.build(encoder, **options, style_loss=MRFLoss())  # type: ignore[arg-type]
    with pytest.raises(OptionError, match=r"the gram content loss, .* use the mse content loss, or no tiling"):
        TiledObjective.build(encoder, **options, content_loss=GramLoss())  # type: ignore[arg-type]
    masked = Term("style", "relu1_1", 1.0, GuidedGramLoss(torch.ones(1, 1, 88, 120)), torch.eye(4)[None])
    with pytest.raises(OptionError, match="the guided-gram style loss"):
        TiledObjective(encoder, [masked], core=32, margin=16)


def test_a_mixed_precision_tiled_objective_follows_the_untiled_one(tiny_weights: VGGWeights) -> None:
    """Both passes on bfloat16 features as computed (no float32 copies): tiled follows untiled within rounding."""
    whole, tiled, image = _objectives(tiny_weights, margin=32, layers=SHALLOW, gram_core=64,
                                      compute_dtype=torch.bfloat16)  # fmt: skip
    _, exact_grad = _loss_and_grad(_objectives(tiny_weights, margin=32, layers=SHALLOW)[0], image)
    untiled_losses, untiled_grad = _loss_and_grad(whole, image)
    tiled_losses, tiled_grad = _loss_and_grad(tiled, image)
    for name, value in untiled_losses.items():
        assert tiled_losses[name] == pytest.approx(value, rel=1e-2), name
    tiled.low_precision = False  # the second pass on float32 copies, as revision 3: a different gradient
    assert not torch.equal(_loss_and_grad(tiled, image)[1], tiled_grad)
    tiled_error = float((tiled_grad - untiled_grad).norm() / untiled_grad.norm())
    rounding = float((untiled_grad - exact_grad).norm() / exact_grad.norm())  # bfloat16 against float32, untiled
    assert rounding > 0  # really computed in bfloat16 (about 0.1 with this tiny random network)
    assert tiled_error < 0.02 and tiled_error < rounding / 5  # tiling adds far less than the arithmetic's rounding


@pytest.mark.parametrize("core_width", [32, 48])  # 48: the core spans its window's whole width
def test_a_core_is_laid_out_as_reshaping_float32_features_always_did(core_width: int) -> None:
    """Earlier revisions' Gram products saw this layout; the same values in the same layout round the same way."""
    from painterly.objective.tiled import Tile, flat_core

    features = torch.rand(1, 8, 40, 48, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    features = features.contiguous(memory_format=torch.channels_last)
    tile = Tile(core=(8, 24, 0, core_width), window=(0, 40, 0, 48))
    before = features.float()[..., 8:24, :core_width].reshape(1, 8, -1)  # what revision 3 computed on
    now = flat_core(features, tile, 1, torch.float32)
    assert torch.equal(now, before) and now.stride() == before.stride() and now.dtype == torch.float32


def test_the_gram_pass_windows_are_as_wide_as_the_backward_windows_memory_allows() -> None:
    from painterly.plan.memory import gram_pass_core, gram_pass_window_bytes, window_activation_bytes

    names = VGG19_LAYERS[: LAYER_NAMES.index("relu5_1") + 1]
    for width, height, core in [(1024, 768, 256), (2048, 1536, 384), (8192, 6144, 512), (600, 400, 512)]:
        chosen = gram_pass_core(names, width, height, core=core, margin=64)
        assert chosen % core == 0 and chosen >= core

        def window(c: int, width: int = width, height: int = height) -> tuple[int, int]:
            return min(width, c + 128), min(height, c + 128)

        budget = window_activation_bytes(names, *window(core))
        assert gram_pass_window_bytes(names, *window(chosen)) <= budget  # the tiled estimate bounds both passes
        assert chosen >= max(width, height) or gram_pass_window_bytes(names, *window(chosen + core)) > budget
    assert gram_pass_core(names, 1024, 768, core=256, margin=64) > 256  # wider than the backward's, in practice


def test_tiled_stages_compute_as_their_run_revision_did(pair: tuple[Path, Path], tiny_weights: VGGWeights) -> None:
    from .conftest import run_for

    options = {"weights": tiny_weights, "size": 256, "start_size": None, "tile_size": 96, "mixed_precision": True}
    current, _ = run_for(*pair, **options).objective_at(256)
    assert isinstance(current, TiledObjective)
    assert current.low_precision and current.gram_core > current.core == 96  # revisions 4 and 5
    assert current.grid_step == grid_step(96, current.encoder.max_stride) > current.encoder.max_stride  # revision 5
    older, _ = run_for(*pair, **options, revision=3).objective_at(256)  # a checkpoint of revision 3 resumes as made
    assert isinstance(older, TiledObjective)
    assert not older.low_precision and older.gram_core == older.core == 96
    fourth, _ = run_for(*pair, **options, revision=4).objective_at(256)
    assert isinstance(fourth, TiledObjective)
    assert fourth.low_precision and older.grid_step == fourth.grid_step == fourth.encoder.max_stride


def test_the_grid_moves_among_a_few_positions_so_windows_come_in_a_few_shapes(tiny_weights: VGGWeights) -> None:
    """Few shapes let the heap serve each window from what the last one of its shape freed (memory stays flat)."""
    assert [grid_step(core, 16) for core in (256, 384, 272, 96, 48, 16)] == [64, 96, 80, 32, 16, 16]
    _, tiled, _ = _objectives(tiny_weights, margin=16, layers=SHALLOW)
    tiled.grid_step = grid_step(tiled.core, tiled.encoder.max_stride)
    offsets = set()
    for seed in range(40):
        tiled(torch.rand(1, 3, 88, 120, generator=torch.Generator().manual_seed(seed)).requires_grad_(True))
        offsets.add(tiled.last_offset)
    rows, cols = {y for y, _ in offsets}, {x for _, x in offsets}
    assert 1 < len(rows) <= GRID_POSITIONS and 1 < len(cols) <= GRID_POSITIONS  # it still moves, in quarter cores
    assert all(y % tiled.grid_step == 0 and x % tiled.grid_step == 0 for y, x in offsets)
    for bad in (6, 0, 40):  # off the pooling grid; no step at all; beyond the core, so the grid would never move
        with pytest.raises(ValueError, match="positive multiple of the stride"):
            TiledObjective(tiled.encoder, [], [], core=32, margin=16, grid_step=bad)

    def shapes(step: int, core: int = 256) -> set[tuple[int, int]]:  # every window a stage of 1024 x 768 can use
        return {
            (t.window[1] - t.window[0], t.window[3] - t.window[2])
            for y in range(0, core, step)
            for x in range(0, core, step)
            for t in plan_tiles(768, 1024, core, 64, offset=(y, x), align=16)
        }

    assert len(shapes(grid_step(256, 16))) * 8 < len(shapes(16))  # 16 px steps, as revisions 1-4 moved


def test_narrower_margins_err_only_a_little_and_the_grid_moves_with_the_image(tiny_weights: VGGWeights) -> None:
    deeper = [*SHALLOW, "relu4_1"]  # reach 30 px: narrower margins are approximations
    errors = []
    for margin in (8, 16, 24, 32):
        whole, tiled, image = _objectives(tiny_weights, margin=margin, layers=deeper)
        _, untiled_grad = _loss_and_grad(whole, image)
        _, tiled_grad = _loss_and_grad(tiled, image)
        errors.append(float((tiled_grad - untiled_grad).norm() / untiled_grad.norm()))
    assert errors == sorted(errors, reverse=True)  # more context, closer to the untiled gradient
    assert 0 < errors[2] < 0.3 and errors[3] < 1e-4
    first_offset = tiled.last_offset
    offsets = {first_offset}
    for seed in range(1, 8):  # different images put the seams in different places
        tiled(torch.rand(1, 3, 88, 120, generator=torch.Generator().manual_seed(seed)).requires_grad_(True))
        offsets.add(tiled.last_offset)
    assert len(offsets) > 2
    _loss_and_grad(tiled, image)
    assert tiled.last_offset == first_offset  # the same image: the same grid (a deterministic objective)


def test_tiled_targets_equal_whole_image_features(tiny_weights: VGGWeights) -> None:
    encoder = VGGEncoder(tiny_weights, SHALLOW)
    _, style, image = _pair()
    with torch.no_grad():
        whole = encoder(image)
    features = tiled_features(encoder, image, SHALLOW, core=32, margin=32)
    grams = tiled_grams(encoder, style, SHALLOW, core=32, margin=32)
    reference = GramLoss().prepare(encoder(style)["relu3_1"])
    for layer in SHALLOW:
        assert features[layer].shape == whole[layer].shape
        assert torch.allclose(features[layer], whole[layer], atol=1e-5)
    assert torch.allclose(grams["relu3_1"], reference, rtol=1e-4, atol=1e-6)


def test_memory_estimates_grow_with_size_and_tiling_bounds_the_activations() -> None:
    names = VGG19_LAYERS[: LAYER_NAMES.index("relu5_1") + 1]
    relu4_2 = names[LAYER_NAMES.index("relu4_2")]
    sizes = [256, 512, 1024, 2048, 4096, 8192]
    untiled = [estimate_run_bytes(names, s, s * 3 // 4) for s in sizes]
    tiled = [
        estimate_tiled_run_bytes(names, s, s * 3 // 4, core=512, margin=64, content_layers=[relu4_2]) for s in sizes
    ]
    assert untiled == sorted(untiled) and len(set(untiled)) == len(untiled)
    assert tiled == sorted(tiled) and len(set(tiled)) == len(tiled)
    assert tiled[2] < untiled[2] and tiled[-1] < untiled[-1] / 5
    # Beyond one window, tiling adds only per-pixel buffers: far less per pixel than the untiled activations.
    per_pixel_tiled = (tiled[-1] - tiled[-2]) / (8192 * 6144 - 4096 * 3072)
    per_pixel_untiled = (untiled[-1] - untiled[-2]) / (8192 * 6144 - 4096 * 3072)
    assert per_pixel_tiled < per_pixel_untiled / 5


def test_a_tiled_run_gives_the_requested_size_and_moves_toward_the_style(
    pair: tuple[Path, Path], tiny_weights: VGGWeights
) -> None:
    content, style = pair
    losses: list[float] = []
    image = stylize(content, style, size=160, start_size=None, iterations=12, tile_size=64, tile_margin=32,
                    weights=tiny_weights, style_layers=SHALLOW, content_layers=["relu2_1"],
                    on_step=lambda record: losses.append(record.losses["style"]))  # fmt: skip
    assert image.size == (160, 120)
    assert losses[-1] < 0.5 * losses[0]


def test_the_fast_path_tiles_the_stages_it_must_and_keeps_the_size(
    pair: tuple[Path, Path], tiny_weights: VGGWeights, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stages 96, 136 and 192 px with 128 px cores: the first fits one core and runs whole, the others in windows."""
    content, style = pair
    evaluated: list[tuple[tuple[int, int], int]] = []  # per tiled evaluation: image shape, backward-pass windows
    value_and_grad = TiledObjective.value_and_grad

    def counting(self: TiledObjective, image: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        result = value_and_grad(self, image)
        tiles = plan_tiles(*image.shape[-2:], self.core, self.margin, offset=self.last_offset,
                           align=self.encoder.max_stride)  # fmt: skip
        evaluated.append(((image.shape[-2], image.shape[-1]), len(tiles)))
        return result

    monkeypatch.setattr(TiledObjective, "value_and_grad", counting)
    records: list[StepRecord] = []
    image = stylize(content, style, size=192, start_size=96, iterations=6, tile_size=128, on_step=records.append,
                    weights=tiny_weights, style_layers=SHALLOW, content_layers=["relu2_1"])  # fmt: skip
    assert image.size == (192, 144)
    sizes = [record.size for record in records]
    assert set(sizes) == {(96, 72), (136, 102), (192, 144)}, "every stage ran"
    # One tiled evaluation per L-BFGS step of the stages larger than a core, and one more at each one's end (the
    # blow-up guard judges the last step's picture); none for the 96 px one.
    expected = [(height, width) for width, height in dict.fromkeys(sizes) if max(width, height) > 128
                for _ in range(sizes.count((width, height)) + 1)]  # fmt: skip
    assert [shape for shape, _ in evaluated] == expected
    # The last stage is really cut: 2 x 2 cores at least, wherever the grid stands (136 px may be one core plus a
    # sliver, which joins it, so its count depends on the grid's position).
    assert all(windows >= 4 for shape, windows in evaluated if shape == (144, 192))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tile_size": 32}, "tile size must be"),
        ({"tile_margin": -1}, "tile margin"),
        ({"tile_size": 128, "style_loss": "mrf"}, "tiling cannot be used with the mrf"),
        ({"tile_size": 128, "normalize_gradients": True}, "gradient normalisation"),
    ],
)
def test_bad_tiling_options_are_refused(
    pair: tuple[Path, Path], tiny_weights: VGGWeights, options: dict[str, object], message: str
) -> None:
    content, style = pair
    with pytest.raises(OptionError, match=message):
        stylize(content, style, size=64, iterations=1, weights=tiny_weights, **options)  # type: ignore[arg-type]


def test_no_core_is_a_sliver_whatever_the_offset() -> None:
    """A last core narrower than the deepest stride would leave its window too small for the pooling layers."""
    for offset in range(0, 512, 16):
        tiles = plan_tiles(1000, 700, 512, 0, offset=(offset, offset), align=16)
        assert all(t.core[1] - t.core[0] >= 16 and t.core[3] - t.core[2] >= 16 for t in tiles), offset


def test_a_tiled_run_resumes_exactly_even_if_free_memory_changed(
    pair: tuple[Path, Path], tmp_path: Path, weights_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    import painterly.plan.stages
    import painterly.run
    from painterly import Interrupted, resume

    options = {"weights": str(weights_file), "size": 96, "start_size": 48, "iterations": 8, "seed": 3,
               "history_size": 20, "style_layers": SHALLOW, "content_layers": ["relu2_1"]}  # fmt: skip
    # Little free memory: the automatic plan tiles the last stage (96 px); the 48 and 68 px ones fit whole.
    budget = estimate_run_bytes(VGGEncoder(load_weights(weights_file), ["relu3_1"]).computed_layers, 80, 60)
    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: budget)
    monkeypatch.setattr(painterly.run, "resident_bytes", lambda: BASE_BYTES)  # the budget's own base
    monkeypatch.setattr(painterly.plan.stages, "AUTO_TILE", 64)
    monkeypatch.setattr(painterly.plan.stages, "estimate_tiled_run_bytes", lambda *a, **k: 0)
    uninterrupted = np.asarray(stylize(*pair, **options))
    checkpoint = tmp_path / "run.ckpt"
    seen = {"step": 0}
    with pytest.raises(Interrupted):
        stylize(*pair, **options, checkpoint=checkpoint, on_step=lambda r: seen.update(step=r.step),
                should_stop=lambda: seen["step"] >= 6)  # fmt: skip
    from painterly.io.checkpoint import load_checkpoint

    assert load_checkpoint(checkpoint).config["tile_plan"] == [None, None, 64]
    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: 2**40)  # plenty now: must still tile
    assert np.array_equal(np.asarray(resume(checkpoint)), uninterrupted)
