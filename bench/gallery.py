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
    Variant("gram-laplacian", "gram + laplacian 100", {"style_loss": "gram", "laplacian_weight": 100.0}),
)

PAIRS = (
    ("tubingen", DATA / "content" / "tubingen.jpg", DATA / "style" / "starry_night.jpg"),
    ("chelsea_cat", DATA / "content" / "chelsea_cat.jpg", DATA / "style" / "great_wave_hokusai.jpg"),
)


def _rss_kib() -> int:
    """Current resident set size in KiB (Linux)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def worker(args: argparse.Namespace) -> None:
    """Run one variant on one pair; print a JSON line with timings and memory."""
    import torch

    from painterly.stylize import stylize
    from painterly.weights import default_weights

    torch.set_num_threads(args.threads)
    weights = default_weights()
    options = json.loads(args.options)
    first_step: list[float] = []
    last_elapsed: list[float] = []

    def on_step(record) -> None:
        if record.step == 1:
            first_step.append(record.elapsed)
        last_elapsed[:] = [record.elapsed]

    rss_before = _rss_kib()
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
    result.save(args.output, optimize=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    steps_after_first = max(1, args.iterations - 1)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "s_per_step": last_elapsed[0] / args.iterations,
                "s_per_step_after_first": (last_elapsed[0] - first_step[0]) / steps_after_first,
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
    parser.add_argument("--threads", type=int, default=2)
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


def write_table(args: argparse.Namespace, rows, pairs, variants) -> None:
    lines = [
        "# Style-loss gallery",
        "",
        "Generated by `bench/gallery.py` (run `PAINTERLY_CACHE_DIR=... python bench/gallery.py`); the losses are",
        "defined in [theory.md](theory.md) §9. Every variant gets the same content, style, size "
        f"({args.size} px long side, coarse-to-fine from {args.start_size} px), step budget ({args.iterations} L-BFGS "
        "steps), seed and weights (style weight 50, content weight 1, default layers relu1_1..relu5_1 for style "
        "and relu4_2 for content), except that MRF uses Li & Wand's layers relu3_1 and relu4_1 and the last column "
        "adds the Laplacian loss (`laplacian_weight=100`) to the Gram loss.",
        "",
        "Sheets: content, style, then one column per variant.",
        "",
    ]
    for pair, _content, _style in pairs:
        lines += [f"![{pair}](gallery/{pair}_sheet.png)", ""]
    lines += [
        f"Timings on CPU ({args.threads} threads of a shared 2-core machine, so expect a few tens of per cent of "
        "noise). *s/step* is the optimisation's wall time over its steps, including the per-stage target "
        "preparation; *peak RSS* is the worker process's `ru_maxrss`; *added* is that minus the resident memory "
        "just before `stylize()` started (torch, weights and encoder already loaded).",
        "",
        "| pair | variant | s/step | s/step after step 1 | peak RSS (MiB) | added by stylize (MiB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for pair, variant, stats in rows:
        lines.append(
            f"| {pair} | {variant.label} | {stats['s_per_step']:.3f} | {stats['s_per_step_after_first']:.3f} "
            f"| {stats['peak_rss_mib']:.0f} | {stats['peak_rss_mib'] - stats['rss_before_mib']:.0f} |"
        )
    args.table.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
