"""The command line: generated from the API, clear errors, never loses or clobbers a file."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from painterly.apps.cli import build_parser, main
from painterly.stylize import stylize

from .conftest import make_image


def _run(*args: str | Path) -> int:
    return main([str(a) for a in args])


def test_every_api_parameter_is_a_cli_option() -> None:
    help_text = build_parser().format_help()
    keyword_only = [
        name for name, p in inspect.signature(stylize).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for name in keyword_only:
        if name in ("progress", "on_step", "should_stop", "checkpoint_extra", "sinks"):
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
    assert (
        _run(*pair, "-o", out, "--weights", weights_file, "--size", "32", "--iterations", "1", "-q", "--overwrite") == 0
    )
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


def _write_text_as_jpg(path: Path) -> Path:
    path.write_text("this is not a picture")
    return path


def _write_truncated_png(path: Path) -> Path:
    whole = make_image(path.with_name("whole.png"), (64, 64))
    path.write_bytes(whole.read_bytes()[:300])
    return path


@pytest.mark.parametrize(
    ("make_content", "extra", "expected"),
    [
        (lambda t: ((t / "empty.jpg").write_bytes(b"") and None) or t / "empty.jpg", [], "empty (0 bytes)"),
        (lambda t: _write_text_as_jpg(t / "text.jpg"), [], "not an image file"),
        (lambda t: _write_truncated_png(t / "cut.png"), [], "damaged or truncated"),
        (lambda t: make_image(t / "big.png", (120, 100)), ["--max-pixels", "5000"], "decompression bomb"),
        (lambda t: make_image(t / "thin.png", (400, 2)), ["--size", "400"], "aspect 200.0:1"),
        (lambda t: make_image(t / "c.png", (48, 36)), ["--style-weight", "nan"], "style weight must be"),
        (lambda t: make_image(t / "c.png", (48, 36)), ["--size", "-3"], "size must be at least 16"),
        (lambda t: make_image(t / "c.png", (48, 36)), ["--style-blend", "1", "2"], "2 blend weights given for 1"),
        (lambda t: make_image(t / "c.png", (48, 36)), ["--content-layers", "conv9"], "unknown layer"),
    ],
    ids=["zero-bytes", "text-renamed", "truncated", "pixel-limit", "extreme-aspect", "nan-weight", "negative-size",
         "blend-count", "bad-content-layer"],
)  # fmt: skip
def test_bad_input_matrix_exits_2_naming_the_problem(tmp_path, weights_file, make_content, extra, expected, capsys):
    content = make_content(tmp_path)
    style = make_image(tmp_path / "style.png")
    code = _run(content, style, "-o", tmp_path / "o.png", "--weights", weights_file, "-q", "--iterations", "1",
                *(["--size", "32"] if "--size" not in extra else []), *extra)  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_unwritable_output_directory_is_refused_up_front(pair, tmp_path, weights_file, capsys) -> None:
    # /proc takes no new files, even from root (who passes every permission check on an ordinary folder)
    code = _run(*pair, "-o", "/proc/o.png", "--weights", weights_file, "--size", "32", "-q")
    assert code == 2 and "not writable" in capsys.readouterr().err


def test_animated_gif_content_runs_on_its_first_frame_with_a_notice(tmp_path, weights_file, capsys) -> None:
    frames = [Image.new("RGB", (40, 30), color) for color in ((200, 30, 30), (30, 200, 30))]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    out = tmp_path / "o.png"
    code = _run(gif, make_image(tmp_path / "s.png"), "-o", out, "--weights", weights_file, "--size", "32",
                "--iterations", "1")  # fmt: skip
    assert code == 0 and out.exists()
    assert "animated image with 2 frames, using the first" in capsys.readouterr().err
