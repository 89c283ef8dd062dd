"""Time to quality: the default fast path against the paper's method run the long way.

Usage:
    python bench/time_to_quality.py reference   # ~15 min on 2 cores: noise init, L-BFGS, 1000 steps, one 512 px stage
    python bench/time_to_quality.py fast        # the default path (coarse-to-fine, content init) at several budgets
    python bench/time_to_quality.py report      # table + side-by-side picture for docs/performance.md

The reference runs in float32, as the paper did (``--mixed-precision`` runs it in bfloat16 instead, to separate
what the method gains from what the arithmetic gains), with painterly's other defaults (L-BFGS history and all).
Both are scored by ``bench/scorer.py`` (content loss at relu4_2, Gram style loss over relu1_1…relu5_1, at
the image's own size), which does not depend on either run's settings.  The reference is run on painterly's
own engine with its default weights and L-BFGS settings, so the comparison is between methods, not
implementations.  Wall times are whole ``stylize()`` calls (loading, targets, every stage), on an otherwise
idle machine; results accumulate in ``--out`` (default ``bench/out/time_to_quality``) so each part can
be run separately.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from painterly.io.images import save_image, tensor_to_pil
from painterly.nets.registry import default_weights
from painterly.records import StepRecord
from painterly.stylize import stylize
from scorer import Score, Scorer

REPO = Path(__file__).resolve().parents[1]
CONTENT = REPO / "examples" / "tubingen.jpg"
STYLE = REPO / "examples" / "starry_night.jpg"
SIZE = 512
REFERENCE_STEPS = 1000
SNAPSHOTS = (50, 100, 200, 300, 500, 700, 1000)
FAST_BUDGETS = (60, 100, 150, 200, 250)


def _results(out: Path) -> dict:
    path = out / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _store(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))


def run_reference(out: Path, scorer: Scorer, mixed: bool) -> None:
    snapshots: dict[int, tuple[float, torch.Tensor]] = {}
    began = time.perf_counter()

    def keep(record: StepRecord) -> None:
        if record.step in SNAPSHOTS:
            snapshots[record.step] = (time.perf_counter() - began, record.image.clone())

    image = stylize(CONTENT, STYLE, size=SIZE, start_size=None, iterations=REFERENCE_STEPS, init="noise",
                    optimizer="lbfgs", mixed_precision=mixed, weights=default_weights(),
                    progress=True, on_step=keep)  # fmt: skip
    wall = time.perf_counter() - began
    save_image(image, out / "reference.png", overwrite=True)
    curve = []
    for step, (seconds, tensor) in sorted(snapshots.items()):
        score = scorer.score(tensor_to_pil(tensor))
        curve.append({"step": step, "seconds": seconds, "content": score.content, "style": score.style})
        print(f"reference step {step:>5}: {seconds:7.1f} s  content {score.content:.4g}  style {score.style:.4g}")
    results = _results(out)
    results["reference"] = {"wall_s": wall, "mixed_precision": mixed, "curve": curve, **vars(scorer.score(image))}
    _store(out, results)
    print(f"reference: {wall:.1f} s, score {results['reference']}")


def run_fast(out: Path, scorer: Scorer, budgets: list[int], mixed: bool | None) -> None:
    results = _results(out)
    fast = results.setdefault("fast", {})
    weights = default_weights()
    for iterations in budgets:
        began = time.perf_counter()
        image = stylize(CONTENT, STYLE, size=SIZE, iterations=iterations, weights=weights, mixed_precision=mixed)
        wall = time.perf_counter() - began
        save_image(image, out / f"fast_{iterations}.png", overwrite=True)
        score = scorer.score(image)
        fast[str(iterations)] = {"wall_s": wall, **vars(score)}
        print(f"fast, {iterations:>4} iterations: {wall:6.1f} s  content {score.content:.4g}  style {score.style:.4g}")
        _store(out, results)


def report(out: Path, picture: Path) -> None:
    """Which fast budgets beat the reference, which reference snapshot each one beats, and the picture."""
    results = _results(out)
    reference = results["reference"]
    target = Score(reference["content"], reference["style"])
    limit = reference["wall_s"] / 10
    print(f"reference (noise, L-BFGS, {REFERENCE_STEPS} steps at {SIZE} px): {reference['wall_s']:.1f} s, "
          f"content {target.content:.4g}, style {target.style:.4g}; a tenth of its time: {limit:.1f} s")  # fmt: skip
    beating: list[str] = []
    for iterations, row in sorted(results.get("fast", {}).items(), key=lambda item: int(item[0])):
        score = Score(row["content"], row["style"])
        beaten = [point for point in reference["curve"] if score.beats(Score(point["content"], point["style"]))]
        latest = max(beaten, key=lambda point: point["step"]) if beaten else None
        print(f"fast {iterations:>4} iterations: {row['wall_s']:6.1f} s ({row['wall_s'] / reference['wall_s']:.3f} "
              f"of the reference), content {score.content:.4g}, style {score.style:.4g}; beats the reference: "
              f"{score.beats(target)}; beats the reference's snapshots up to "
              + (f"step {latest['step']} ({latest['seconds']:.0f} s)" if latest else "none"))  # fmt: skip
        if score.beats(target):
            beating.append(iterations)
    if not beating:
        print("no fast budget beat the reference on both scores")
        return
    shown = min(beating, key=lambda budget: results["fast"][budget]["wall_s"])
    share = results["fast"][shown]["wall_s"] / reference["wall_s"]
    print(f"fastest budget that beats the reference: {shown} iterations, {share:.3f} of its time "
          f"({'within' if share <= 0.1 else 'NOT within'} a tenth)")  # fmt: skip
    row = results["fast"][shown]
    left, right = Image.open(out / "reference.png"), Image.open(out / f"fast_{shown}.png")
    canvas = Image.new("RGB", (left.width + right.width + 8, max(left.height, right.height) + 44), "white")
    canvas.paste(left, (0, 44))
    canvas.paste(right, (left.width + 8, 44))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 6), f"reference: noise, L-BFGS {REFERENCE_STEPS} steps, {reference['wall_s']:.0f} s", fill="black")
    draw.text((4, 24), f"content {target.content:.3g}, style {target.style:.3g}", fill="black")
    draw.text((left.width + 12, 6), f"default path, {shown} steps, {row['wall_s']:.0f} s", fill="black")
    draw.text((left.width + 12, 24), f"content {row['content']:.3g}, style {row['style']:.3g}", fill="black")
    save_image(canvas, picture, overwrite=True)
    print(f"wrote {picture}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["reference", "fast", "report"])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "time_to_quality")
    parser.add_argument("--budgets", type=int, nargs="+", default=list(FAST_BUDGETS))
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                        help="as stylize(mixed_precision=...); default: float32 for the reference (the paper's "
                             "method as the paper ran it), the library's choice for the fast runs")  # fmt: skip
    parser.add_argument("--picture", type=Path, default=REPO / "docs" / "performance" / "time_to_quality.jpg")
    args = parser.parse_args()
    if args.part == "report":
        report(args.out, args.picture)
        return
    scorer = Scorer(CONTENT, STYLE)
    if args.part == "reference":
        run_reference(args.out, scorer, bool(args.mixed_precision))
    else:
        run_fast(args.out, scorer, args.budgets, args.mixed_precision)


if __name__ == "__main__":
    main()
