"""Seconds per L-BFGS step of VGG-19 and EfficientNet-Lite0 at one size, in one process, and their ratio.

Usage:  python bench/network_speed.py [--size 512] [--steps 6] [--profile]

Issue 18's target: EfficientNet-Lite0 at most a fifth of VGG-19's seconds per step at 512 px on the same machine
in the same run.  Each network runs ``stylize`` (float32, no coarse-to-fine stage, its default layers: VGG-19's
relu4_2 / relu1_1-relu5_1, EfficientNet-Lite0's block7 / stem, block2, block4, block7, block10) for ``steps`` + 2
steps; the median of the step-to-step intervals after the first two (which include the targets' pass and warm-up)
is its seconds per step.  ``--profile`` adds torch.profiler's operator table (CPU time, top 12) of one more
EfficientNet run, to say where its time goes.  Needs both networks' weights cached (`painterly weights fetch`).

Measured 2026-12-01 (``python bench/network_speed.py --size 512 --steps 6 --profile``; "Intel(R) Xeon(R)
Processor", 2 cores, torch 2.13.0+cpu, 2 threads, load average below 1): vgg19 1.003 s/step, efficientnet-lite0
0.070 s/step, ratio 0.070 (target met, at most 0.2).  EfficientNet's CPU time by operator: forward convolutions
28 %, their backward 22 % (the depthwise ones included; nothing pathological), ReLU6 (hardtanh) forward and
backward 26 % and 12 %: on maps this thin the element-wise passes cost as much as the convolutions.  An in-place
ReLU6 made no difference (0.073 s/step).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTENT = REPO / "examples" / "tubingen.jpg"
STYLE = REPO / "examples" / "starry_night.jpg"


def seconds_per_step(network: str, size: int, steps: int) -> float:
    """The median seconds per L-BFGS step of a float32 run of ``network`` at ``size`` px."""
    from painterly.nets.registry import network as network_named
    from painterly.stylize import stylize

    spec = network_named(network)
    stamps: list[float] = []
    stylize(CONTENT, STYLE, network=network, size=size, start_size=None, iterations=steps + 2, device="cpu",
            mixed_precision=False, content_layers=spec.content_layers, style_layers=spec.style_layers,
            on_step=lambda record: stamps.append(time.perf_counter()))  # fmt: skip
    return statistics.median(b - a for a, b in itertools.pairwise(stamps[2:]))


def profile(network: str, size: int, steps: int) -> str:
    """torch.profiler's operators by total CPU time over a run of ``network``."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        seconds_per_step(network, size, steps)
    return str(prof.key_averages().table(sort_by="cpu_time_total", row_limit=12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size} px, {args.steps} steps")
    timings = {name: seconds_per_step(name, args.size, args.steps) for name in ("vgg19", "efficientnet-lite0")}
    for name, seconds in timings.items():
        print(f"{name:>20}: {seconds:.3f} s/step")
    ratio = timings["efficientnet-lite0"] / timings["vgg19"]
    print(f"efficientnet-lite0 / vgg19 = {ratio:.3f} (target: at most 0.2)")
    if args.profile:
        print(profile("efficientnet-lite0", args.size, 2))


if __name__ == "__main__":
    main()
