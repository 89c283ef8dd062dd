"""bench/balance.py runs unattended: each run reaches the JSON at once, a second start skips it, a setting that
resolves to a weight already run reuses that run, and the table applies the acceptance.  The painting is replaced
by a stand-in (minutes of CPU per real run); the judging is real (the network-free judges)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .bench_scripts import load_bench_script, require_judges_extra

REPO = Path(__file__).resolve().parents[1]
PAIR = ("examples/tubingen.jpg", "examples/starry_night.jpg")


@pytest.fixture
def balance(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    require_judges_extra()
    module = load_bench_script("balance", monkeypatch)
    monkeypatch.setattr(module.judging, "DATA", REPO)  # the bundled pair: the test needs no ../shared/data
    monkeypatch.setattr(module, "bench_order", lambda: [PAIR])
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    return module


def test_runs_are_saved_at_once_resumed_and_reused(balance: ModuleType, tmp_path: Path, capsys) -> None:
    calls: list[float] = []

    def stand_in(pair: tuple[str, str], size: int, steps: int, weight: float) -> dict[str, Any]:
        calls.append(weight)
        scores = {"edge_agreement": 0.5 - weight / 1000, "patch_style": 100 - weight, "colour_style": 10.0,
                  "magenta_style": 0.1}  # fmt: skip
        return {"weight": weight, "seconds": 0.0, "machine": balance.machine(), "scores": scores}

    balance.run_pair = stand_in
    args = argparse.Namespace(weight=["50", "50.0", "auto"], size=32, steps=2, name="t", show=False, pairs=None,
                              before="50", after="auto")  # fmt: skip
    balance.bench(args)
    auto = balance.resolve("auto", PAIR)
    assert 0 < auto < 50 and calls == [50.0, auto], "50 and 50.0 are one run"
    data = json.loads((tmp_path / "t.json").read_text())
    assert len(data["runs"]) == 2 and data["size"] == 32
    balance.bench(args)
    assert calls == [50.0, auto], "a second start runs nothing again"
    balance.table(args)
    out = capsys.readouterr().out
    # the default met the threshold (0.45) and auto's patch distance grew 41 %, beyond the 10 % allowed
    assert "| tubingen | starry_night | 50 | 0.450 | 50.0 |" in out and out.count("**no**") == 1
    assert "pairs failing the acceptance: 1 of 1 with both runs" in out
    assert "at 50: 1 pairs, lowest edge agreement 0.450 (tubingen x starry_night), below the threshold: 0" in out

    args.weight, args.name = ["20"], "fixed-only"  # a bench of one fixed weight: the table has its half and says so
    balance.bench(args)
    args.before = "20"
    balance.table(args)
    out = capsys.readouterr().out
    assert "| tubingen | starry_night | 20 | 0.480 |" in out and "(auto not run)" in out
    assert "pairs failing the acceptance: 0 of 0" in out and "at 20: 1 pairs, lowest edge agreement 0.480" in out


def test_the_bench_counts_the_blow_ups_a_run_went_back_from(balance: ModuleType) -> None:
    """The run's WentBack events are kept (the table's blow-up count); every other event passes by."""
    from painterly.events import StageStarted, WentBack

    heard: list[WentBack] = []
    sink = balance.went_back_into(heard)
    went_back = WentBack(stage=1, stage_step=28, loss=1.7e5, best=35.47)
    for event in (StageStarted(stage=1, stages=1, size=(8, 8), steps=30), went_back):
        sink(event)
    assert heard == [went_back]
