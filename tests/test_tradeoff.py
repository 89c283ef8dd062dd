"""bench/tradeoff.py runs unattended: each run's judged pictures reach the JSON at once, a second start skips them,
and the table and plots read what is there.  The painting is replaced by a stand-in (seconds of CPU per real run);
the judging is real (the network-free judges)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from PIL import Image

from .bench_scripts import load_bench_script, require_judges_extra

REPO = Path(__file__).resolve().parents[1]
PAIR = ("examples/tubingen.jpg", "examples/starry_night.jpg")


@pytest.fixture
def tradeoff(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    require_judges_extra()
    module = load_bench_script("tradeoff", monkeypatch)
    # the bundled pair, so the test needs no ../shared/data
    monkeypatch.setattr(module.judging, "DATA", REPO)
    monkeypatch.setattr(module.judging, "CURVE_PAIRS", (PAIR,))
    return module


def _args(tmp_path: Path) -> argparse.Namespace:
    return argparse.Namespace(
        fresh=False, results=tmp_path / "results.json", out=tmp_path / "pictures", pair_set="curves", pairs=1, size=64,
        methods=["paper", "default"], weights=[5.0, 50.0], snapshots=[10, 20], paper_steps=20,
        default_iterations=20, judges=["ssim_content", "colour_style"],
    )  # fmt: skip


def test_sweep_writes_every_run_resumes_and_plots(tradeoff: ModuleType, tmp_path: Path, monkeypatch: Any) -> None:
    calls: list[tuple[str, float]] = []

    def stand_in(method: str, pair: tuple[str, str], size: int, weight: float, args: argparse.Namespace) -> list:
        calls.append((method, weight))
        with Image.open(REPO / pair[0]) as opened:
            photo = opened.convert("RGB").resize((64, 48))
        steps = args.snapshots if method == "paper" else [args.default_iterations]
        return [(step, photo, 0.1 * step, step) for step in steps]

    monkeypatch.setattr(tradeoff, "run_once", stand_in)
    args = _args(tmp_path)
    results = tradeoff.sweep(args)
    assert sorted(calls) == [("default", 5.0), ("default", 50.0), ("paper", 5.0), ("paper", 50.0)]
    stored = json.loads(args.results.read_text())
    assert stored == results and len(stored) == 2 * 2 + 2  # two snapshots per paper run, one picture per default
    entry = stored[tradeoff.result_key("paper", PAIR, 64, 5.0, 10)]
    assert set(entry["scores"]) == {"ssim_content", "colour_style"} and entry["steps"] == 10
    assert entry["machine"]["cores"] and Path(tmp_path / "pictures").is_dir()
    assert entry["scores"]["ssim_content"] == pytest.approx(1.0, abs=0.02)  # the stand-in returned the photo

    calls.clear()
    tradeoff.sweep(args)  # everything is there: nothing runs again
    assert calls == []
    args.weights = [5.0, 500.0]  # a new weight runs alone
    tradeoff.sweep(args)
    assert sorted(calls) == [("default", 500.0), ("paper", 500.0)]

    tradeoff.table(json.loads(args.results.read_text()))
    pytest.importorskip("matplotlib")
    [figure] = tradeoff.plot(json.loads(args.results.read_text()), tmp_path / "plots")
    assert figure.is_file() and figure.stat().st_size > 0

    from painterly.batch import contact

    laid_out: list[Any] = []
    real_sheet = contact.contact_sheet
    monkeypatch.setattr(contact, "contact_sheet", lambda cells, **kw: laid_out.extend(cells) or real_sheet(cells, **kw))
    [strip] = tradeoff.strips(json.loads(args.results.read_text()), tmp_path / "strips", cell=40)
    with Image.open(strip) as sheet:
        assert sheet.format == "JPEG" and sheet.width > 3 * 40 and sheet.height > 3 * 40
    runs = [label["run"] for label, _, _ in laid_out]
    assert list(dict.fromkeys(runs)) == ["paper, 10 steps", "paper, 20 steps", "default, 20 steps"]  # paper first
    assert [label["style weight"] for label, _, _ in laid_out[:3]] == ["5", "50 (default)", "500"]


def test_dominance_compares_points_at_equal_or_worse_content_fidelity(tradeoff: ModuleType, monkeypatch: Any) -> None:
    """A default point is "below the paper's curve" when its style distance is lower than that of every paper point
    no closer to the content; SSIM is turned so that higher is closer; points beyond the other curve don't count."""

    def entry(method: str, steps: int, ssim: float, colour: float) -> dict[str, Any]:
        return {"method": method, "steps": steps, "content": PAIR[0], "style": PAIR[1], "size": 64,
                "style_weight": ssim, "seconds": steps / 10,
                "scores": {"ssim_content": ssim, "colour_style": colour}}  # fmt: skip

    results = {str(n): e for n, e in enumerate([
        entry("default", 300, 0.5, 2.0), entry("default", 300, 0.3, 1.0),
        entry("paper", 1000, 0.4, 3.0), entry("paper", 1000, 0.2, 1.5), entry("paper", 100, 0.9, 0.1),
    ])}  # fmt: skip
    monkeypatch.setattr(tradeoff, "PANELS", (("ssim_content", "colour_style"),))
    [row] = tradeoff.dominance(results)
    # default (0.5, 2.0): the paper's 0.4 and 0.2 are no closer, and 1.5 < 2.0: not below; (0.3, 1.0) beats (0.2, 1.5)
    assert (row["default_below"], row["default_comparable"], row["default_points"]) == (1, 2, 2)
    # paper (0.4, 3.0) loses to (0.3, 1.0); (0.2, 1.5) has no default point as far from the content; 100 steps ignored
    assert (row["paper_below"], row["paper_comparable"], row["paper_points"]) == (0, 1, 2)
    assert row["time_ratio"] == pytest.approx(0.3)  # 30 s a default run against 100 s a 1000-step paper run


