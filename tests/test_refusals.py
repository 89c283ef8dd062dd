"""Settings that cannot work are refused before the first step, with one sentence and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from painterly import OptionError, OutputError, stylize
from painterly.apps.cli import main
from painterly.nets.weights import VGGWeights

from .conftest import run_for


def _cli(*args: str | Path) -> int:
    return main([str(a) for a in args])


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--content-weight", "0", "--style-weight", "0"], "all have zero weight"),
        (["--content-weight", "0", "--style-layer-weights", "0", "0", "0", "0", "0"], "all have zero weight"),
        (["--momentum", "0.5"], "momentum is not used by the lbfgs optimizer, only with --optimizer gd"),
        (["--optimizer", "adam", "--history-size", "10"], "history size is not used by the adam optimizer"),
        (["--optimizer", "gd", "--line-search"], "line search is not used by the gd optimizer"),
        (["--optimizer", "adam", "--momentum", "0.9"], "momentum is not used by the adam optimizer"),
        (["--momentum", "0"], "momentum is not used by the lbfgs optimizer"),
        (["--content-weight", "0", "--style-weight", "0", "--trace", "{tmp}/t.jsonl"], "all have zero weight"),
        (["--trace", "{tmp}/content.png", "--overwrite"], "is also"),
        (["--trace", "{tmp}/no/such/folder/trace.jsonl"], "trace file"),
        (["--checkpoint", "{tmp}/no/such/folder/run.ckpt"], "checkpoint"),
    ],
    ids=["no-weights", "no-layer-weights", "momentum-lbfgs", "history-adam", "line-search-gd", "momentum-adam",
         "momentum-zero", "refused-leaves-no-trace", "trace-is-input", "trace-folder", "checkpoint-folder"],
)  # fmt: skip
def test_refused_up_front_with_one_sentence(pair, tmp_path: Path, weights_file: Path, extra, expected, capsys) -> None:
    out = tmp_path / "out.png"
    extra = [value.replace("{tmp}", str(tmp_path)) for value in extra]
    code = _cli(*pair, "-o", out, "--weights", weights_file, "--size", "32", "--iterations", "2", "-q", *extra)
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["content.png", "style.png", "tiny.pt"])


def test_the_options_each_optimiser_reads_are_accepted(pair, tiny_weights: VGGWeights) -> None:
    """The refusal names only what would be ignored: each optimiser still takes its own options."""
    base = {"weights": tiny_weights, "size": 32, "start_size": None, "iterations": 2, "device": "cpu"}
    for options in ({"optimizer": "lbfgs", "history_size": 5, "line_search": True},
                    {"optimizer": "gd", "momentum": 0.5, "lr_decay": 0.5, "average": 0.5},
                    {"optimizer": "adam", "lr_decay": 0.5, "average": 0.5, "line_search": False}):  # fmt: skip
        assert stylize(*pair, **base, **options).size == (32, 24)


def test_the_gd_momentum_default_is_still_point_nine(pair, tiny_weights: VGGWeights) -> None:
    run = run_for(*pair, weights=tiny_weights, size=32, optimizer="gd")
    assert run.settings.momentum == 0.9
    assert run_for(*pair, weights=tiny_weights, size=32, optimizer="gd", momentum=0.0).settings.momentum == 0.0


def test_an_unwritable_checkpoint_is_refused_by_the_api_before_any_work(pair, tiny_weights: VGGWeights) -> None:
    # /proc takes no new files, whoever asks (root passes any permission check on an ordinary folder)
    with pytest.raises(OutputError, match="not writable"):
        run_for(*pair, weights=tiny_weights, size=32, checkpoint="/proc/run.ckpt")


def test_an_unwritable_trace_or_checkpoint_is_refused_by_the_cli(pair, tmp_path: Path, weights_file, capsys) -> None:
    for option in ("--trace", "--checkpoint"):
        code = _cli(*pair, "-o", tmp_path / "o.png", "--weights", weights_file, "--size", "32", "-q",
                    option, "/proc/painterly.out")  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and "not writable" in err and "Traceback" not in err


def test_a_checkpoint_path_that_is_a_folder_is_refused_by_the_api(pair, tmp_path: Path, tiny_weights) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        run_for(*pair, weights=tiny_weights, size=32, checkpoint=tmp_path)


def test_black_masks_with_no_content_loss_are_refused(pair, tmp_path: Path, tiny_weights: VGGWeights) -> None:
    mask = tmp_path / "black.png"
    Image.new("L", (48, 36), 0).save(mask)
    with pytest.raises(OptionError, match="every style mask is black"):
        run_for(*pair, weights=tiny_weights, size=32, content_weight=0.0, style_masks=[mask])
    # with a content loss the run is legal: the style is simply left out, with a note
    assert run_for(*pair, weights=tiny_weights, size=32, style_masks=[mask]).mask_images is not None


def test_edges_alone_are_a_target_smoothing_alone_is_not(pair, tiny_weights: VGGWeights) -> None:
    """The Laplacian loss compares with the content's edges; TV compares with nothing."""
    base = {"weights": tiny_weights, "size": 32, "content_weight": 0.0, "style_weight": 0.0}
    assert run_for(*pair, **base, laplacian_weight=1.0).config.laplacian_weight == 1.0
    with pytest.raises(OptionError, match="nothing to paint towards"):
        run_for(*pair, **base, tv_weight=1.0)


def test_checkpoint_data_that_a_checkpoint_cannot_hold_is_refused_before_work(pair, tiny_weights) -> None:
    with pytest.raises(OptionError, match="plain JSON values"):
        stylize(*pair, weights=tiny_weights, size=32, checkpoint_extra={"callback": print})
