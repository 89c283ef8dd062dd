"""A run whose loss turns NaN for good: the CLI exits 1 and keeps the last good image, never a broken output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.apps.cli import main
from painterly.engine.loop import MAX_RECOVERIES
from painterly.objective.whole import Objective

GOOD_STEPS = 3  # evaluations before the objective turns NaN (plain L-BFGS: one per step)


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every evaluation of the objective after the first GOOD_STEPS returns NaN; the list counts evaluations."""
    calls = [0]
    evaluate = Objective.__call__

    def poisoned_call(self: Objective, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, parts = evaluate(self, image)
        calls[0] += 1
        if calls[0] > GOOD_STEPS:
            total = total * float("nan")  # NaN loss and, through it, NaN gradients
        return total, parts

    monkeypatch.setattr(Objective, "__call__", poisoned_call)
    return calls


def test_a_persistent_nan_exits_1_with_the_last_good_image(
    pair: tuple[Path, Path], tmp_path: Path, weights_file: Path, poisoned: list[int], capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "result.png"
    code = main([str(pair[0]), str(pair[1]), "-o", str(out), "--weights", str(weights_file), "--size", "32",
                 "--start-size", "none", "--iterations", "10", "--save-every", "1", "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1, err
    assert poisoned[0] == GOOD_STEPS + MAX_RECOVERIES + 1, "it retried with smaller steps before giving up"
    last_good = tmp_path / "result_last-good.png"
    assert str(last_good) in err and "NaN or infinite" in err and "Traceback" not in err  # says where it is, and why
    assert not out.exists(), "no output is written from a failed run"
    with Image.open(last_good) as written:
        assert written.format == "PNG" and written.size == (32, 24) and written.mode == "RGB"
        pixels = np.asarray(written)
    assert pixels.std() > 1, "a real picture, not a blank"
    # It is the image after the last good step, the same that step's --save-every snapshot shows.
    saved = sorted(path.name for path in tmp_path.glob("result_step*.png"))
    assert saved == [f"result_step{step:04d}.png" for step in range(1, GOOD_STEPS + 1)]
    with Image.open(tmp_path / f"result_step{GOOD_STEPS:04d}.png") as snapshot:
        assert np.array_equal(pixels, np.asarray(snapshot))
