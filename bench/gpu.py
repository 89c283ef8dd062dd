"""The prepared GPU check: one script, a few minutes, every figure the performance notes need from a CUDA machine.

Usage:  python bench/gpu.py [--out DIR] [--quick]

Prints, and writes as JSON to ``DIR/gpu.json`` (``$OUT`` when set):

1. seconds per evaluation of the default objective at 512 and 2048 px, float32 and mixed precision,
   with the encoder's bare forward+backward (the floor) beside them;
2. whether mixed precision changes the result: 60 steps at 512 px both ways, the mean absolute pixel
   difference (0-255) and both scores under ``bench/scorer.py``;
3. the largest untiled size that fits (sizes tried upward until CUDA runs out of memory), with peak
   memory, in float32 and mixed precision;
4. a tiled 8192 px stage (two steps): wall time and peak GPU memory.

It needs the weights in the cache (``painterly weights fetch`` before, where there is network) and the CUDA
build of PyTorch.  Nothing here is a test: the numbers go into docs/performance.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from floor import bare_pass
from painterly.engine.precision import compute_dtype, resolve_mixed_precision
from painterly.io.images import load_image, pil_to_tensor, resize_long_side
from painterly.nets.encoder import VGGEncoder
from painterly.nets.registry import default_weights
from painterly.stylize import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, stylize

REPO = Path(__file__).resolve().parents[1]
CONTENT = REPO / "examples" / "tubingen.jpg"
STYLE = REPO / "examples" / "starry_night.jpg"


def _step_seconds(size: int, mixed: bool, steps: int, **options: object) -> float:
    stamps: list[float] = []
    stylize(CONTENT, STYLE, size=size, start_size=None, iterations=steps + 2, device="cuda", mixed_precision=mixed,
            weights=default_weights(), max_pixels=2**31, on_step=lambda r: stamps.append(time.perf_counter()),
            **options)  # type: ignore[arg-type]  # fmt: skip
    return statistics.median(b - a for a, b in itertools.pairwise(stamps))


def _floor_seconds(size: int, mixed: bool, steps: int) -> float:
    encoder = VGGEncoder(default_weights(), [*DEFAULT_CONTENT_LAYERS, *DEFAULT_STYLE_LAYERS]).cuda()
    encoder.compute_dtype = compute_dtype(resolve_mixed_precision(torch.device("cuda"), mixed))
    image = pil_to_tensor(resize_long_side(load_image(CONTENT).rgb, size)).cuda().requires_grad_(True)
    bare = bare_pass(encoder, image)  # bench/floor.py
    times = []
    for _ in range(steps + 1):
        torch.cuda.synchronize()
        began = time.perf_counter()
        bare()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    return statistics.median(times[1:])


def _fits(size: int, mixed: bool) -> float | None:
    """Peak GiB of a two-step untiled stage at ``size``, or None when CUDA runs out of memory."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    try:
        stylize(CONTENT, STYLE, size=size, start_size=None, iterations=2, device="cuda", mixed_precision=mixed,
                weights=default_weights(), tile_size=0, check_memory=False, max_pixels=2**31)  # fmt: skip
    except torch.cuda.OutOfMemoryError:
        return None
    return torch.cuda.max_memory_allocated() / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "bench/out")))
    parser.add_argument("--quick", action="store_true", help="fewer steps and sizes (a smoke run)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench/gpu.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    steps = 3 if args.quick else 8
    report: dict[str, object] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    print(f"{report['device']}, torch {torch.__version__}", flush=True)

    speed = []
    for size in (512, 2048):
        for mixed in (False, True):
            row = {"size": size, "mixed": mixed, "step_s": _step_seconds(size, mixed, steps),
                   "floor_s": _floor_seconds(size, mixed, steps)}  # fmt: skip
            speed.append(row)
            print(f"{size:>5} px {'mixed' if mixed else 'fp32':>5}: {row['step_s']:.4f} s/step, floor "
                  f"{row['floor_s']:.4f} s, ratio {row['step_s'] / row['floor_s']:.2f}", flush=True)  # fmt: skip
    report["speed"] = speed

    from scorer import Scorer

    scorer = Scorer(CONTENT, STYLE)
    results = {}
    for mixed in (False, True):
        image = stylize(CONTENT, STYLE, size=512, start_size=None, iterations=60, device="cuda",
                        mixed_precision=mixed, weights=default_weights())  # fmt: skip
        results[mixed] = image
        score = scorer.score(image)
        report[f"score_{'mixed' if mixed else 'fp32'}"] = vars(score)
        print(
            f"60 steps at 512 px, {'mixed' if mixed else 'fp32'}: content {score.content:.4g}, style {score.style:.4g}"
        )
    difference = (pil_to_tensor(results[True]) - pil_to_tensor(results[False])).abs().mean() * 255
    report["mixed_mean_abs_difference_255"] = float(difference)
    print(f"mean |mixed - fp32| = {float(difference):.2f} / 255", flush=True)

    largest = {}
    for mixed in (False, True):
        best = None
        for size in (2048, 3072, 4096) if args.quick else (2048, 3072, 4096, 5120, 6144, 7168, 8192, 10240):
            peak = _fits(size, mixed)
            print(f"untiled {size:>5} px {'mixed' if mixed else 'fp32':>5}: "
                  f"{'out of memory' if peak is None else f'{peak:.1f} GiB peak'}", flush=True)  # fmt: skip
            if peak is None:
                break
            best = {"size": size, "peak_gib": peak}
        largest["mixed" if mixed else "fp32"] = best
    report["largest_untiled"] = largest

    torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    stylize(CONTENT, STYLE, size=4096 if args.quick else 8192, start_size=None, iterations=2, device="cuda",
            weights=default_weights(), tile_size=1024, max_pixels=2**31, history_size=5)  # fmt: skip
    report["tiled"] = {"size": 4096 if args.quick else 8192, "wall_s": time.perf_counter() - began,
                       "peak_gib": torch.cuda.max_memory_allocated() / 2**30}  # fmt: skip
    print(f"tiled: {report['tiled']}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'gpu.json'}")


if __name__ == "__main__":
    main()
