"""The automatic precision is decided by measurement, cached per machine, recorded, and never beats an explicit flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from painterly import Interrupted, stylize
from painterly.apps.cli import main
from painterly.engine import precision
from painterly.engine.precision import (
    REQUIRED_SPEEDUP,
    PrecisionProbe,
    cached_cpu_probe,
    measure_cpu_precisions,
    resolve_mixed_precision,
)
from painterly.io.checkpoint import load_checkpoint
from painterly.stylize import resume

from .conftest import run_for

CPU = torch.device("cpu")


class FakeClock:
    """A timer that advances by the cost of each pass: ``costs[dtype]`` plus the round's jitter."""

    def __init__(self, costs: dict[torch.dtype | None, float], jitter: tuple[float, ...] = (0.0,)) -> None:
        self.now, self.costs, self.jitter, self.calls = 0.0, costs, jitter, []

    def run_pass(self, dtype: torch.dtype | None) -> None:
        self.calls.append(dtype)
        self.now += self.costs[dtype] + self.jitter[len(self.calls) % len(self.jitter)]

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("float32", "bfloat16", "wins"),
    [(1.307, 2.078, False),  # the Xeon of issue 16: bfloat16 1.6x slower
     (0.82, 0.44, True),  # the EPYC of issue 8: bfloat16 1.9x faster
     (1.0, 1.0 / (REQUIRED_SPEEDUP - 0.02), False),  # a near tie stays with float32
     (1.0, 1.0 / (REQUIRED_SPEEDUP + 0.02), True)],
)  # fmt: skip
def test_the_probe_picks_bfloat16_only_where_it_measured_faster(float32, bfloat16, wins) -> None:
    clock = FakeClock({None: float32, torch.bfloat16: bfloat16})
    probe = measure_cpu_precisions(clock.run_pass, timer=clock, rounds=3)
    assert probe.float32_seconds == pytest.approx(float32) and probe.bfloat16_seconds == pytest.approx(bfloat16)
    assert probe.bfloat16_wins is wins


def test_the_probe_warms_up_alternates_and_keeps_the_fastest_pass() -> None:
    clock = FakeClock({None: 1.0, torch.bfloat16: 0.5}, jitter=(0.3, 0.0, 0.7))
    probe = measure_cpu_precisions(clock.run_pass, timer=clock, rounds=3)
    assert clock.calls == [None, torch.bfloat16] + [None, torch.bfloat16] * 3  # warm-up, then in turns
    assert probe.float32_seconds == pytest.approx(1.0) and probe.bfloat16_seconds == pytest.approx(0.5)


def test_the_probe_is_cached_per_cpu_torch_and_thread_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "probe.json"
    measured: list[int] = []

    def measure() -> PrecisionProbe:
        measured.append(1)
        return PrecisionProbe(1.0, 2.0)

    assert cached_cpu_probe(measure, cache_file=cache) == PrecisionProbe(1.0, 2.0)
    assert cached_cpu_probe(measure, cache_file=cache) == PrecisionProbe(1.0, 2.0)
    assert len(measured) == 1  # the second run read the cache
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    cached_cpu_probe(measure, cache_file=cache)
    assert len(measured) == 2 and len(json.loads(cache.read_text())) == 2  # another thread count: measured anew
    monkeypatch.setattr(precision, "cpu_model", lambda: "Another CPU")
    cached_cpu_probe(measure, cache_file=cache)
    assert len(measured) == 3
    cache.write_text("{not json")  # a damaged cache costs one probe, nothing more
    assert cached_cpu_probe(measure, cache_file=cache).bfloat16_wins is False and len(measured) == 4
    assert json.loads(cache.read_text())


def test_an_explicit_choice_wins_and_no_native_bfloat16_needs_no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_probe() -> PrecisionProbe:
        raise AssertionError("probed although the choice was given or obvious")

    for native in (True, False):
        monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda native=native: native)
        assert resolve_mixed_precision(CPU, True, probe=no_probe) is True
        assert resolve_mixed_precision(CPU, False, probe=no_probe) is False
    assert resolve_mixed_precision(CPU, None, probe=no_probe) is False  # emulated bfloat16 is always slower
    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: True)
    assert resolve_mixed_precision(CPU, None, probe=lambda: PrecisionProbe(1.3, 2.1)) is False
    assert resolve_mixed_precision(CPU, None, probe=lambda: PrecisionProbe(0.8, 0.4)) is True


