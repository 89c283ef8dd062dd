"""Optimisers compared on the same work: loss against iterations and against seconds.

Usage:  python bench/optimizers.py [--size 256] [--budget 60] [--init noise] [--out docs]
                                  [--prefix content-init_] [--results results-content.json]

Every optimiser gets the same content/style pair, the same size (one stage, no
coarse-to-fine, so only the optimiser differs), the same objective and the same
budget of CPU seconds (process time, one torch thread by default: a fair clock
even on a machine shared with other work; on an idle machine with one thread it
equals wall time).  Seconds count every objective evaluation (L-BFGS with line
search makes several per step).  Writes, under ``OUT/optimizers/``, a loss plot
``PREFIXpair_loss.png`` and the images each produced side by side ``PREFIXpair_images.jpg``
per pair, and the numbers of all pairs in ``RESULTS`` (docs/optimizers.md's tables come from them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from painterly.io.images import save_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from painterly.records import StepRecord
from painterly.run import Interrupted
from painterly.stylize import stylize
from scorer import Scorer

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PAIRS = {
    "tubingen-starry": (REPO / "examples" / "tubingen.jpg", REPO / "examples" / "starry_night.jpg"),
    "coffee-wave": (DATA / "content" / "coffee.jpg", DATA / "style" / "great_wave_hokusai.jpg"),
}

#: name -> stylize keywords.  Learning rates are on the [0, 1] image scale.
CONFIGS: dict[str, dict[str, object]] = {
    "lbfgs": {"optimizer": "lbfgs", "history_size": 100},  # Gatys's / Johnson's setting
    "lbfgs-h20": {"optimizer": "lbfgs", "history_size": 20},
    "lbfgs-h50": {"optimizer": "lbfgs", "history_size": 50},
    "lbfgs-wolfe": {"optimizer": "lbfgs", "line_search": True},
    "adam-0.02": {"optimizer": "adam", "learning_rate": 0.02},
    "adam-0.05-cos": {"optimizer": "adam", "learning_rate": 0.05, "lr_decay": 0.05},
    "adam-0.05-cos-avg": {"optimizer": "adam", "learning_rate": 0.05, "lr_decay": 0.05, "average": 0.9},
    "gd-momentum": {"optimizer": "gd", "momentum": 0.9},
    "gd-plain": {"optimizer": "gd", "momentum": 0.0},
}


@dataclass
class Trace:
    name: str
    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    evaluations: list[int] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    content: list[float] = field(default_factory=list)
    style: list[float] = field(default_factory=list)
    cpu_start: float = field(default_factory=time.process_time)

    def add(self, record: StepRecord) -> None:
        self.steps.append(record.step)
        self.seconds.append(time.process_time() - self.cpu_start)
        self.evaluations.append(record.evaluations)
        self.total.append(record.losses["total"])
        self.content.append(record.losses.get("content", 0.0))
        self.style.append(record.losses.get("style", 0.0))

    def time_to_reach(self, level: float) -> float | None:
        return next((s for s, t in zip(self.seconds, self.total, strict=True) if t <= level), None)


def run(name: str, pair: tuple[Path, Path], size: int, budget: float, init: str) -> tuple[Trace, Image.Image]:
    trace = Trace(name)
    try:
        stylize(
            *pair, size=size, start_size=None, iterations=100_000, init=init, seed=0, device="cpu",
            on_step=trace.add, should_stop=lambda: time.process_time() - trace.cpu_start > budget,
            **CONFIGS[name],  # type: ignore[arg-type]
        )  # fmt: skip
    except Interrupted as stopped:  # the budget ran out: that is the normal end here
        return trace, stopped.image
    raise RuntimeError("the step budget ran out before the time budget")


def plot(traces: list[Trace], pair_name: str, out: Path, prefix: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for trace in traces:
        axes[0].plot(trace.steps, trace.total, label=trace.name)
        axes[1].plot(trace.seconds, trace.total, label=trace.name)
    for axis, label in zip(axes, ("iteration", "CPU seconds (all evaluations counted)"), strict=True):
        axis.set_yscale("log")
        axis.set_xlabel(label)
        axis.set_ylabel("total loss")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"{pair_name}: total loss, same objective and budget")
    figure.tight_layout()
    path = out / f"{prefix}{pair_name}_loss.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def sheet(images: dict[str, Image.Image], path: Path) -> None:
    width, height = next(iter(images.values())).size
    canvas = Image.new("RGB", (width * len(images), height + 18), "white")
    draw = ImageDraw.Draw(canvas)
    for index, (name, image) in enumerate(images.items()):
        canvas.paste(image.convert("RGB"), (index * width, 18))
        draw.text((index * width + 4, 3), name, fill="black")
    save_image(canvas, path, overwrite=True, quality=88)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per optimiser run")
    parser.add_argument("--init", default="noise")
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the budget is CPU time)")
    parser.add_argument("--prefix", default="", help="put before each figure's name (e.g. content-init_)")
    parser.add_argument("--results", default="results.json", help="name of the results file in OUT/optimizers")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    figures = args.out / "optimizers"
    figures.mkdir(parents=True, exist_ok=True)
    rows = []
    for pair_name in args.pairs:
        traces, images = [], {}
        for name in args.configs:
            trace, image = run(name, PAIRS[pair_name], args.size, args.budget, args.init)
            traces.append(trace)
            images[name] = image
            per_step = trace.seconds[-1] / trace.steps[-1]
            print(f"{pair_name:16} {name:18} steps {trace.steps[-1]:5d} evals {sum(trace.evaluations):5d} "
                  f"s/step {per_step:.3f} total {trace.total[-1]:.4g}", flush=True)  # fmt: skip
        plot(traces, pair_name, figures, args.prefix)
        sheet(images, figures / f"{args.prefix}{pair_name}_images.jpg")
        reference = next(t for t in traces if t.name == "lbfgs")
        scorer = Scorer(*PAIRS[pair_name])
        for trace in traces:
            score = scorer.score(images[trace.name])
            rows.append({
                "score_content": score.content, "score_style": score.style,
                "pair": pair_name, "optimizer": trace.name, "steps": trace.steps[-1],
                "evaluations": sum(trace.evaluations), "s_per_step": trace.seconds[-1] / trace.steps[-1],
                "total": trace.total[-1], "content": trace.content[-1], "style": trace.style[-1],
                "t_to_lbfgs_half": trace.time_to_reach(reference.total[len(reference.total) // 2]),
                "t_to_lbfgs_final": trace.time_to_reach(reference.total[-1]),
            })  # fmt: skip
    (figures / args.results).write_text(json.dumps(rows, indent=1))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
