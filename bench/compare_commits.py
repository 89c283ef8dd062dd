"""Do two commits compute the same pictures?  The acceptance check for refactors that must not move results.

Usage:  python bench/compare_commits.py OLD NEW [--default-run] [--cases PATTERN ...] [--keep]

Bit-identity holds per CPU (oneDNN picks kernels by CPU model), and the machines' CPU changes from one day to the
next, so results are compared between commits on one machine, never against stored hashes.  Each commit is checked
out into a git worktree (under $TMPDIR/painterly-compare) and this script (the copy it is run from, for both
commits) runs there as a child with that worktree's ``src`` first on ``PYTHONPATH``, so ``import painterly`` is
the commit's code (each child reports the file it imported, and the parent checks it).  The child computes every
case and prints the sha256 of each result: the last step's image as float32 tensor bytes, before rounding to 8
bits, so a change in the last bit shows.  The parent prints a table and exits 1 if any case differs, or if NEW
cannot compute a case that OLD could, or if nothing at all was compared.

Cases (the precision always given explicitly):
- ``tiny/rN/{plain,tiled,masked,two-styles}/{float32,bfloat16}``: run revisions 1-5 on a tiny random VGG-19
  (4 channels per layer, seeded) at 64 px, coarse-to-fine from 32 px, 24 L-BFGS steps;
- ``tiny/stopped-and-resumed/{float32,bfloat16}``: the plain case stopped after 7 steps, its checkpoint resumed;
  the result must equal the uninterrupted run's in both commits (checked in the child) and across commits;
- ``vgg19/default-512`` (``--default-run``, minutes): the default run at 512 px with the real weights, float32
  and bfloat16 (``make demo``'s settings).

A case a commit cannot express (e.g. a revision it does not know) is reported as "n/a" for that commit; that is
a pass only where OLD is the one that cannot.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
REVISIONS = (1, 2, 3, 4, 5)
VARIANTS = ("plain", "tiled", "masked", "two-styles")
PRECISIONS = {"float32": False, "bfloat16": True}


# --- the child: runs inside one commit's code ---------------------------------------------------------------------


def _tiny_weights_file(folder: Path) -> Path:
    """VGG-19's topology with 4 channels per layer, seeded weights, saved as a weights file with its means."""
    import torch

    try:
        from painterly.nets.vgg import VGG19_CONV_LAYERS
    except ImportError:  # commits before the sub-packages (issue 17) kept it in a flat module
        from painterly.weights import VGG19_CONV_LAYERS

    generator = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}
    in_channels, width = 3, 4
    for name in VGG19_CONV_LAYERS:
        scale = (2.0 / (9 * in_channels)) ** 0.5
        state[f"{name}.weight"] = torch.randn(width, in_channels, 3, 3, generator=generator) * scale
        state[f"{name}.bias"] = torch.full((width,), 0.01)
        state[f"mean.{name}"] = torch.ones(width)
        in_channels = width
    path = folder / "tiny-vgg19.pt"
    torch.save(state, path)
    return path


def _inputs(folder: Path) -> dict[str, Path]:
    """Small real pictures (the bundled examples) and a half mask, written once per child."""
    from PIL import Image

    paths = {}
    for name, source, size in (("content", "tubingen.jpg", (96, 72)), ("style", "starry_night.jpg", (80, 64)),
                               ("style2", "tubingen.jpg", (64, 64))):  # fmt: skip
        with Image.open(EXAMPLES / source) as image:
            image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(folder / f"{name}.png")
        paths[name] = folder / f"{name}.png"
    for name, box in (("left", (0, 0, 48, 72)), ("right", (48, 0, 96, 72))):
        mask = Image.new("L", (96, 72), 0)
        mask.paste(255, box)
        mask.save(folder / f"mask-{name}.png")
        paths[f"mask-{name}"] = folder / f"mask-{name}.png"
    return paths


