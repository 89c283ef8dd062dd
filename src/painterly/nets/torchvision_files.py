"""Weight files in torchvision's layout: what each network's file holds, and reading a user's file against it.

No package ships VGG-16, AlexNet, GoogLeNet or ResNet-50 weights and the model hubs cannot be reached, so users
bring the files torchvision saves (``model.state_dict()``, or the file torchvision downloads).  What such a file
holds, every parameter's and buffer's name, shape and dtype, was taken once from torchvision's model definitions
(``bench/torchvision_manifests.py``) and ships as a manifest (``nets/manifests/<network>.json``): a file is read
against it, and anything else (another network's file, another layout, a truncated layer) is refused with one
sentence naming the first entry that is missing or differs, before any model is built.

Files are read with ``weights_only=True``: a weight file is data, and a pickle that would run code is refused.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from painterly.nets.weights import WeightsUnavailableError

__all__ = ["Manifest", "TorchvisionFile", "manifest", "read_torchvision_file"]

#: A buffer that files saved before PyTorch 0.4.1 lack (torchvision's older pretrained files among them); batch
#: normalisation's own loader fills it in, and so does :func:`read_torchvision_file` (it is unused in eval mode).
_COUNTER = "num_batches_tracked"


@dataclass(frozen=True)
class Manifest:
    """What a torchvision-layout file of one network holds: ``{name: (shape, dtype)}`` in torchvision's order."""

    network: str
    #: The torchvision release whose model definition the entries were taken from.
    torchvision: str
    entries: dict[str, tuple[tuple[int, ...], str]]
    #: Entries a file may lack as a group (GoogLeNet's auxiliary heads): checked where present, unused.
    optional_prefixes: tuple[str, ...]

    def required(self, name: str) -> bool:
        """Whether a file must hold ``name`` (the batch counter and optional groups need not be there)."""
        return not name.endswith(_COUNTER) and not name.startswith(self.optional_prefixes)


@functools.cache
def manifest(network: str) -> Manifest:
    """The committed manifest of ``network`` (``"vgg16"``, ``"alexnet"``, ``"googlenet"``, ``"resnet50"``)."""
    text = (resources.files("painterly") / "nets" / "manifests" / f"{network}.json").read_text()
    raw = json.loads(text)
    entries = {name: (tuple(shape), dtype) for name, shape, dtype in raw["state"]}
    return Manifest(raw["network"], raw["torchvision"], entries, tuple(raw["optional_prefixes"]))


@dataclass(frozen=True)
class TorchvisionFile:
    """A user's file, checked: its state with exactly the manifest's required entries (floating ones as float32, a
    missing batch counter filled in, optional groups left out), and the sha256 of the file's bytes (what identifies
    it: its channel means are kept under it)."""

    state: dict[str, Tensor]
    sha256: str
    source: str


def _state_dict_in(raw: object, origin: str) -> dict[str, Tensor]:
    """The state dict a loaded object holds: itself, or its ``"state_dict"`` entry (a training checkpoint), with
    ``module.`` (what ``DataParallel`` adds to every name) taken off."""
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, Tensor) for v in raw.values()) or not raw:
        raise WeightsUnavailableError(f"{origin} does not hold a state dict of tensors (found {type(raw).__name__})")
    if all(str(key).startswith("module.") for key in raw):
        raw = {str(key).removeprefix("module."): value for key, value in raw.items()}
    return {str(key): value for key, value in raw.items()}


def _check(state: dict[str, Tensor], wanted: Manifest, title: str, origin: str) -> None:
    """One sentence about the first entry, in torchvision's order, that is missing or differs in shape or kind;
    then about the first entry the network does not have."""
    missing = [name for name in wanted.entries if name not in state and wanted.required(name)]
    for name, (shape, dtype) in wanted.entries.items():
        if name not in state:
            if wanted.required(name):
                raise WeightsUnavailableError(
                    f"{origin} is not a torchvision {title} file: it lacks {name} "
                    f"(the first of {len(missing)} missing parameter{'s' if len(missing) > 1 else ''})"
                )
            continue
        found = state[name]
        if tuple(found.shape) != shape:
            raise WeightsUnavailableError(
                f"{origin} is not a torchvision {title} file: its {name} has shape {tuple(found.shape)} "
                f"where {title}'s has {shape}"
            )
        if found.is_floating_point() != torch.empty(0, dtype=getattr(torch, dtype)).is_floating_point():
            raise WeightsUnavailableError(
                f"{origin} is not a torchvision {title} file: its {name} holds {str(found.dtype)[6:]} values "
                f"where {title}'s holds {dtype}"
            )
    unexpected = [name for name in state if name not in wanted.entries]
    if unexpected:
        raise WeightsUnavailableError(
            f"{origin} is not a torchvision {title} file: it has {unexpected[0]}, which {title} lacks "
            f"(the first of {len(unexpected)} unexpected entr{'ies' if len(unexpected) > 1 else 'y'})"
        )


def read_torchvision_file(path: str | os.PathLike[str], network: str, title: str) -> TorchvisionFile:
    """Read ``path`` as a torchvision-layout file of ``network`` (``title`` in sentences) and check it against its
    manifest; any problem is one sentence (:class:`~painterly.nets.weights.WeightsUnavailableError`)."""
    path = Path(path)
    origin = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = "not found" if isinstance(exc, FileNotFoundError) else exc.strerror or exc.__class__.__name__
        raise WeightsUnavailableError(f"{origin}: weights file {reason}") from None
    try:
        raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad or unsafe file
        raise WeightsUnavailableError(
            f"{origin}: not a PyTorch weights file that loads with weights_only=True ({exc.__class__.__name__})"
        ) from None
    state = _state_dict_in(raw, origin)
    wanted = manifest(network)
    _check(state, wanted, title, origin)
    checked = {  # optional groups (GoogLeNet's auxiliary heads) were checked where present; they are not used
        name: state[name].float() if state[name].is_floating_point() else state[name]
        for name in wanted.entries
        if name in state and not name.startswith(wanted.optional_prefixes)
    }
    for name in wanted.entries:
        if name.endswith(_COUNTER) and name not in checked and not name.startswith(wanted.optional_prefixes):
            checked[name] = torch.tensor(0, dtype=torch.int64)
    return TorchvisionFile(state=checked, sha256=hashlib.sha256(data).hexdigest(), source=origin)
