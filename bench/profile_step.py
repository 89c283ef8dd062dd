"""Where an objective evaluation spends its time beyond the floor: torch.profiler tables, side by side.

Usage:  python bench/profile_step.py [--size 512] [--evaluations 3] [--rows 15]

Profiles ``--evaluations`` calls of the default objective's forward + backward (what one L-BFGS step
costs) and as many bare encoder forward + backward passes (the floor), and prints each one's top
operators by self CPU time, and the difference of the totals per operator: what to remove.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from painterly.encoder import VGGEncoder
from painterly.images import load_image, pil_to_tensor, resize_long_side
from painterly.losses import ContentLoss, GramLoss
from painterly.objective import Objective
from painterly.stylize import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
from painterly.weights import default_weights

REPO = Path(__file__).resolve().parents[1]


def _self_times(prof: profile) -> Counter[str]:
    totals: Counter[str] = Counter()
    for event in prof.key_averages():
        totals[event.key] += event.self_cpu_time_total
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--evaluations", type=int, default=3)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    encoder = VGGEncoder(default_weights(), [*DEFAULT_CONTENT_LAYERS, *DEFAULT_STYLE_LAYERS])
    encoder = encoder.to(memory_format=torch.channels_last)
    content = pil_to_tensor(resize_long_side(load_image(REPO / "examples" / "tubingen.jpg").rgb, args.size))
    style = pil_to_tensor(resize_long_side(load_image(REPO / "examples" / "starry_night.jpg").rgb, args.size))
    objective = Objective.build(
        encoder, content=content, styles=[style], content_loss=ContentLoss(), style_loss=GramLoss(),
        content_layer_weights={"relu4_2": 1.0}, style_layer_weights={k: 10.0 for k in DEFAULT_STYLE_LAYERS},
        style_blend=[1.0], tv_weight=0.0,
    )  # fmt: skip
    image = content.clone().requires_grad_(True)

    def evaluation() -> None:
        image.grad = None
        total, _ = objective(image)
        total.backward()

    def floor() -> None:
        image.grad = None
        features = encoder(image)
        torch.stack([f.sum() for f in features.values()]).sum().backward()

    tables = {}
    for name, work in (("objective", evaluation), ("floor", floor)):
        work()  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.evaluations):
                work()
        tables[name] = _self_times(prof)
        print(f"== {name}: {sum(tables[name].values()) / 1e6 / args.evaluations:.3f} s self CPU per evaluation")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    extra = tables["objective"].copy()
    extra.subtract(tables["floor"])
    print("== objective minus floor, per evaluation (ms):")
    for key, micros in extra.most_common(args.rows):
        print(f"{micros / 1e3 / args.evaluations:10.1f}  {key}")


if __name__ == "__main__":
    main()
