"""Every picture painterly writes carries what made it, and can be made again from that record."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from painterly import OptionError, RunConfig, __version__, colorize, reproduce, stylize
from painterly.apps.cli import main
from painterly.io.checkpoint import file_sha256
from painterly.io.images import save_image
from painterly.provenance import job_of, read_provenance

OPTIONS = {"size": 40, "start_size": 20, "iterations": 6, "init": "noise", "seed": 3, "device": "cpu"}


@pytest.fixture
def picture(pair, weights_file):
    return stylize(*pair, weights=str(weights_file), **OPTIONS)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_the_written_file_carries_the_settings_inputs_version_and_weights_digest(
    picture, pair, weights_file, tmp_path, suffix
) -> None:
    path = save_image(picture, tmp_path / f"out{suffix}")
    record = read_provenance(path)
    assert record is not None and record["painterly"] == __version__
    assert record["weights_sha256"] == file_sha256(weights_file)
    assert record["inputs"] == {str(p.resolve()): file_sha256(p) for p in (*pair, weights_file)}
    job = job_of(record)
    assert job.content == str(pair[0].resolve()) and job.styles == (str(pair[1].resolve()),)
    chosen = RunConfig(weights=str(weights_file.resolve()), **OPTIONS)
    # the record holds the run's automatic choices made: the network's own layers, precision, history
    assert job.config == chosen.replace(
        content_layers=chosen.chosen_content_layers, style_layers=chosen.chosen_style_layers, swag=False,
        mixed_precision=job.config.mixed_precision, history_size=job.config.history_size,
    )  # fmt: skip
    assert job.revision is not None and job.tile_plan is not None


def test_a_picture_is_made_again_from_its_file_pixel_for_pixel(picture, tmp_path) -> None:
    path = save_image(picture, tmp_path / "out.png")
    again = reproduce(path)
    assert np.array_equal(np.asarray(again), np.asarray(Image.open(path)))


def test_reproducing_refuses_changed_inputs_and_pictures_without_a_record(picture, pair, tmp_path) -> None:
    path = save_image(picture, tmp_path / "out.png")
    Image.new("RGB", (32, 24), "red").save(pair[1])  # the style changed since
    with pytest.raises(OptionError, match="has changed since the picture was made"):
        reproduce(path)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    with pytest.raises(OptionError, match="carries no painterly provenance"):
        reproduce(plain)


def test_a_run_from_in_memory_images_records_nothing_it_cannot_point_at(pair, tiny_weights, tmp_path) -> None:
    result = stylize(Image.open(pair[0]), pair[1], weights=tiny_weights, **OPTIONS)
    assert read_provenance(save_image(result, tmp_path / "out.png")) is None


def test_the_command_line_writes_the_record_and_makes_the_picture_again(pair, weights_file, tmp_path, capsys) -> None:
    out, again = tmp_path / "out.png", tmp_path / "again.png"
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in OPTIONS.items()]
    argv = [str(pair[0]), str(pair[1]), "-o", str(out), "--weights", str(weights_file), "-q", "--save-every", "3"]
    assert main([*argv, *flags]) == 0
    assert read_provenance(out) == read_provenance(tmp_path / "out_step0003.png") is not None  # step images too
    capsys.readouterr()
    assert main(["reproduce", str(out), "--show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["job"]["size"] == 40 and shown["job"]["init"] == "noise"
    assert main(["reproduce", str(out), "-o", str(again), "-q"]) == 0
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(out)))


def test_a_colorized_drawing_is_made_again_from_its_file(pair, weights_file, tmp_path) -> None:
    sketch = tmp_path / "sketch.png"
    drawing = Image.new("RGB", (40, 32), "white")
    drawing.paste((0, 0, 0), (4, 4, 36, 6))  # a line
    drawing.paste((0, 0, 0), (19, 4, 21, 30))
    drawing.save(sketch)
    colored = colorize(sketch, pair[1], size=40, start_size=None, iterations=4, weights=str(weights_file),
                       line_width=1, laplacian_weight=10.0, device="cpu")  # fmt: skip
    path = save_image(colored, tmp_path / "colored.webp")
    record = read_provenance(path)
    assert record is not None and record["kind"] == "colorize" and record["job"]["line_width"] == 1
    assert record["job"]["laplacian_weight"] == 10.0 and record["job"]["iterations"] == 4
    assert np.array_equal(np.asarray(reproduce(path)), np.asarray(colored))
