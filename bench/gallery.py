"""Gallery of the style-loss variants: same pairs, same size, same step budget; time and memory per variant.

    PAINTERLY_CACHE_DIR=/tmp/pcache python bench/gallery.py            # writes docs/gallery/ and docs/gallery.md

Each (pair, variant) runs in its own subprocess so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own; the subprocess also
records the resident memory just before ``stylize()`` starts (weights loaded,
encoder built), so the table can show what the optimisation itself added.
The figures are CPU wall-clock times on whatever machine runs this, so they are
only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class Variant:
    """One column of the gallery: a style loss and any options it needs."""

    key: str  #: file-name-safe identifier
    label: str
    options: dict


VARIANTS = (
    Variant("gram", "gram", {"style_loss": "gram"}),
    Variant("shifted-gram", "shifted-gram", {"style_loss": "shifted-gram"}),
    Variant("wasserstein", "wasserstein", {"style_loss": "wasserstein"}),
    # Li & Wand's layers: on relu1_1/relu2_1 patch matching is slow and only matches colours (theory.md §9.3).
    Variant("mrf", "mrf (relu3_1, relu4_1)", {"style_loss": "mrf", "style_layers": ["relu3_1", "relu4_1"]}),
    Variant("histogram", "histogram", {"style_loss": "histogram"}),
    Variant("gram-laplacian", "gram + laplacian 1000", {"style_loss": "gram", "laplacian_weight": 1000.0}),
)

#: What the committed pictures show (written by looking at them; update it when the settings change).
OBSERVATIONS = """\
What the pictures show (at the default style weight 50, which at 256 px is strong for every variant):

- **gram**: the reference; swirls and wave crests all over, the houses and the cat's eyes still legible.
- **shifted-gram**: very close to Gram; the content's own colours survive a little better (the cat stays orange,
  the Tübingen roofs more legible).
- **wasserstein**: stronger contrast and darker darks; it reproduces large motifs of the style (dark cypress-like
  columns and a large yellow swirl over Tübingen, whose houses nearly vanish) and, on the cat, keeps less of the
  face than Gram (the eyes turn into wave crests).