def test_the_real_probe_runs_quickly_and_measures_both_precisions() -> None:
    probe = measure_cpu_precisions(rounds=1)
    assert 0 < probe.float32_seconds < 30 and 0 < probe.bfloat16_seconds < 30


def _machine_says(monkeypatch: pytest.MonkeyPatch, faster: bool) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: True)
    probe = PrecisionProbe(1.0, 0.5) if faster else PrecisionProbe(1.0, 2.0)
    monkeypatch.setattr(precision, "cached_cpu_probe", lambda: probe)


def test_a_run_follows_the_probe_and_records_its_choice(pair, tiny_weights, monkeypatch: pytest.MonkeyPatch) -> None:
    for faster in (False, True):
        _machine_says(monkeypatch, faster)
        run = run_for(*pair, weights=tiny_weights, size=32, device="cpu")
        assert run.resolved_config.mixed_precision is faster  # what a checkpoint stores
        assert run.encoder.compute_dtype is (torch.bfloat16 if faster else None)
    assert run_for(*pair, weights=tiny_weights, size=32, mixed_precision=False).encoder.compute_dtype is None


def test_the_trace_and_checkpoint_carry_the_choice_and_resume_keeps_it(
    pair, tmp_path: Path, weights_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _machine_says(monkeypatch, faster=True)
    checkpoint = tmp_path / "run.ckpt"
    seen: list[str] = []
    with pytest.raises(Interrupted):
        stylize(*pair, weights=str(weights_file), size=32, start_size=None, iterations=4, checkpoint=checkpoint,
                on_step=lambda r: seen.append(r.precision), should_stop=lambda: len(seen) >= 2)  # fmt: skip
    assert seen == ["bfloat16", "bfloat16"] and load_checkpoint(checkpoint).config["mixed_precision"] is True
    _machine_says(monkeypatch, faster=False)  # the machine now measures otherwise: the checkpoint's choice holds
    resume(checkpoint, on_step=lambda r: seen.append(r.precision))
    assert seen == ["bfloat16"] * 4

    trace = tmp_path / "trace.jsonl"
    code = main([str(p) for p in (*pair, "-o", tmp_path / "o.png", "--weights", weights_file, "--size", "32",
                                  "--iterations", "2", "--trace", trace, "-q")])  # fmt: skip
    assert code == 0
    assert {json.loads(line)["precision"] for line in trace.read_text().splitlines()} == {"float32"}


@pytest.mark.parametrize("native", [True, False])
def test_a_checkpoint_that_left_the_choice_unset_resumes_by_the_rule_it_was_made_with(
    pair, tmp_path: Path, weights_file: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """Before the probe, an unset choice meant "bfloat16 where the CPU has it": such a checkpoint resumes so."""
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(Interrupted):
        stylize(*pair, weights=str(weights_file), size=32, start_size=None, iterations=3, checkpoint=checkpoint,
                mixed_precision=False, should_stop=checkpoint.exists, checkpoint_every=1)  # fmt: skip
    state = load_checkpoint(checkpoint)
    state.config["mixed_precision"] = None  # as revision-5 runs wrote it
    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: native)
    monkeypatch.setattr(precision, "cached_cpu_probe", lambda: PrecisionProbe(1.0, 0.5 if not native else 2))
    seen: list[str] = []
    resume(state, on_step=lambda r: seen.append(r.precision))
    assert seen and set(seen) == {"bfloat16" if native else "float32"}


def test_painterly_precision_shows_measures_and_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("PAINTERLY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: True)
    monkeypatch.setattr(precision, "measure_cpu_precisions", lambda: PrecisionProbe(1.3, 2.1))
    monkeypatch.setattr(precision, "cached_cpu_probe", cached_cpu_probe)  # the real one, not conftest's
    assert main(["precision"]) == 0 and "not measured yet" in capsys.readouterr().out
    assert main(["precision", "measure"]) == 0 and "runs use float32" in capsys.readouterr().out
    assert (tmp_path / "precision-probe.json").exists()
    assert main(["precision"]) == 0 and "1.300 s" in capsys.readouterr().out  # from the cache
    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: False)
    assert main(["precision"]) == 0 and "no bfloat16 instructions" in capsys.readouterr().out
