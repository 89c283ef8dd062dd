"""What a Session saves on its second job: the weights and encoder stay loaded, the style's targets stay cached.

Usage:  python bench/session.py [--size 384] [--iterations 6] [--mixed-precision | --no-mixed-precision]

Three jobs with the real VGG-19 and one artwork (examples/starry_night.jpg), two photos (examples/tubingen.jpg,
shared/data/content/chelsea_cat.jpg): the first job on a fresh
Session, the second job (the other photo, the same artwork) on the same Session, and the same second job on a
fresh Session.  For each it prints the seconds from the call to the first optimiser step ("setup": loading the
weights and building the encoder, encoding the content and the style at the first stage), the whole job, and the
style-target cache's hits and misses; then what the used session saved, and that its picture equals the fresh
session's.  A few steps only: the setup is what a session saves, the steps cost the same.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STYLE = REPO / "examples" / "starry_night.jpg"
PHOTOS = (REPO / "examples" / "tubingen.jpg", REPO.parent / "shared" / "data" / "content" / "chelsea_cat.jpg")


def job(session, content: Path, config) -> dict[str, float | object]:
    began = time.perf_counter()
    first_step: list[float] = []
    picture = session.run(content, STYLE, config, on_step=lambda r: first_step.append(time.perf_counter()))
    ended = time.perf_counter()
    return {"setup": first_step[0] - began, "total": ended - began, "picture": np.asarray(picture),
            "hits": session.targets.hits, "misses": session.targets.misses}  # fmt: skip


def main() -> None:
    from painterly.config import RunConfig
    from painterly.engine.precision import cpu_description
    from painterly.session import Session

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()
    config = RunConfig(size=args.size, iterations=args.iterations, mixed_precision=args.mixed_precision)
    used = Session()
    rows = {
        "job 1, fresh session": job(used, PHOTOS[0], config),
        "job 2, same session": job(used, PHOTOS[1], config),
        "job 2, fresh session": job(Session(), PHOTOS[1], config),
    }
    print(f"{cpu_description()}; {args.size} px, {args.iterations} steps, stages {config.start_size}..{args.size}")
    print(f"{'':24} {'setup s':>8} {'total s':>8} {'cache hits/misses':>18}")
    for name, row in rows.items():
        print(f"{name:24} {row['setup']:8.2f} {row['total']:8.2f} {row['hits']:>9}/{row['misses']}")
    same, fresh = rows["job 2, same session"], rows["job 2, fresh session"]
    saved = float(fresh["total"]) - float(same["total"])  # type: ignore[arg-type]
    print(
        f"the used session saved {saved:.2f} s of {float(fresh['total']):.2f} s ({saved / float(fresh['total']):.0%});"  # type: ignore[arg-type]
        f" pictures equal: {np.array_equal(same['picture'], fresh['picture'])}"
    )  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