- **mrf** (`scale` 0.05, relu3_1 and relu4_1): the content stays clearly recognisable and the style comes as
  a few pasted motifs (glowing stars in the Tübingen sky, small wave crests at the cat's right edge) rather than
  a statistical texture; at this budget it is by far the least stylised variant. A slightly larger weight copies
  the style image wholesale (theory.md §9.3).
- **histogram**: very close to Gram here (brightness contrast and saturation within 3 % of Gram's).
- **gram + laplacian 1000**: the same texture, but the content's edges stay put: roof lines, windows and the church
  tower, and the outlines of the cat's eyes, are a little crisper, with fewer bright blobs over the houses (a lower
  content loss than Gram in the table); the sky's swirls are as strong as Gram's.
"""

#: Who made the pictures (shared/data/SOURCES.md); the Tübingen photo is CC BY, so its results must credit it.
CREDITS = """\
Pictures: *Tübingen* (the Neckarfront), photo by Andreas Praefcke, Wikimedia Commons, CC BY 3.0 (the photo used by
Gatys et al.); the results in `gallery/tubingen_*.png` are stylised versions of it, shared under the same licence
with this credit. *Chelsea the cat*: Stefan van der Walt, CC0 (scikit-image). Van Gogh, *The Starry Night*, and
Hokusai, *The Great Wave off Kanagawa*: public domain."""

PAIRS = (
    ("tubingen", DATA / "content" / "tubingen.jpg", DATA / "style" / "starry_night.jpg"),
    ("chelsea_cat", DATA / "content" / "chelsea_cat.jpg", DATA / "style" / "great_wave_hokusai.jpg"),
)


def _rss_kib() -> int:
    """Current resident set size in KiB (Linux)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _content_loss(weights, content_path: str, result_path: str) -> float:
    """mean((F - P)^2) at relu4_2 between the saved result and the content at the result's size (theory.md §2)."""
    import torch
    from PIL import Image

    from painterly.io.images import load_image, pil_to_tensor
    from painterly.nets.encoder import VGGEncoder

    with Image.open(result_path) as saved:
        result = saved.convert("RGB")
    content = load_image(Path(content_path)).rgb.resize(result.size, Image.Resampling.LANCZOS)
    encoder = VGGEncoder(weights, ["relu4_2"])
    with torch.no_grad():
        ours, theirs = (encoder(pil_to_tensor(picture))["relu4_2"] for picture in (result, content))
        return float((ours - theirs).pow(2).mean())


def worker(args: argparse.Namespace) -> None:
    """Run one variant on one pair; print a JSON line with timings and memory."""
    import torch

    from painterly.nets.registry import default_weights
    from painterly.stylize import stylize

    torch.set_num_threads(args.threads)
    weights = default_weights()
    options = json.loads(args.options)
    first_step: list[float] = []
    last_elapsed: list[float] = []
    stage_ends: dict[int, tuple[int, float]] = {}  # stage -> (its last step, CPU seconds of the process then)

    def on_step(record) -> None:
        if record.step == 1:
            first_step.append(record.elapsed)
        last_elapsed[:] = [record.elapsed]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stage_ends[record.stage] = (record.step, usage.ru_utime + usage.ru_stime)

    rss_before = _rss_kib()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = stylize(
        args.content,
        args.style,
        size=args.size,
        start_size=args.start_size,
        iterations=args.iterations,
        weights=weights,
        device="cpu",
        seed=0,
        on_step=on_step,
        **options,
    )
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result.save(args.output, optimize=True)
    content_loss = _content_loss(weights, args.content, args.output)
    steps_after_first = max(1, args.iterations - 1)
    final = max(stage_ends)
    before = stage_ends.get(final - 1)
    if before is None:  # one stage: measure from the start (target preparation included)
        before = (0, cpu_before.ru_utime + cpu_before.ru_stime)
    final_step_s = (stage_ends[final][1] - before[1]) / max(1, stage_ends[final][0] - before[0])
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s_per_step": cpu / args.iterations,
                "s_per_step": last_elapsed[0] / args.iterations,
                "s_per_step_after_first": (last_elapsed[0] - first_step[0]) / steps_after_first,
                "final_stage_cpu_s_per_step": final_step_s,
                "content_loss": content_loss,
                "peak_rss_mib": peak / 1024,
                "rss_before_mib": rss_before / 1024,
            }
        )
    )