class LastImage:
    """An ``on_step`` callback keeping the last step's image; its digest is the float32 bytes of that tensor."""

    def __init__(self) -> None:
        self.image: Any = None

    def __call__(self, record: Any) -> None:
        self.image = record.image

    def digest(self) -> str:
        import torch

        if self.image is None:
            raise RuntimeError("the run made no step")
        data = self.image.detach().to(torch.float32).cpu().contiguous().numpy().tobytes()
        return hashlib.sha256(data).hexdigest()


def _run_with_revision(content: Path, styles: list[Path], options: dict[str, Any], revision: int) -> str:
    """Run stylize's options at a given run revision (a private knob: adapt this when the interface moves)."""
    from painterly.run import StyleTransferRun

    last = LastImage()
    try:
        from painterly.config import RunConfig
    except ImportError:  # commits before RunConfig took the options as a dict, the revision among them
        from painterly.stylize import default_options

        run = StyleTransferRun(content, styles, {**default_options(), **options, "revision": revision})
    else:
        run = StyleTransferRun(content, styles, RunConfig(**options), revision=revision)
    run.execute(on_step=last)
    return last.digest()


def _tiny_cases(folder: Path) -> Iterator[tuple[str, Callable[[], str]]]:
    from painterly import Interrupted, resume, stylize

    weights, paths = _tiny_weights_file(folder), _inputs(folder)
    base = {"weights": str(weights), "size": 64, "start_size": 32, "iterations": 24, "seed": 3, "device": "cpu"}
    for revision in REVISIONS:
        for variant in VARIANTS:
            for precision, mixed in PRECISIONS.items():
                options = {**base, "mixed_precision": mixed}
                styles = [paths["style"]]
                if variant == "tiled":
                    options |= {"tile_size": 64, "tile_margin": 16, "size": 128, "start_size": 64}
                elif variant == "masked":
                    options["style_masks"] = [str(paths["mask-left"]), str(paths["mask-right"])]
                    styles = [paths["style"], paths["style2"]]
                elif variant == "two-styles":
                    options["style_blend"] = [0.7, 0.3]
                    styles = [paths["style"], paths["style2"]]

                def case(options: dict[str, Any] = options, styles: list[Path] = styles, r: int = revision) -> str:
                    return _run_with_revision(paths["content"], styles, options, r)

                yield f"tiny/r{revision}/{variant}/{precision}", case
    for precision, mixed in PRECISIONS.items():

        def stopped(mixed: bool = mixed) -> str:
            options = {**base, "mixed_precision": mixed}
            uninterrupted, resumed = LastImage(), LastImage()
            stylize(paths["content"], [paths["style"]], **options, on_step=uninterrupted)
            checkpoint = folder / f"stopped-{mixed}.ckpt"
            steps: list[int] = []
            try:
                stylize(paths["content"], [paths["style"]], **options, checkpoint=str(checkpoint),
                        on_step=lambda record: steps.append(record.step),
                        should_stop=lambda: len(steps) >= 7)  # fmt: skip
            except Interrupted:
                pass
            else:
                raise RuntimeError("the run was not stopped, so nothing was resumed")
            resume(checkpoint, on_step=resumed)
            whole, again = uninterrupted.digest(), resumed.digest()
            return again if again == whole else f"resumed {again[:12]} != uninterrupted {whole[:12]}"

        yield f"tiny/stopped-and-resumed/{precision}", stopped


def _default_cases() -> Iterator[tuple[str, Callable[[], str]]]:
    from painterly import stylize

    for precision, mixed in PRECISIONS.items():

        def default(mixed: bool = mixed) -> str:
            content, style, last = EXAMPLES / "tubingen.jpg", EXAMPLES / "starry_night.jpg", LastImage()
            stylize(content, [style], mixed_precision=mixed, device="cpu", on_step=last)
            return last.digest()

        yield f"vgg19/default-512/{precision}", default


