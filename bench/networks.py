"""Compare the networks that have weights here: speed and memory, pictures, and a judging matrix (docs/networks.md).

Three parts, each resumable (its JSON is written after every measurement and a finished entry is skipped when the
command runs again; ``--fresh`` starts over), all unattended:

``speed``  seconds per step and peak memory of a single-size L-BFGS run at each ``--sizes`` (default 512 and 1024
           px) for every network, each in a fresh subprocess; the peak is the run's (Linux's VmHWM, restarted
           once the network is loaded, so reading a weights file does not count);
           beside it the memory the plan estimated for the whole process (:func:`painterly.plan.memory.
           estimate_run_bytes`, which includes the interpreter, torch and the weights) and their ratio.
``paint``  every network on each content/style pair at ``--size`` (default 384 px) with the default path
           (coarse-to-fine from 256 px, L-BFGS) and ``--iterations`` steps; the pictures go to ``--out`` and a grid
           of them, pairs by networks, to ``docs/networks.png``.
``judge``  the judging matrix: every picture scored by the statistics of the *other* networks (no network judges
           its own output; EfficientNet-Lite0's with and without SWAG are one network).  A judge's style distance is
           the mean over its default style layers of :math:`\\|G(x) - G(s)\\|^2 / \\|G(s)\\|^2` (Gram matrices per
           position), its content distance the mean over its content layers of :math:`\\|F(x) - F(c)\\|^2 /
           \\|F(c)\\|^2`; both are divided by the distances of the unstylised content image (style) and of the style
           image resized to the content's shape (content), so 1 means "no better than not stylising" and every judge
           speaks on one scale.  Lower is better for both.
``quality`` every picture (and, for scale, the content itself and the style resized to the content's shape)
           scored by the network-free judges and the Magenta judge of ``bench/judges.py`` (docs/quality.md);
           the means over the pairs print as a table.

Run: ``python bench/networks.py all`` (or one part).  Figures print as tables and land in ``bench/out/networks``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_json import load_results, save_results

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "bench" / "out" / "networks"

#: (label, network, swag): every network with weights here; EfficientNet-Lite0 with and without SWAG.
NETWORKS: tuple[tuple[str, str, bool], ...] = (
    ("vgg19", "vgg19", False),
    ("efficientnet-lite0", "efficientnet-lite0", False),
    ("efficientnet-lite0+swag", "efficientnet-lite0", True),
    ("random-vgg19", "random-vgg19", False),
    ("random-multiscale", "random-multiscale", False),
)

#: Networks whose torchvision-layout file a user brings: measured for speed and memory only (``speed --brought``),
#: with files of random weights made here (memory and time do not depend on the values; pictures would).
BROUGHT: tuple[str, ...] = ("vgg16", "alexnet", "googlenet", "resnet50")

#: Content/style pairs from ../shared/data (SOURCES.md): photos of four kinds, four painters.
PAIRS: tuple[tuple[str, str], ...] = (
    ("content/tubingen.jpg", "style/starry_night.jpg"),
    ("content/chelsea_cat.jpg", "style/great_wave_hokusai.jpg"),
    ("content/golden_gate.jpg", "style/the_scream.jpg"),
    ("content/astronaut.jpg", "style/composition_vii_kandinsky.jpg"),
)


def _cpu() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name"))
        extras = [flag for flag in ("avx512_bf16", "amx_bf16", "amx_tile") if f" {flag}" in flags]
        return f"{model} ({', '.join(extras) or 'no bf16/AMX'})"
    except (OSError, StopIteration):
        return "unknown CPU"


# --- speed and memory ---------------------------------------------------------------------------------------------


def _status_bytes(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def random_torchvision_file(name: str) -> Path:
    """A torchvision-layout file of ``name`` with random weights (He-scaled; batch statistics 0 and 1), made once."""
    import torch

    from painterly.nets import AlexNetLayout, GoogLeNetLayout, ResNet50Layout, VGG16Layout

    path = OUT / "random-files" / f"{name}.pth"
    if path.exists():
        return path
    layout = {"vgg16": VGG16Layout, "alexnet": AlexNetLayout, "googlenet": GoogLeNetLayout,
              "resnet50": ResNet50Layout}[name]  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, value in layout().state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith(("running_var", "bn.weight")) or (value.ndim == 1 and key.endswith("weight")):
            state[key] = torch.ones(value.shape)
        elif value.ndim > 1:
            state[key] = torch.randn(value.shape, generator=generator) * (2.0 / value[0].numel()) ** 0.5
        else:
            state[key] = torch.zeros(value.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def measure_speed(label: str, size: int, steps: int) -> dict[str, Any]:
    """One single-size run of ``steps`` steps in this process: s/step (after the first), peak RSS, the estimate."""
    from painterly.config import RunConfig
    from painterly.run import StyleTransferRun

    if label in BROUGHT:
        name, swag, weights = label, False, str(random_torchvision_file(label))
    else:
        _, name, swag = next(row for row in NETWORKS if row[0] == label)
        weights = None
    content, style = DATA / PAIRS[0][0], DATA / PAIRS[0][1]
    config = RunConfig(network=name, swag=swag, size=size, start_size=None, iterations=steps, device="cpu",
                       max_pixels=2**31, check_memory=False, weights=weights)  # fmt: skip
    before = _status_bytes("VmRSS")
    run = StyleTransferRun(content, style, config)
    loaded = _status_bytes("VmRSS")
    # the run's own peak: reading a weights file can peak higher for a moment (a state dict and its conversion),
    # which is not what the plan estimates; Linux's clear_refs restarts the peak count (VmHWM) here
    Path("/proc/self/clear_refs").write_text("5")
    stamps: list[float] = []
    began = time.perf_counter()
    image = run.execute(on_step=lambda record: stamps.append(time.perf_counter()))
    steps_s = [b - a for a, b in zip([began, *stamps], stamps, strict=False)]
    peak = _status_bytes("VmHWM")
    estimate = run.plan.estimated_bytes
    return {
        "network": label, "size": size, "width": image.width, "height": image.height, "steps": steps,
        "s_per_step": sum(steps_s[1:]) / max(len(steps_s) - 1, 1), "first_step_s": steps_s[0],
        "rss_before_gib": before / 2**30, "rss_loaded_gib": loaded / 2**30, "peak_gib": peak / 2**30,
        "run_peak_gib": (peak - loaded) / 2**30, "estimate_gib": estimate / 2**30,
        "mixed_precision": run.resolved_config.mixed_precision,
    }  # fmt: skip


def speed(args: argparse.Namespace) -> None:
    path = OUT / (args.results or ("speed-brought.json" if args.brought else "speed.json"))
    labels = list(BROUGHT) if args.brought else [label for label, *_ in NETWORKS]
    labels = [label for label in labels if not args.only or label in args.only]
    results = {} if args.fresh else load_results(path)
    results["cpu"] = _cpu()
    for size in args.sizes:
        for label in labels:
            if label in BROUGHT:
                random_torchvision_file(label)  # made here, not in the measured child
            key = f"{label}@{size}"
            if key in results:
                continue
            steps = args.steps if size <= 512 else max(3, args.steps // 2)
            command = [sys.executable, __file__, "speed-child", label, str(size), str(steps)]
            done = subprocess.run(command, capture_output=True, text=True)
            row = (json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0
                   else {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]})  # fmt: skip
            results[key] = row
            save_results(path, results)
            print(key, row, flush=True)
    print(f"\nCPU: {results['cpu']}")
    print(f"{'network':<26}{'size':>6}{'s/step':>9}{'vs vgg19':>10}{'peak GiB':>14}{'estimate GiB':>14}{'ratio':>7}")
    for size in args.sizes:
        base = results.get(f"vgg19@{size}", {}).get("s_per_step")
        for label in labels:
            row = results.get(f"{label}@{size}", {})
            if "s_per_step" not in row:
                print(f"{label:<26}{size:>6}  {row.get('error', 'not measured')}")
                continue
            relative = f"{row['s_per_step'] / base:>10.2f}" if base else f"{'':>10}"
            print(f"{label:<26}{size:>6}{row['s_per_step']:>9.2f}{relative}{row['peak_gib']:>14.2f}"
                  f"{row['estimate_gib']:>14.2f}{row['peak_gib'] / row['estimate_gib']:>7.2f}")  # fmt: skip


# --- pictures -----------------------------------------------------------------------------------------------------


def _picture_path(label: str, pair: tuple[str, str]) -> Path:
    return OUT / "pictures" / f"{Path(pair[0]).stem}__{Path(pair[1]).stem}__{label}.png"


def paint(args: argparse.Namespace) -> None:
    from painterly import stylize
    from painterly.io.images import save_image

    path = OUT / "paint.json"
    results = {} if args.fresh else load_results(path)
    results["cpu"] = _cpu()
    for pair in PAIRS:
        for label, name, swag in NETWORKS:
            key = f"{label}|{pair[0]}|{pair[1]}"
            if key in results and _picture_path(label, pair).exists():
                continue
            began = time.perf_counter()
            steps: list[float] = []
            image = stylize(DATA / pair[0], DATA / pair[1], network=name, swag=swag, size=args.size,
                            iterations=args.iterations, device="cpu", seed=0,
                            on_step=lambda record, steps=steps: steps.append(time.perf_counter()))  # fmt: skip
            save_image(image, _picture_path(label, pair))
            results[key] = {"seconds": time.perf_counter() - began, "steps": len(steps), "size": args.size}
            save_results(path, results)
            print(key, results[key], flush=True)
    _grid(args)


def _grid(args: argparse.Namespace) -> None:
    """Pairs (rows) by content, style and networks (columns), labelled, into docs/networks.png."""
    from PIL import Image, ImageDraw

    cell = 192
    columns = ["content", "style", *(label for label, *_ in NETWORKS)]
    sheet = Image.new("RGB", (cell * len(columns), 24 + cell * len(PAIRS)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, label in enumerate(columns):
        draw.text((column * cell + 4, 6), label, fill="black")
    for row, pair in enumerate(PAIRS):
        pictures = [DATA / pair[0], DATA / pair[1], *(_picture_path(label, pair) for label, *_ in NETWORKS)]
        for column, picture in enumerate(pictures):
            if picture.exists():
                with Image.open(picture) as opened:
                    thumb = opened.convert("RGB")
                    thumb.thumbnail((cell - 4, cell - 4))
                    sheet.paste(thumb, (column * cell + 2, 24 + row * cell + 2))
    target = REPO / "docs" / "networks.png"
    sheet.save(target)
    print(f"grid: {target}")


# --- judging matrix -----------------------------------------------------------------------------------------------


def _family(label: str) -> str:
    return next(name for row_label, name, _ in NETWORKS if row_label == label)


def judge(args: argparse.Namespace) -> None:
    import torch
    from PIL import Image

    from painterly.io.images import pil_to_tensor
    from painterly.nets.registry import network

    path = OUT / "judge.json"
    results = {} if args.fresh else load_results(path)
    judges = list(dict.fromkeys(_family(label) for label, *_ in NETWORKS))

    def open_rgb(picture: Path, size: tuple[int, int] | None = None, long_side: int | None = None) -> torch.Tensor:
        with Image.open(picture) as opened:
            rgb = opened.convert("RGB")
        if size is not None:
            rgb = rgb.resize(size, Image.Resampling.LANCZOS)
        elif long_side is not None:
            scale = long_side / max(rgb.size)
            rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.LANCZOS)
        return pil_to_tensor(rgb)

    def grams(features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for layer, f in features.items():
            flat = f.flatten(2)
            out[layer] = flat @ flat.transpose(1, 2) / flat.shape[-1]
        return out

    def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], layers: tuple[str, ...]) -> float:
        return sum(float((a[k] - b[k]).square().sum() / b[k].square().sum().clamp_min(1e-12)) for k in layers) / len(
            layers
        )

    for judge_name in judges:
        spec = network(judge_name)
        encoder = spec.build(spec.default_weights(), [*spec.content_layers, *spec.style_layers])
        for pair in PAIRS:
            outputs = [label for label, *_ in NETWORKS if _picture_path(label, pair).exists()]
            todo = [label for label in outputs if f"{judge_name}|{label}|{pair[0]}" not in results]
            if not todo:
                continue
            with torch.no_grad():
                first = open_rgb(_picture_path(outputs[0], pair))
                shape = (first.shape[-1], first.shape[-2])
                content = encoder(open_rgb(DATA / pair[0], size=shape))
                style = encoder(open_rgb(DATA / pair[1], long_side=max(shape)))
                style_as_content = encoder(open_rgb(DATA / pair[1], size=shape))
                style_grams = grams(style)
                base_style = distance(grams(content), style_grams, spec.style_layers)
                base_content = distance(style_as_content, content, spec.content_layers)
                for label in todo:
                    features = encoder(open_rgb(_picture_path(label, pair), size=shape))
                    results[f"{judge_name}|{label}|{pair[0]}"] = {
                        "style": distance(grams(features), style_grams, spec.style_layers) / base_style,
                        "content": distance(features, content, spec.content_layers) / base_content,
                    }
            save_results(path, results)
            print(judge_name, pair, "judged", flush=True)
    _matrix(results, judges)


def _matrix(results: dict[str, Any], judges: list[str]) -> None:
    """Rows: outputs; columns: judges (never the output's own network); cells: mean style / content over pairs."""
    print("\nJudging matrix: mean over the pairs of style distance / content distance (1 = the unstylised content")
    print("for style, the style image for content; lower is better); '-' where a network would judge itself.\n")
    print(f"{'output':<26}" + "".join(f"{judge:>22}" for judge in judges) + f"{'mean (others)':>22}")
    for label, *_ in NETWORKS:
        cells, styles, contents = [], [], []
        for judge_name in judges:
            rows = [v for k, v in results.items() if k.startswith(f"{judge_name}|{label}|")]
            if judge_name == _family(label) or not rows:
                cells.append(f"{'-':>22}")
                continue
            style = sum(r["style"] for r in rows) / len(rows)
            content = sum(r["content"] for r in rows) / len(rows)
            styles.append(style)
            contents.append(content)
            cells.append(f"{style:>12.3f} / {content:<7.3f}")
        mean = (f"{sum(styles) / len(styles):>12.3f} / {sum(contents) / len(contents):<7.3f}" if styles
                else f"{'':>22}")  # fmt: skip
        print(f"{label:<26}" + "".join(cells) + mean)


# --- independent judges (bench/judges.py) ---------------------------------------------------------------------------

#: The judges that share nothing with any network here: the network-free ones and Magenta's style vector.
QUALITY_JUDGES = ("ssim_content", "edge_agreement", "colour_style", "patch_style", "magenta_style")
#: Rows beside the networks' pictures: the content itself and the style at the content's shape.
REFERENCES = ("content itself", "style itself")


def _judges_module() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import judges

    return judges


def quality(args: argparse.Namespace) -> None:
    from PIL import Image

    judges = _judges_module()
    path = OUT / "quality.json"
    results = {} if args.fresh else load_results(path)
    for pair in PAIRS:
        content, style = DATA / pair[0], DATA / pair[1]
        pictures = {label: _picture_path(label, pair) for label, *_ in NETWORKS}
        shape = None
        for label, picture in pictures.items():
            key = f"{label}|{pair[0]}|{pair[1]}"
            if not picture.exists():
                continue
            with Image.open(picture) as opened:
                shape = opened.size
            if key not in results:
                results[key] = judges.judge_all(picture, content, style, QUALITY_JUDGES)
                save_results(path, results)
                print(key, results[key], flush=True)
        if shape is None:
            continue
        for label in REFERENCES:
            key = f"{label}|{pair[0]}|{pair[1]}"
            if key not in results:
                with Image.open(content if label == "content itself" else style) as opened:
                    reference = opened.convert("RGB").resize(shape, Image.Resampling.LANCZOS)
                results[key] = judges.judge_all(reference, content, style, QUALITY_JUDGES)
                save_results(path, results)
    print(f"\nIndependent judges, means over the {len(PAIRS)} pairs (SSIM and edges: higher is closer to the content;")
    print("colour, patches, Magenta: lower is closer to the style)\n")
    print(f"{'output':<26}" + "".join(f"{name:>16}" for name in QUALITY_JUDGES))
    for label in [*(label for label, *_ in NETWORKS), *REFERENCES]:
        rows = [v for k, v in results.items() if k.startswith(f"{label}|")]
        if rows:
            means = [sum(row[name] for row in rows) / len(rows) for name in QUALITY_JUDGES]
            print(f"{label:<26}" + "".join(f"{mean:>16.4f}" for mean in means))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["speed", "paint", "judge", "quality", "all", "speed-child"])
    parser.add_argument("child", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--steps", type=int, default=6, help="steps per speed measurement (half at 1024 px, >= 3)")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument(
        "--brought", action="store_true", help="speed: the networks users bring files for (random-weight files)"
    )
    parser.add_argument("--only", nargs="+", metavar="LABEL", help="speed: these networks only")
    parser.add_argument("--results", metavar="FILE", help="speed: the results file in bench/results/networks/")
    args = parser.parse_args()
    if args.part == "speed-child":
        label, size, steps = args.child
        print(json.dumps(measure_speed(label, int(size), int(steps))))
        return
    for part, function in (("speed", speed), ("paint", paint), ("judge", judge), ("quality", quality)):
        if args.part in (part, "all"):
            function(args)


if __name__ == "__main__":
    main()