def contact_sheet(tiles: list[tuple[str, Path]], output: Path, tile_width: int) -> None:
    """Lay the images out side by side with a caption under each, and save a palette PNG."""
    from PIL import Image, ImageDraw, ImageFont

    images = []
    for caption, path in tiles:
        with Image.open(path) as picture:
            picture = picture.convert("RGB")
            height = round(picture.height * tile_width / picture.width)
            images.append((caption, picture.resize((tile_width, height), Image.Resampling.LANCZOS)))
    caption_height = 18
    tallest = max(image.height for _, image in images)
    sheet = Image.new("RGB", (tile_width * len(images), tallest + caption_height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for index, (caption, image) in enumerate(images):
        sheet.paste(image, (index * tile_width, 0))
        draw.text((index * tile_width + 4, tallest + 3), caption, fill="black", font=font)
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
        output, optimize=True
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--start-size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (1: CPU time is meaningful)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "gallery")
    parser.add_argument("--table", type=Path, default=REPO / "docs" / "gallery.md")
    parser.add_argument("--tile-width", type=int, default=192)
    parser.add_argument("--only", nargs="+", default=None, help="variant keys to run (default: all)")
    parser.add_argument("--pairs", nargs="+", default=None, help="pair names to run (default: all)")
    # Internal: one variant in this process.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--content", help=argparse.SUPPRESS)
    parser.add_argument("--style", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    variants = [v for v in VARIANTS if args.only is None or v.key in args.only]
    pairs = [p for p in PAIRS if args.pairs is None or p[0] in args.pairs]
    rows: list[tuple[str, Variant, dict]] = []
    for pair, content, style in pairs:
        tiles: list[tuple[str, Path]] = [("content", content), ("style", style)]
        for variant in variants:
            output = args.out / f"{pair}_{variant.key}.png"
            command = [
                sys.executable,
                __file__,
                "--worker",
                f"--content={content}",
                f"--style={style}",
                f"--options={json.dumps(variant.options)}",
                f"--output={output}",
                f"--size={args.size}",
                f"--start-size={args.start_size}",
                f"--iterations={args.iterations}",
                f"--threads={args.threads}",
            ]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            stats = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{pair:12s} {variant.key:15s} {json.dumps(stats)}", flush=True)
            rows.append((pair, variant, stats))
            tiles.append((variant.label.split(" (")[0], output))
        contact_sheet(tiles, args.out / f"{pair}_sheet.png", args.tile_width)
    write_table(args, rows, pairs, variants)
    return 0


def _revision() -> int:
    """The run revision the pictures were made with (painterly.plan.stages.CURRENT_REVISION), so the page says which
    engine."""
    from painterly.plan.stages import CURRENT_REVISION

    return CURRENT_REVISION


def write_table(args: argparse.Namespace, rows, pairs, variants) -> None:
    from painterly.engine.precision import cpu_description  # names the CPU: timings mean little without it

    lines = [
        "# Style-loss gallery",
        "",
        "Generated by `bench/gallery.py` (`python bench/gallery.py --size "
        f"{args.size} --start-size {args.start_size} --iterations {args.iterations} --threads {args.threads}`,",
        f"run revision {_revision()}; it writes docs/gallery/ and this page); the losses are",
        "defined in [theory.md](theory.md) §9. Every variant gets the same content, style, size "
        f"({args.size} px long side, coarse-to-fine from {args.start_size} px), step budget ({args.iterations} L-BFGS "
        "steps), seed and weights (style weight 50, content weight 1, default layers relu1_1..relu5_1 for style "
        "and relu4_2 for content), except that MRF uses Li & Wand's layers relu3_1 and relu4_1 and the last column "
        "adds the Laplacian loss (`laplacian_weight=1000`) to the Gram loss.",
        "",
        "Sheets: content, style, then one column per variant (each variant's full-size result is "
        "`gallery/<pair>_<variant>.png`).",
        "",
    ]
    for pair, _content, _style in pairs:
        lines += [f"![{pair}](gallery/{pair}_sheet.png)", ""]
    lines += [OBSERVATIONS]
    lines += [
        f"Timings on CPU with {args.threads} torch thread(s) on a 2-core machine shared with other jobs "
        f"({cpu_description()}; mixed precision left to its automatic choice). "
        "*CPU s/step* (user + system time of the run over its steps, including each stage's target preparation) "
        f"is the figure to compare: it hardly depends on what else runs; *wall s/step* does, a lot. *CPU s/step at "
        f"{args.size} px* is the same for the last stage alone (the earlier stages are smaller and cheaper). "
        "*Peak RSS* is the worker process's `ru_maxrss`; *added* is that minus the resident memory just before "
        "`stylize()` started (torch, weights and encoder already loaded), a rough figure: it also holds the "
        "decoded input pictures and whatever the allocator keeps. Gram, with or without the Laplacian term, is the "
        "cheapest per step: under mixed precision its Gram products take the bfloat16 features as they are, while "
        "the other losses work on float32 copies, and MRF's patch matching (on two style layers instead of five) "
        "and the histogram loss's sorting cost more still. *Content loss* is $\\mathrm{mean}(F - P)^2$ at relu4_2 "
        "between the saved result and the content (lower: more of the content kept).",
        "",
        f"| pair | variant | CPU s/step | CPU s/step at {args.size} px | wall s/step | peak RSS (MiB) "
        "| added by stylize (MiB) | content loss |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for pair, variant, stats in rows:
        lines.append(
            f"| {pair} | {variant.label} | {stats['cpu_s_per_step']:.3f} "
            f"| {stats['final_stage_cpu_s_per_step']:.3f} | {stats['s_per_step']:.3f} "
            f"| {stats['peak_rss_mib']:.0f} | {stats['peak_rss_mib'] - stats['rss_before_mib']:.0f} "
            f"| {stats['content_loss']:.2f} |"
        )
    lines += ["", CREDITS]
    args.table.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
