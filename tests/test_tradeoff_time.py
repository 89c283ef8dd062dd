"""bench/tradeoff_time.py: the paper's 1000 steps estimated from a short sample, rounds written as they are measured
and skipped on a second start, and the ratios taken round by round.  The runs are a stand-in clock (the real ones
take minutes)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from .bench_scripts import load_bench_script

PAIR = ("examples/tubingen.jpg", "examples/starry_night.jpg")


@pytest.fixture
def timing(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_bench_script("tradeoff_time", monkeypatch)


def test_the_papers_run_is_its_warm_up_plus_the_rest_at_the_measured_pace(timing: ModuleType) -> None:
    """A clock of 2 s of one-time cost and 0.5 s a step: 1000 steps take 2 + 1000 * 0.5 s, whatever the sample."""
    clock = [2.0 + 0.5 * step for step in range(1, 61)]
    assert timing.paper_seconds(clock, steps=1000, warmup=10) == pytest.approx(502.0)
    slow_start = [20.0 + 0.5 * step for step in range(1, 31)]  # the warm-up's cost is counted once, not per step
    assert timing.paper_seconds(slow_start, steps=1000, warmup=10) == pytest.approx(520.0)
    with pytest.raises(ValueError, match="more than 11 steps"):
        timing.paper_seconds(clock[:11], steps=1000, warmup=10)


def test_rounds_are_saved_as_measured_skipped_when_done_and_ratios_are_per_round(
    timing: ModuleType, tmp_path: Path
) -> None:
    """Round 2 runs on a machine twice as slow for both methods: its ratio equals round 1's, which a ratio of one
    method's round 1 to the other's round 2 would not."""
    calls: list[tuple[str, int]] = []

    def stand_in(method: str, pair: tuple[str, str], size: int, steps: int) -> list[float]:
        calls.append((method, steps))
        slow = 2.0 if sum(1 for m, _ in calls if m == "paper") == 2 else 1.0  # the second paper run and after
        pace = 0.5 if method == "paper" else 0.1
        return [slow * pace * step for step in range(1, steps + 1)]

    path = tmp_path / "timing.json"
    results = timing.measure([PAIR], 64, [100, 300], rounds=2, paper_sample=30, path=path, clock=stand_in)
    assert calls == [("paper", 30), ("default", 100), ("default", 300)] * 2
    assert json.loads(path.read_text()) == results and len(results) == 2
    [at_100, at_300] = timing.ratios(results)
    assert (at_100["budget"], at_100["rounds"]) == (100, 2)
    assert at_100["ratio"] == pytest.approx(10 / 500) and at_100["lowest"] == pytest.approx(at_100["highest"])
    assert at_300["ratio"] == pytest.approx(30 / 500)
    assert at_300["default_seconds"] == pytest.approx(45.0)  # the median of 30 s and 60 s

    calls.clear()
    again = timing.measure([PAIR], 64, [100, 300], rounds=3, paper_sample=30, path=path, clock=stand_in)
    assert calls == [("paper", 30), ("default", 100), ("default", 300)], "only the third round is new"
    assert len(again) == 3 and again[timing.round_key(PAIR, 64, 1)] == results[timing.round_key(PAIR, 64, 1)]