def child(patterns: list[str], default_run: bool) -> None:
    """Print ``{case: digest or "n/a: why"}`` as one JSON line, for the commit whose code is importable."""
    import painterly

    results: dict[str, str] = {"painterly": str(Path(painterly.__file__).resolve())}
    with tempfile.TemporaryDirectory() as scratch:
        cases = list(_tiny_cases(Path(scratch)))
        if default_run:
            cases += list(_default_cases())
        for name, case in cases:
            if patterns and not any(fnmatch.fnmatch(name, pattern) for pattern in patterns):
                continue
            try:
                results[name] = case()
            except Exception as error:  # a case this commit cannot express, or a failure: both are reported
                results[name] = f"n/a: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
            print(f"  {name}: {results[name][:16]}", file=sys.stderr, flush=True)
    print(json.dumps(results))


# --- the parent: worktrees, children, the table -------------------------------------------------------------------


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout.strip()


def _worktree(commit: str) -> Path:
    sha = _git("rev-parse", "--verify", f"{commit}^{{commit}}")
    place = Path(tempfile.gettempdir()) / "painterly-compare" / sha[:12]
    if not (place / "src" / "painterly").exists():
        place.parent.mkdir(parents=True, exist_ok=True)
        _git("worktree", "add", "--detach", "--force", str(place), sha)
    return place


def _results_of(tree: Path, label: str, patterns: list[str], default_run: bool) -> dict[str, str]:
    """Run the child in a worktree and check that it imported that worktree's painterly."""
    environment = {**os.environ, "PYTHONPATH": str(tree / "src")}
    command = [sys.executable, __file__, "--child", *(["--default-run"] if default_run else [])]
    command += [arg for pattern in patterns for arg in ("--cases", pattern)]
    print(f"{label} in {tree}:", file=sys.stderr, flush=True)
    output = subprocess.run(command, env=environment, cwd=tree, check=True, stdout=subprocess.PIPE, text=True).stdout
    results = json.loads(output.splitlines()[-1])
    imported = Path(results.pop("painterly"))
    if not imported.is_relative_to(tree.resolve()):
        raise SystemExit(f"the child imported {imported}, not the worktree's code in {tree}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commits", nargs="*", metavar="COMMIT", help="OLD NEW (any git revision names)")
    parser.add_argument("--default-run", action="store_true", help="also the default 512 px run (minutes each)")
    parser.add_argument("--cases", action="append", default=[], metavar="PATTERN",
                        help="only cases matching this glob, e.g. 'tiny/r5/*' (repeatable)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the worktrees for another comparison")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.cases, args.default_run)
        return 0
    if len(args.commits) != 2:
        parser.error("give two commits: OLD NEW")
    trees = [_worktree(commit) for commit in args.commits]
    try:
        old, new = (
            _results_of(tree, f"{commit} ({_git('rev-parse', '--short', commit)})", args.cases, args.default_run)
            for tree, commit in zip(trees, args.commits, strict=True)
        )
    finally:
        if not args.keep:
            for tree in trees:
                _git("worktree", "remove", "--force", str(tree))
    verdicts: list[str] = []
    print(f"{'case':<40} {'old':<14} {'new':<14} result")
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name, "n/a: missing"), new.get(name, "n/a: missing")
        if " != " in a or " != " in b:  # a resumed run that did not equal its uninterrupted twin
            verdict = "RESUME DIFFERS"
        elif b.startswith("n/a") and not a.startswith("n/a"):
            verdict = "NEW FAILS"  # OLD could compute it: a regression, not a case NEW cannot express
        elif a.startswith("n/a"):
            verdict = "n/a"
        else:
            verdict = "equal" if a == b else "DIFFERENT"
        verdicts.append(verdict)
        print(f"{name:<40} {a[:12]:<14} {b[:12]:<14} {verdict}")
        for side, value in (("old", a), ("new", b)):
            if value.startswith("n/a") or " != " in value:
                print(f"{'':<40} {side}: {value}")
    equal, not_applicable = verdicts.count("equal"), verdicts.count("n/a")
    failing = len(verdicts) - equal - not_applicable
    print(f"{equal} equal, {failing} different or failing, {not_applicable} n/a")
    if not equal and not failing:
        print("nothing was compared: no case ran in both commits")
    return 1 if failing or not equal else 0


if __name__ == "__main__":
    sys.exit(main())
