"""Seconds per optimiser step and peak memory of stylize() at given sizes, against the encoder's floor.

Usage:  python bench/speed.py [--sizes 256 512] [--steps 8] [--device cpu] [--mixed-precision]

Each size runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own.  "floor"
is the encoder's bare forward+backward at the same shape and layers, no losses: the
least any implementation with this network can spend per evaluation.
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
    from painterly.run import mixed_precision_dtype
    from painterly.stylize import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, resolve_device, stylize
    from painterly.weights import default_weights

    weights = default_weights()
    stamps: list[float] = []
    stylize(CONTENT, STYLE, size=size, start_size=None, iterations=steps + 2, weights=weights, device=device,
            mixed_precision=mixed, on_step=lambda record: stamps.append(time.perf_counter()))  # fmt: skip
    per_step = statistics.median(b - a for a, b in itertools.pairwise(stamps[2:]))

    target = resolve_device(device)
    encoder = VGGEncoder(weights, [*DEFAULT_CONTENT_LAYERS, *DEFAULT_STYLE_LAYERS]).to(target)
    if target.type == "cpu":  # as the engine runs it (channels_last is ~18 % faster here at 512 px)
        encoder = encoder.to(memory_format=torch.channels_last)
    encoder.autocast_dtype = mixed_precision_dtype(target, mixed)
    image = pil_to_tensor(resize_long_side(load_image(CONTENT).rgb, size)).to(target).requires_grad_(True)
    floor_times = []
    for _ in range(steps):
        began = time.perf_counter()
        features = encoder(image)
        torch.stack([f.sum() for f in features.values()]).sum().backward()
        if target.type == "cuda":
            torch.cuda.synchronize()
        floor_times.append(time.perf_counter() - began)
    floor = statistics.median(floor_times[1:])
    width, height = image.shape[-1], image.shape[-2]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "size": size,
        "width": width,
        "height": height,
        "step_s": per_step,
        "floor_s": floor,
        "peak_rss_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                        help="as stylize(mixed_precision=...): default on for CUDA, off on the CPU")  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.sizes[0], args.steps, args.device, args.mixed_precision)))
        return
    import torch

    print(f"painterly speed: torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"mixed precision {args.mixed_precision}")  # fmt: skip
    print(f"{'size':>6} {'shape':>10} {'s/step':>8} {'floor s':>8} {'ratio':>6} {'peak RSS':>10}")
    for size in args.sizes:
        command = [sys.executable, __file__, "--child", "--sizes", str(size), "--steps", str(args.steps),
                   "--device", args.device]  # fmt: skip
        if args.mixed_precision is not None:
            command.append("--mixed-precision" if args.mixed_precision else "--no-mixed-precision")
        row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        print(f"{size:>6} {row['width']:>4}x{row['height']:<5} {row['step_s']:>8.3f} {row['floor_s']:>8.3f} "
              f"{row['step_s'] / row['floor_s']:>6.2f} {row['peak_rss_mib']:>7.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
