"""RunConfig: the one source of the run's options, for stylize(), the command line, colorize and checkpoints."""

from __future__ import annotations

import dataclasses
import inspect
import json
import typing

import numpy as np
import pytest
from PIL import Image

from painterly import Interrupted, resume
from painterly.apps.cli import build_parser, config_options, parse_stylize_arguments
from painterly.config import CONFIG_FIELDS, RunConfig, field_types, option_info
from painterly.errors import OptionError
from painterly.io.checkpoint import load_checkpoint, save_checkpoint
from painterly.sketch.colorize import COLORIZE_DEFAULTS, COLORIZE_SETS, colorize
from painterly.stylize import RUNTIME_ARGUMENTS, stylize

from .conftest import run_for


def test_stylize_keywords_are_the_config_fields_with_their_defaults_and_types() -> None:
    parameters = inspect.signature(stylize).parameters
    keywords = [name for name, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    options = [name for name in keywords if name not in RUNTIME_ARGUMENTS]
    assert options == list(CONFIG_FIELDS)
    hints, field_hints, defaults = typing.get_type_hints(stylize), typing.get_type_hints(RunConfig), RunConfig()
    for name in options:
        assert parameters[name].default == getattr(defaults, name), name
        assert hints[name] == field_hints[name], name


def test_every_field_says_what_it_does_and_the_docstring_shows_it() -> None:
    for name in CONFIG_FIELDS:
        info = option_info(name)
        assert len(info.help) > 20 and info.group in ("common", "advanced"), name
        assert f"        {name}: {info.help[:30]}" in " ".join((stylize.__doc__ or "").split("\n")), name


def test_json_round_trip_keeps_every_value() -> None:
    config = RunConfig(
        size=300, start_size=None, style_weight=1e-3 / 3, style_blend=[0.7, 0.3], per_style_scale=(1.5, 0.5),
        per_style_layers=["relu1_1,relu2_1", "all"], style_masks=["a.png", "b.png"], color_control="luminance",
        content_layers=["relu3_2"], style_layers=("relu1_1", "relu2_1"), style_layer_weights=[0.25, 0.75],
        init="noise", optimizer="adam", learning_rate=0.05, lr_decay=0.1, average=0.9, mixed_precision=False,
        weights="w.pt", tile_size=0, checkpoint="run.ckpt", checkpoint_every=5, seed=7, device="cpu",
    )  # fmt: skip
    text = config.to_json()
    again = RunConfig.from_json(text)
    assert again == config
    assert again.style_blend == (0.7, 0.3) and isinstance(again.style_layers, tuple)
    assert json.loads(text)["style_weight"] == 1e-3 / 3  # exact, not rounded
    assert RunConfig.from_json(RunConfig().to_json()) == RunConfig()


def test_a_config_is_checked_once_when_made_with_the_command_lines_sentences() -> None:
    with pytest.raises(OptionError, match="size must be at least 16 pixels, not 8"):
        RunConfig(size=8)
    with pytest.raises(OptionError, match="style weight must be non-negative and finite"):
        RunConfig(style_weight=float("nan"))
    with pytest.raises(OptionError, match="not used by the adam optimizer"):
        RunConfig(optimizer="adam", history_size=10)
    with pytest.raises(OptionError, match="tiling cannot be used with style masks"):
        RunConfig(tile_size=128, style_masks=["m.png"])
    with pytest.raises(OptionError, match="size must be at least 16"):  # a replaced field is checked again
        RunConfig().replace(size=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunConfig().size = 64  # type: ignore[misc]


def test_the_bounds_a_form_shows_are_never_looser_than_the_checks() -> None:
    """A field's minimum and maximum (which the web form gives its number inputs) hold: one step beyond is refused
    by RunConfig itself, in a sentence, at once (an optimiser's bounds too, not only when a queued job starts)."""
    from painterly.engine.optim import OPTIMIZER_OPTIONS

    bounded = 0
    for name in CONFIG_FIELDS:
        info = option_info(name)
        reader = {"optimizer": OPTIMIZER_OPTIONS[name][0]} if name in OPTIMIZER_OPTIONS else {}
        hint = field_types()[name]
        step = 1 if int in (typing.get_args(hint) or (hint,)) else 1e-3  # a whole number's next value, or a little
        for bound, direction in ((info.minimum, -1), (info.maximum, 1)):
            if bound is None:
                continue
            bounded += 1
            with pytest.raises(OptionError):
                RunConfig(**{name: bound + direction * step}, **reader)
    assert bounded >= 15  # size, iterations, the weights, the optimiser's numbers, tiling ...
    with pytest.raises(OptionError, match="learning rate must be positive"):
        RunConfig(learning_rate=-0.5)


def test_what_needs_the_inputs_is_checked_against_them() -> None:
    config = RunConfig(style_blend=[1.0, 2.0])
    config.check_inputs(2)
    with pytest.raises(OptionError, match="2 blend weights given for 3 style images"):
        config.check_inputs(3)
    with pytest.raises(OptionError, match="at least one style image"):
        RunConfig().check_inputs(0)
    with pytest.raises(OptionError, match="init must be 'content', 'noise' or an existing image file"):
        RunConfig(init="/no/such/picture.png").check_inputs(1)


def test_json_refuses_objects_and_unknown_names_in_one_sentence() -> None:
    with pytest.raises(OptionError, match="style_masks holds an object of type Image, which cannot be written as JSON"):
        RunConfig(style_masks=[Image.new("L", (4, 4))]).to_json()
    with pytest.raises(OptionError, match=r"unknown option.*stlye_weight"):
        RunConfig.from_dict({"stlye_weight": 3})


def test_the_command_line_offers_every_field_in_its_group_with_its_default() -> None:
    parser = build_parser()
    args = parser.parse_args(["c.jpg", "s.jpg"])
    defaults = RunConfig()
    for name in CONFIG_FIELDS:
        assert getattr(args, name) == getattr(defaults, name), name
    groups = config_options()
    assert {kwargs["dest"] for _, kwargs in groups["common"]} == {
        name for name in CONFIG_FIELDS if option_info(name).group == "common"
    }
    assert "--laplacian-weight" in [flag for flag, _ in groups["advanced"]]
    text = parser.format_help()
    assert "advanced options" in text and "--tile-margin" in text


def test_colorize_offers_every_style_transfer_option_except_those_it_sets(tmp_path) -> None:
    groups = config_options(defaults=COLORIZE_DEFAULTS, leave_out=COLORIZE_SETS)
    offered = {kwargs["dest"]: kwargs["default"] for options in groups.values() for _, kwargs in options}
    assert set(offered) == set(CONFIG_FIELDS) - COLORIZE_SETS
    assert offered["iterations"] == 200 and offered["style_weight"] == 10.0 and offered["size"] == 512
    sketch = tmp_path / "sketch.png"
    Image.new("RGB", (32, 32), "white").save(sketch)
    with pytest.raises(OptionError, match="colorize\\(\\) sets the stylize option 'init' itself"):
        colorize(sketch, sketch, init="noise")
    with pytest.raises(OptionError, match="unknown option 'colour'"):
        colorize(sketch, sketch, colour="red")
    with pytest.raises(OptionError, match="laplacian weight must be non-negative"):  # checked by RunConfig
        colorize(sketch, sketch, laplacian_weight=-1.0)


def test_a_checkpoint_stores_the_config_with_its_automatic_choices_made(pair, weights_file, tmp_path) -> None:
    run = run_for(*pair, weights=str(weights_file), size=48, start_size=24, device="cpu",
                  checkpoint=str(tmp_path / "run.ckpt"))  # fmt: skip
    stored = run.checkpoint_config()
    assert stored["revision"] == run.revision and stored["tile_plan"] == run.tile_cores
    assert stored["content"] == str(pair[0].resolve())
    settings = {name: value for name, value in stored.items() if name not in ("content", "styles", "revision",
                                                                               "tile_plan")}  # fmt: skip
    again = RunConfig.from_dict(json.loads(json.dumps(settings)))
    assert again == run.resolved_config
    assert again.mixed_precision is not None and again.history_size == run.settings.history_size
    assert run.config.history_size is None  # what the user chose stays apart from what the run chose


def test_values_written_before_the_image_paths_do_not_swallow_them() -> None:
    _, args, config = parse_stylize_arguments(["--style-layers", "relu1_1", "relu2_1", "photo.jpg", "art.jpg"])
    assert config["style_layers"] == ["relu1_1", "relu2_1"]
    assert (str(args.content), [str(s) for s in args.styles]) == ("photo.jpg", ["art.jpg"])
    _, args, config = parse_stylize_arguments(["--style-blend", "0.3", "0.7", "p.png", "a.png", "b.png", "-o", "x.png"])
    assert config["style_blend"] == [0.3, 0.7] and [str(s) for s in args.styles] == ["a.png", "b.png"]
    _, args, config = parse_stylize_arguments(["--style-masks", "m1.png", "m2.png", "p.png", "a.png", "b.png"])
    assert config["style_masks"] == ["m1.png", "m2.png"] and str(args.content) == "p.png"
    _, args, config = parse_stylize_arguments(["p.png", "a.png", "--style-layers", "relu1_1", "--style-layers=relu3_1"])
    assert config["style_layers"] == ["relu1_1", "relu3_1"]  # one at a time adds up
    _, _, config = parse_stylize_arguments(["p.png", "a.png", "--content-layer-weights", "-1", "--size", "64"])
    assert config["content_layer_weights"] == [-1.0] and config["size"] == 64  # refused later, by RunConfig


def test_old_names_work_with_a_one_line_note_on_the_command_line_and_in_json(caplog) -> None:
    argv = ["p.png", "a.png", "b.png", "--style-scales", "2", "1", "--style-layer-sets", "all", "relu1_1",
            "--color-control", "histogram"]  # fmt: skip
    with caplog.at_level("WARNING", logger="painterly"):
        _, _, config = parse_stylize_arguments(argv)
    assert config["per_style_scale"] == [2.0, 1.0] and config["per_style_layers"] == ["all", "relu1_1"]
    assert config["color_control"] == "linear"
    assert "--style-scales is now called --per-style-scale" in caplog.text
    assert "--color-control histogram is now called linear" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="painterly"):
        old = RunConfig.from_json(json.dumps({"style_layer_sets": ["all"], "color_control": "histogram-full"}))
    assert old == RunConfig(per_style_layers=["all"], color_control="match-histograms")
    assert "style_layer_sets is now called per_style_layers" in caplog.text and len(caplog.records) == 2


def test_a_checkpoint_with_the_old_names_resumes_as_one_with_the_new(pair, tmp_path, weights_file, caplog) -> None:
    options = {"weights": str(weights_file), "size": 48, "start_size": 24, "iterations": 8, "color_control": "linear",
               "per_style_scale": [1.5], "per_style_layers": ["relu1_1,relu2_1,relu3_1"]}  # fmt: skip
    checkpoint = tmp_path / "new.ckpt"
    with pytest.raises(Interrupted):
        stylize(*pair, **options, checkpoint=checkpoint, should_stop=lambda: True)
    state = load_checkpoint(checkpoint)
    renamed = {"per_style_scale": "style_scales", "per_style_layers": "style_layer_sets"}
    state.config = {renamed.get(name, name): value for name, value in state.config.items()}
    state.config["color_control"] = "histogram"
    old = save_checkpoint(tmp_path / "old.ckpt", state)
    with caplog.at_level("WARNING", logger="painterly"):
        from_old = np.asarray(resume(old))
    assert "style_scales is now called per_style_scale" in caplog.text
    assert np.array_equal(from_old, np.asarray(resume(checkpoint)))
