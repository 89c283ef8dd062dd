"""One stream of typed events per run, delivered to every sink; stopping is a token checked between steps."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import Interrupted, stylize
from painterly.apps.cli import StopOnSignal
from painterly.engine.loop import NumericalError
from painterly.events import (
    Event,
    Failed,
    Finished,
    RunStarted,
    StageStarted,
    StepRecord,
    Stopped,
    StopToken,
    WentBack,
)
from painterly.objective.whole import Objective
from painterly.progress import ProgressBar
from painterly.stylize import resume

OPTIONS = {"size": 48, "start_size": 24, "iterations": 12, "seed": 1, "device": "cpu", "mixed_precision": False}


def _kinds(events: list[Event]) -> list[str]:
    return [type(event).__name__ for event in events]


def test_a_run_reports_its_plan_its_stages_every_step_and_its_end_in_order(pair, weights_file: Path) -> None:
    events: list[Event] = []
    image = stylize(*pair, weights=str(weights_file), sinks=[events.append], **OPTIONS)
    started = events[0]
    assert isinstance(started, RunStarted) and started.total_steps == 12 and started.resumed_at_step == 0
    assert started.sizes == ((24, 18), (34, 26), (48, 36)) and started.precision == "float32"
    stages = [event for event in events if isinstance(event, StageStarted)]
    assert [(s.stage, s.size, s.steps) for s in stages] == list(
        zip((1, 2, 3), started.sizes, started.steps, strict=True)
    )
    steps = [event for event in events if isinstance(event, StepRecord)]
    assert [record.step for record in steps] == list(range(1, 13))
    for stage in stages:  # each stage's steps follow its StageStarted
        position = events.index(stage)
        following = events[position + 1 : position + 1 + stage.steps]
        assert all(isinstance(e, StepRecord) and e.stage == stage.stage for e in following)
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.step == 12 and _kinds(events).count("Finished") == 1
    assert np.array_equal(np.asarray(finished.image), np.asarray(image))


def test_a_stop_requested_by_a_sink_ends_the_run_after_that_step_with_stopped(pair, tmp_path, weights_file) -> None:
    token, events = StopToken(), []

    def stop_at_five(event: Event) -> None:
        events.append(event)
        if isinstance(event, StepRecord) and event.step == 5:
            token.request()

    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(Interrupted) as stopped:
        stylize(*pair, weights=str(weights_file), checkpoint=checkpoint, sinks=[stop_at_five], should_stop=token,
                **OPTIONS)  # fmt: skip
    assert stopped.value.step == 5 and _kinds(events)[-2:] == ["StepRecord", "Stopped"]
    last = events[-1]
    assert isinstance(last, Stopped) and last.step == 5 and last.checkpoint == checkpoint and checkpoint.exists()

    resumed: list[Event] = []
    resume(checkpoint, sinks=[resumed.append])
    first = resumed[0]
    assert isinstance(first, RunStarted) and first.resumed_at_step == 5
    stage = resumed[1]
    assert isinstance(stage, StageStarted) and stage.stage == 3 and stage.first_step == 1  # stages of 2, 2, 8 steps
    assert [e.step for e in resumed if isinstance(e, StepRecord)] == list(range(6, 13))
    assert isinstance(resumed[-1], Finished)


def test_a_numerical_failure_is_reported_with_the_last_good_picture(pair, weights_file, monkeypatch) -> None:
    evaluate, calls = Objective.__call__, [0]

    def poisoned(self: Objective, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, parts = evaluate(self, image)
        calls[0] += 1
        return (total * float("nan") if calls[0] > 3 else total), parts

    monkeypatch.setattr(Objective, "__call__", poisoned)
    events: list[Event] = []
    with pytest.raises(NumericalError) as raised:
        stylize(*pair, weights=str(weights_file), sinks=[events.append], **{**OPTIONS, "start_size": None})
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.step == 3 and "NaN" in failed.reason
    assert failed.image is not None and failed.image.size == (48, 36)
    assert raised.value.picture is failed.image  # the caller gets the same finished picture the sinks got


def test_a_blow_up_is_reported_as_went_back_between_two_steps_and_the_run_goes_on(
    pair, weights_file, monkeypatch, caplog
) -> None:
    """The objective's 4th evaluation made 1000 times too high (an L-BFGS blow-up, as the optimiser sees one): the
    sinks get a WentBack after the 3rd step's record, the user a warning, and the run still makes all its steps."""
    evaluate, calls = Objective.__call__, [0]

    def blown_up(self: Objective, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, parts = evaluate(self, image)
        calls[0] += 1
        return (total * 1000 if calls[0] == 4 else total), parts

    monkeypatch.setattr(Objective, "__call__", blown_up)
    events: list[Event] = []
    stylize(*pair, weights=str(weights_file), sinks=[events.append], **{**OPTIONS, "start_size": None})
    [went_back] = [event for event in events if isinstance(event, WentBack)]
    assert (went_back.stage, went_back.stage_step) == (1, 4) and went_back.loss > 10 * went_back.best
    before = events[events.index(went_back) - 1]
    assert isinstance(before, StepRecord) and before.step == 3
    assert [e.step for e in events if isinstance(e, StepRecord)] == list(range(1, 13))
    assert isinstance(events[-1], Finished)
    assert any("the loss jumped" in record.getMessage() for record in caplog.records)


def test_a_failing_sink_ends_the_run_and_the_others_hear_of_it(pair, weights_file: Path) -> None:
    heard: list[Event] = []

    def broken(event: Event) -> None:
        if isinstance(event, StepRecord) and event.step == 2:
            raise RuntimeError("the preview server went away")

    with pytest.raises(RuntimeError, match="went away"):
        stylize(*pair, weights=str(weights_file), sinks=[heard.append, broken], **OPTIONS)
    assert isinstance(heard[-1], Failed) and "went away" in heard[-1].reason


def test_the_signal_handler_only_sets_the_token() -> None:
    token = StopToken()
    before = signal.getsignal(signal.SIGTERM)
    with StopOnSignal(token):
        assert not token.requested
        signal.raise_signal(signal.SIGTERM)  # delivered at once in the main thread; no exception, no exit
        assert token.requested and token()
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_progress_bar_opens_on_the_plan_and_closes_at_the_end(pair, weights_file: Path, capsys) -> None:
    bar = ProgressBar()
    stylize(*pair, weights=str(weights_file), sinks=[bar], **OPTIONS)
    err = capsys.readouterr().err
    assert "100%" in err and "step 12/12" in err and not bar.showing


def _raise_on(kind: type, error: BaseException) -> Callable[[Event], None]:
    def sink(event: Event) -> None:
        if isinstance(event, kind):
            raise error

    return sink


def test_a_sink_failing_at_the_end_does_not_replace_the_outcome(pair, tmp_path, weights_file, caplog) -> None:
    """A broken sink must not cost the partial picture (Interrupted) nor the other sinks their end event."""
    token, heard = StopToken(), []
    token.request()  # before the first step: the run stops at once, having done nothing
    with pytest.raises(Interrupted) as stopped:
        stylize(*pair, weights=str(weights_file), checkpoint=tmp_path / "r.ckpt", should_stop=token,
                sinks=[_raise_on(Stopped, RuntimeError("queue closed")), heard.append], **OPTIONS)  # fmt: skip
    assert stopped.value.step == 0 and _kinds(heard) == ["RunStarted", "StageStarted", "Stopped"]
    assert "queue closed" in caplog.text
    with pytest.raises(RuntimeError, match="on a step"):  # a sink failing mid-run ends it with its own error ...
        stylize(*pair, weights=str(weights_file), sinks=[_raise_on(StepRecord, RuntimeError("on a step")),
                _raise_on(Failed, RuntimeError("again")), heard.append], **OPTIONS)  # fmt: skip
    assert isinstance(heard[-1], Failed) and heard[-1].reason == "on a step"  # ... and the others still hear it


def test_an_abort_is_reported_as_failed_and_closes_the_bar(pair, weights_file: Path, capsys) -> None:
    """A second Ctrl-C raises KeyboardInterrupt inside the run: the sinks are told, the bar is closed."""
    bar, heard = ProgressBar(), []
    with pytest.raises(KeyboardInterrupt):
        stylize(*pair, weights=str(weights_file), sinks=[bar, heard.append,
                _raise_on(StepRecord, KeyboardInterrupt())], **OPTIONS)  # fmt: skip
    assert isinstance(heard[-1], Failed) and heard[-1].reason == "interrupted" and not bar.showing


def test_colorize_ends_with_the_picture_it_returns(tmp_path: Path, weights_file: Path) -> None:
    from painterly import colorize

    from .conftest import make_image

    sketch = tmp_path / "sketch.png"
    drawing = np.full((36, 48), 255, np.uint8)
    drawing[10:12, :] = drawing[:, 20:22] = 0  # two dark lines
    Image.fromarray(drawing, "L").save(sketch)
    style = make_image(tmp_path / "art.png", (40, 40), seed=4)
    heard: list[Event] = []
    result = colorize(sketch, [style], weights=str(weights_file), size=48, iterations=4, start_size=None,
                      sinks=[heard.append])  # fmt: skip
    finished = heard[-1]
    assert isinstance(finished, Finished) and np.array_equal(np.asarray(finished.image), np.asarray(result))
    steps = [event for event in heard if isinstance(event, StepRecord)]
    assert not np.array_equal(np.asarray(steps[-1].to_pil()), np.asarray(result))  # steps: before the lines
