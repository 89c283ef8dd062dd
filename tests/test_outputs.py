"""Nothing is overwritten without asking: a run replaces only the files it, or the run it resumes, wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import painterly.apps.cli
import painterly.events
import painterly.run
from painterly import Interrupted, stylize
from painterly.apps.cli import main


def _cli(*args: str | Path) -> int:
    return main([str(a) for a in args])


def _stop_after(monkeypatch: pytest.MonkeyPatch, steps: int) -> None:
    """Make the CLI's Ctrl-C handler ask for a stop once ``steps`` steps are done (as a user pressing Ctrl-C)."""
    polls = {"count": 0}

    def should_stop(self: object) -> bool:
        polls["count"] += 1
        return polls["count"] > steps

    monkeypatch.setattr(painterly.events.StopToken, "__call__", should_stop)


def _precious(path: Path) -> Path:
    path.write_bytes(b"precious")
    return path


@pytest.mark.parametrize("name", ["out_step0002.png", "out_partial.png", "out_last-good.png", "trace.jsonl"])
def test_a_new_run_refuses_to_replace_a_file_it_would_write(pair, tmp_path: Path, weights_file, name, capsys) -> None:
    existing = _precious(tmp_path / name)
    args = [*pair, "-o", tmp_path / "out.png", "--weights", weights_file, "--size", "32", "--start-size", "none",
            "--iterations", "4", "--save-every", "2", "--trace", tmp_path / "trace.jsonl", "-q"]  # fmt: skip
    code = _cli(*args)
    err = capsys.readouterr().err
    assert code == 2 and name in err and "--overwrite" in err and "Traceback" not in err
    assert existing.read_bytes() == b"precious" and not (tmp_path / "out.png").exists()
    assert _cli(*args, "--overwrite") == 0
    assert existing.read_bytes() != b"precious" or name in ("out_partial.png", "out_last-good.png")
    if name == "trace.jsonl":  # replaced, not appended to
        assert [json.loads(line)["step"] for line in existing.read_text().splitlines()] == [1, 2, 3, 4]


def test_a_new_run_refuses_to_replace_a_stopped_runs_checkpoint(pair, tmp_path, weights_file, capsys) -> None:
    checkpoint = _precious(tmp_path / "out.png.ckpt")
    code = _cli(*pair, "-o", tmp_path / "out.png", "--weights", weights_file, "--size", "32", "-q")
    err = capsys.readouterr().err
    assert code == 2 and f"painterly resume {checkpoint}" in err and checkpoint.read_bytes() == b"precious"


def test_a_resumed_run_replaces_its_own_files_and_continues_its_trace(
    pair, tmp_path: Path, weights_file: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    out, trace = tmp_path / "out.png", tmp_path / "trace.jsonl"
    _stop_after(monkeypatch, 2)
    code = _cli(*pair, "-o", out, "--weights", weights_file, "--size", "32", "--start-size", "none",
                "--iterations", "6", "--save-every", "1", "--trace", trace, "-q")  # fmt: skip
    assert code == 130
    partial, checkpoint = tmp_path / "out_partial.png", tmp_path / "out.png.ckpt"
    first_partial = partial.read_bytes()
    assert checkpoint.exists() and (tmp_path / "out_step0002.png").exists()

    _stop_after(monkeypatch, 2)  # stopped again two steps later: its partial image replaces the first one's
    assert _cli("resume", checkpoint, "-q") == 130
    assert partial.read_bytes() != first_partial and (tmp_path / "out_step0004.png").exists()

    monkeypatch.undo()
    assert _cli("resume", checkpoint, "-q") == 0, capsys.readouterr().err
    assert out.exists() and not checkpoint.exists()
    assert [json.loads(line)["step"] for line in trace.read_text().splitlines()] == [1, 2, 3, 4, 5, 6]


def test_a_checkpoint_that_cannot_be_written_at_ctrl_c_still_leaves_the_image(
    pair, tmp_path: Path, weights_file: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The disk filled up (or the folder went away) during the run: the picture so far is still written."""

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(painterly.run, "save_checkpoint", disk_full)
    _stop_after(monkeypatch, 2)
    code = _cli(*pair, "-o", tmp_path / "out.png", "--weights", weights_file, "--size", "32", "--start-size", "none",
                "--iterations", "5", "-q")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 130 and "No space left" in err and "painterly resume" not in err
    with Image.open(tmp_path / "out_partial.png") as partial:
        assert partial.size == (32, 24)


def test_the_cli_resumes_an_api_checkpoint_that_carries_the_callers_own_data(pair, tmp_path, weights_file) -> None:
    checkpoint = tmp_path / "api.png.ckpt"
    steps: list[int] = []
    with pytest.raises(Interrupted):
        stylize(*pair, weights=str(weights_file), size=32, start_size=None, iterations=4, checkpoint=checkpoint,
                checkpoint_extra={"job": 7}, on_step=lambda r: steps.append(r.step),
                should_stop=lambda: len(steps) >= 2)  # fmt: skip
    assert _cli("resume", checkpoint, "-q") == 0
    with Image.open(tmp_path / "api.png") as result:  # beside the checkpoint, as for any API checkpoint
        assert result.size == (32, 24)
