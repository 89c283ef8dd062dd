"""``style_weight="auto"`` (issue 19 part 3): the rule on constructed pictures, the number it resolves to kept in
the resolved settings, the checkpoint and the trace, a resume that keeps it, an explicit weight that wins, and
one-sentence refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly import Interrupted, resume, stylize
from painterly.apps.cli import build_parser, main
from painterly.config import RunConfig
from painterly.errors import OptionError
from painterly.io.checkpoint import load_checkpoint
from painterly.plan.balance import (
    AUTO_MIN_SHARE,
    AUTO_REFERENCE_WEIGHT,
    auto_style_weight,
    edge_contrast,
)
from painterly.plan.stages import RECIPES

from .conftest import run_for


def _stripes(contrast: float, period: int = 8, size: int = 64) -> Image.Image:
    """Vertical grey stripes of the given contrast around mid-grey: edges exactly as strong as asked."""
    column = np.where((np.arange(size) // (period // 2)) % 2 == 0, 0.5 + contrast / 2, 0.5 - contrast / 2)
    grey = np.tile(column, (size, 1))
    return Image.fromarray((np.stack([grey] * 3, axis=-1) * 255).round().astype(np.uint8), "RGB")


def test_a_higher_contrast_style_gets_a_lower_weight() -> None:
    photo = _stripes(0.3)
    mild, bold, bolder = _stripes(0.2), _stripes(0.6), _stripes(0.9)
    assert edge_contrast(bold) > edge_contrast(mild)
    # a painting no more contrasted than the photo leaves the reference weight alone
    assert auto_style_weight(photo, [mild]) == AUTO_REFERENCE_WEIGHT
    # stronger painted edges: the weight falls in proportion (twice the contrast, half the weight)
    assert auto_style_weight(photo, [bold]) == pytest.approx(AUTO_REFERENCE_WEIGHT * 0.5, rel=0.02)
    assert auto_style_weight(photo, [bolder]) < auto_style_weight(photo, [bold])
    # and never below the floor, not even for a flat photo
    flat = Image.new("RGB", (64, 64), (128, 128, 128))
    assert auto_style_weight(flat, [bold]) == AUTO_REFERENCE_WEIGHT * AUTO_MIN_SHARE


def test_several_styles_are_weighed_by_their_blend() -> None:
    photo, mild, bold = _stripes(0.3), _stripes(0.3), _stripes(0.9)
    mostly_mild = auto_style_weight(photo, [mild, bold], [0.9, 0.1])
    mostly_bold = auto_style_weight(photo, [mild, bold], [0.1, 0.9])
    assert mostly_bold < mostly_mild < AUTO_REFERENCE_WEIGHT


def test_the_weight_does_not_depend_on_the_size_the_picture_is_given_at() -> None:
    large = _stripes(0.5, period=64, size=1024)  # the same picture at 1024 and at 512 px: measured at 256 px both
    half = large.resize((512, 512), Image.Resampling.LANCZOS)
    assert edge_contrast(half) == pytest.approx(edge_contrast(large), rel=0.05)


def test_auto_resolves_to_a_number_in_the_settings_the_checkpoint_and_the_trace(pair, weights_file) -> None:
    run = run_for(*pair, weights=str(weights_file), size=32, iterations=2, style_weight="auto")
    chosen = run.resolved_config.style_weight
    assert isinstance(chosen, float) and 0 < chosen <= AUTO_REFERENCE_WEIGHT
    assert chosen == pytest.approx(auto_style_weight(run.working_content, run.style_images))
    assert run.config.style_weight == "auto" and run.checkpoint_config()["style_weight"] == chosen
    records = []
    stylize(*pair, weights=str(weights_file), size=32, iterations=2, style_weight="auto", on_step=records.append)
    assert [r.style_weight for r in records] == [chosen, chosen]


def test_the_auto_weight_scales_the_style_loss_as_the_same_number_would(pair, weights_file) -> None:
    auto = run_for(*pair, weights=str(weights_file), size=32, style_weight="auto")
    explicit = run_for(*pair, weights=str(weights_file), size=32, style_weight=auto.resolved_config.style_weight)
    assert auto.style_weights == explicit.style_weights


def test_an_explicit_weight_wins(pair, weights_file) -> None:
    run = run_for(*pair, weights=str(weights_file), size=32, style_weight=7.0)
    assert run.resolved_config.style_weight == 7.0 and run.style_weight == 7.0


def test_a_resumed_run_keeps_the_weight_it_chose(pair, tmp_path: Path, weights_file: Path) -> None:
    options = {"weights": str(weights_file), "size": 32, "start_size": None, "iterations": 6, "seed": 3,
               "style_weight": "auto"}  # fmt: skip
    uninterrupted = np.asarray(stylize(*pair, **options))
    checkpoint = tmp_path / "run.ckpt"
    seen: list[int] = []
    with pytest.raises(Interrupted):
        stylize(*pair, **options, checkpoint=checkpoint, on_step=lambda r: seen.append(r.step),
                should_stop=lambda: len(seen) >= 3)  # fmt: skip
    stored = load_checkpoint(checkpoint).config["style_weight"]
    assert isinstance(stored, float)
    weights_after: list[float | None] = []
    resumed = resume(checkpoint, on_step=lambda r: weights_after.append(r.style_weight))
    assert weights_after == [stored] * 3
    assert np.array_equal(np.asarray(resumed), uninterrupted)


def test_the_cli_takes_auto_or_a_number(pair, tmp_path: Path, weights_file: Path, capsys) -> None:
    assert build_parser().parse_args(["c.jpg", "s.jpg", "--style-weight", "auto"]).style_weight == "auto"
    assert build_parser().parse_args(["c.jpg", "s.jpg", "--style-weight", "12.5"]).style_weight == 12.5
    trace = tmp_path / "trace.jsonl"
    args = [*pair, "-o", tmp_path / "o.png", "--weights", weights_file, "--size", "32", "--iterations", "2"]
    code = main([str(a) for a in [*args, "--style-weight", "auto", "--trace", trace, "-q"]])
    assert code == 0
    rows = [json.loads(line) for line in trace.read_text().splitlines()]
    assert len({r["style_weight"] for r in rows}) == 1 and isinstance(rows[0]["style_weight"], float)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # argparse's own refusal: the usage, then one line that says why
        main([str(pair[0]), str(pair[1]), "-o", str(tmp_path / "p.png"), "--style-weight", "lots"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and err[-1].endswith("--style-weight: expected a number or auto, got 'lots'")


@pytest.mark.parametrize(
    ("value", "message"),
    [("lots", "style weight must be a non-negative number or 'auto', not 'lots'"),
     (-1.0, "style weight must be non-negative and finite, not -1.0"),
     (float("nan"), "style weight must be non-negative and finite, not nan")],
)  # fmt: skip
def test_bad_values_are_refused_in_one_sentence(value: object, message: str) -> None:
    with pytest.raises(OptionError) as info:
        RunConfig(style_weight=value)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_auto_survives_a_json_round_trip_and_older_revisions_refuse_it(pair, weights_file) -> None:
    config = RunConfig(style_weight="auto")
    assert RunConfig.from_json(config.to_json()) == config
    assert not RECIPES[5].auto_style_weight and RECIPES[max(RECIPES)].auto_style_weight
    with pytest.raises(OptionError, match="style weight 'auto' is not part of run revision 5; give a number"):
        run_for(*pair, weights=str(weights_file), size=32, style_weight="auto", revision=5)
