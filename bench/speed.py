"""Seconds per optimiser step and per evaluation, and peak memory of stylize(), against the encoder's floor.

Usage:  python bench/speed.py [--sizes 256 512] [--steps 8] [--device cpu] [--mixed-precision]

Each size runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own.  "floor"
is the encoder's bare forward+backward at the same shape and layers, no losses: the
least any implementation with this network can spend per evaluation.  "eval" is one
evaluation of the run's objective and its gradient (what the floor bounds); "step"
adds the optimiser's own work (L-BFGS's two-loop recursion over its history), the
engine's bookkeeping and the per-step callback.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTENT = REPO / "examples" / "tubingen.jpg"
STYLE = REPO / "examples" / "starry_night.jpg"


def measure(size: int, steps: int, device: str, mixed: bool) -> dict[str, float]:
    import torch

    from painterly.encoder import VGGEncoder
    from painterly.images import load_image, pil_to_tensor, resize_long_side
    from painterly.run import StyleTransferRun, mixed_precision_dtype
    from painterly.stylize import (
        DEFAULT_CONTENT_LAYERS,
        DEFAULT_STYLE_LAYERS,
        default_options,
        resolve_device,
        stylize,
    )
    from painterly.weights import default_weights

    weights = default_weights()
    stamps: list[float] = []
    stylize(CONTENT, STYLE, size=size, start_size=None, iterations=steps + 2, weights=weights, device=device,
            mixed_precision=mixed, on_step=lambda record: stamps.append(time.perf_counter()))  # fmt: skip
    per_step = statistics.median(b - a for a, b in itertools.pairwise(stamps[2:]))

    target = resolve_device(device)

    def timed(work) -> float:  # type: ignore[no-untyped-def]
        times = []
        for _ in range(steps):
            began = time.perf_counter()
            work()
            if target.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - began)
        return statistics.median(times[1:])

    options = {**default_options(), "size": size, "start_size": None, "weights": weights, "device": device,
               "mixed_precision": mixed}  # fmt: skip
    objective, start = StyleTransferRun(CONTENT, STYLE, options)._objective(size)
    start.requires_grad_(True)
    per_evaluation = timed(lambda: objective(start.clamp(0, 1))[0].backward())

    encoder = VGGEncoder(weights, [*DEFAULT_CONTENT_LAYERS, *DEFAULT_STYLE_LAYERS]).to(target)
    if target.type == "cpu":  # as the engine runs it (channels_last is ~18 % faster here at 512 px)
        encoder = encoder.to(memory_format=torch.channels_last)
    encoder.compute_dtype = mixed_precision_dtype(target, mixed)
    image = pil_to_tensor(resize_long_side(load_image(CONTENT).rgb, size)).to(target).requires_grad_(True)
    floor = timed(lambda: torch.stack([f.sum() for f in encoder(image).values()]).sum().backward())
    width, height = image.shape[-1], image.shape[-2]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "size": size,
        "width": width,
        "height": height,
        "step_s": per_step,
        "evaluation_s": per_evaluation,
        "floor_s": floor,
        "peak_rss_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                        help="as stylize(mixed_precision=...); default: the library's choice")  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.sizes[0], args.steps, args.device, args.mixed_precision)))
        return
    import torch

    print(f"painterly speed: torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"mixed precision {args.mixed_precision}")  # fmt: skip
    print(f"{'size':>6} {'shape':>10} {'s/step':>8} {'s/eval':>8} {'floor s':>8} {'eval/floor':>10} {'peak RSS':>10}")
    for size in args.sizes:
        command = [sys.executable, __file__, "--child", "--sizes", str(size), "--steps", str(args.steps),
                   "--device", args.device]  # fmt: skip
        if args.mixed_precision is not None:
            command.append("--mixed-precision" if args.mixed_precision else "--no-mixed-precision")
        row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        print(f"{size:>6} {row['width']:>4}x{row['height']:<5} {row['step_s']:>8.3f} {row['evaluation_s']:>8.3f} "
              f"{row['floor_s']:>8.3f} {row['evaluation_s'] / row['floor_s']:>10.2f} "
              f"{row['peak_rss_mib']:>7.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
