"""The command line: generated from the API, clear errors, never loses or clobbers a file."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from painterly.cli import build_parser, main
from painterly.stylize import stylize

from .conftest import make_image, random_vgg_weights


@pytest.fixture
def weights_file(tmp_path: Path) -> Path:
    weights = random_vgg_weights()
    path = tmp_path / "tiny.pt"
    torch.save({**weights.state, **{f"mean.{k}": v for k, v in weights.channel_means.items()}}, path)
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return make_image(tmp_path / "content.png", (48, 36), seed=1), make_image(tmp_path / "style.jpg", (40, 40), seed=2)


def _run(*args: str | Path) -> int:
    return main([str(a) for a in args])


def test_every_api_parameter_is_a_cli_option() -> None:
    help_text = build_parser().format_help()
    keyword_only = [
        name for name, p in inspect.signature(stylize).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for name in keyword_only:
        if name in ("progress", "on_step"):
            continue
        assert f"--{name.replace('_', '-')}" in help_text, name
    assert "examples:" in help_text and "painterly weights" in help_text


def test_cli_parses_to_the_api_types() -> None:
    args = build_parser().parse_args(
        ["c.jpg", "s1.jpg", "s2.jpg", "--size", "300", "--start-size", "none", "--style-blend", "0.7", "0.3",
         "--optimizer", "adam", "--style-layers", "relu1_1", "relu2_1"]
    )  # fmt: skip
    assert args.size == 300 and args.start_size is None and args.style_blend == [0.7, 0.3]
    assert args.optimizer == "adam" and args.style_layers == ["relu1_1", "relu2_1"] and len(args.styles) == 2


def test_stylizes_to_the_requested_file(pair, tmp_path: Path, weights_file: Path, capsys) -> None:
    out = tmp_path / "result.jpg"
    trace = tmp_path / "trace.jsonl"
    code = _run(*pair, "-o", out, "--weights", weights_file, "--size", "32", "--start-size", "none",
                "--iterations", "4", "--save-every", "2", "--trace", trace, "-q")  # fmt: skip
    assert code == 0
    with Image.open(out) as written:
        assert written.format == "JPEG" and written.size == (32, 24)
    assert (tmp_path / "result_step0002.jpg").exists() and (tmp_path / "result_step0004.jpg").exists()
    rows = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all("style" in r and "seconds" in r for r in rows)
    assert str(out) in capsys.readouterr().out


def test_refuses_to_clobber_before_doing_any_work(pair, tmp_path: Path, weights_file: Path, capsys) -> None:
    out = tmp_path / "result.png"
    out.write_bytes(b"precious")
    code = _run(*pair, "-o", out, "--weights", weights_file, "--size", "32", "--iterations", "1", "-q")
    assert code == 2 and out.read_bytes() == b"precious"
    assert "--overwrite" in capsys.readouterr().err
    assert _run(*pair, "-o", out, "--weights", weights_file, "--size", "32", "--iterations", "1", "-q", "--overwrite") == 0
    assert out.read_bytes() != b"precious"


@pytest.mark.parametrize(
    ("make_args", "expected"),
    [
        (lambda c, s, t: [t / "missing.jpg", s, "-o", t / "o.png"], "file not found"),
        (lambda c, s, t: [c, t, "-o", t / "o.png"], "is a directory"),
        (lambda c, s, t: [c, s, "-o", t / "nowhere" / "o.png"], "does not exist"),
        (lambda c, s, t: [c, s, "-o", c], "one of the input images"),
        (lambda c, s, t: [c, s, "-o", t / "o.png", "--style-layers", "relu9_1"], "unknown layer"),
        (lambda c, s, t: [c, s, "-o", t / "o.png", "--iterations", "-5"], "iterations must be at least 1"),
        (lambda c, s, t: [c, s, "-o", t / "o.png", "--weights", t / "none.pt"], "weights file not found"),
    ],
    ids=["missing", "directory", "no-output-dir", "output-is-input", "bad-layer", "negative-iterations", "no-weights"],
)
def test_user_mistakes_exit_2_with_one_line(pair, tmp_path: Path, weights_file, make_args, expected, capsys) -> None:
    args = make_args(*pair, tmp_path)
    if "--weights" not in args:
        args += ["--weights", weights_file]
    code = _run(*args, "--size", "32", "-q")
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_module_entry_point_runs_as_a_program(pair, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "painterly", str(tmp_path / "nope.png"), str(pair[1])],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2 and "file not found" in result.stderr and "Traceback" not in result.stderr