def test_equal_content_interpolates_the_papers_curve(tradeoff: ModuleType, monkeypatch: Any) -> None:
    """The default's style distance is compared with the paper's curve (1000 steps) at the default's own content
    distance, read off the straight line between the two paper points around it; a default closer to the content
    than every paper run counts only if it also beats the closest one."""

    def entry(method: str, weight: float, ssim: float, colour: float, steps: int = 1000) -> dict[str, Any]:
        return {"method": method, "steps": steps, "content": PAIR[0], "style": PAIR[1], "size": 64,
                "style_weight": weight, "scores": {"ssim_content": ssim, "colour_style": colour}}  # fmt: skip

    paper = [entry("paper", 1.0, 0.6, 4.0), entry("paper", 5.0, 0.2, 2.0), entry("paper", 5.0, 0.9, 0.0, steps=100)]
    monkeypatch.setattr(tradeoff, "PANELS", (("ssim_content", "colour_style"),))

    def outcome(ssim: float, colour: float) -> tuple[str, float]:
        results = {str(n): e for n, e in enumerate([*paper, entry("default", 50.0, ssim, colour, steps=300)])}
        [found] = tradeoff.at_equal_content(results)
        return found["outcome"], found["paper_style"]

    # SSIM 0.4 is halfway between the paper's 0.6 (colour 4.0) and 0.2 (colour 2.0): the paper's curve is at 3.0
    assert outcome(0.4, 2.9) == ("below", pytest.approx(3.0))
    assert outcome(0.4, 3.1) == ("above", pytest.approx(3.0))
    # closer to the content than every paper run at 1000 steps (the 100-step 0.9 is not the curve)
    assert outcome(0.7, 3.9) == ("closer, below", 4.0)
    assert outcome(0.7, 4.1)[0] == "unmatched"
    assert outcome(0.1, 0.5)[0] == "unmatched"  # farther from the content than the paper ever is
