"""Write the parameter manifests of the torchvision-layout networks (src/painterly/nets/manifests/*.json).

painterly reads weight files laid out as torchvision's VGG-16, AlexNet, GoogLeNet and ResNet-50 save them, without
depending on torchvision (whose wheels do not import beside painterly's torch).  What such a file holds (every
parameter's and buffer's name, shape and dtype) is taken once from torchvision's own model definitions and
committed as a manifest, which the loaders and their tests check against.  This script makes them:

    pip download --no-deps torchvision==0.25.0 -d /tmp/tv   # any recent wheel; nothing of it is installed
    python bench/torchvision_manifests.py /tmp/tv/torchvision-0.25.0-*.whl

It reads each model file's source out of the wheel, drops its imports of torchvision's own helpers (registration,
weight enums, logging) for inert stand-ins, runs it with the real torch, builds the model and records its
``state_dict()``: nothing of torchvision is imported, and no weights are downloaded.  Each manifest records the
torchvision version and the sha256 of the source file it came from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

MANIFESTS = Path(__file__).resolve().parents[1] / "src" / "painterly" / "nets" / "manifests"

#: network -> (model file in the wheel, constructor call, keys a user's file may lack, a note for readers).
NETWORKS: dict[str, tuple[str, str, list[str], str]] = {
    "vgg16": ("torchvision/models/vgg.py", "vgg16()", [], ""),
    "alexnet": ("torchvision/models/alexnet.py", "alexnet()", [], ""),
    "googlenet": (
        "torchvision/models/googlenet.py",
        "googlenet(aux_logits=True, init_weights=False)",
        ["aux1.", "aux2."],
        "torchvision's pretrained GoogLeNet file holds the auxiliary heads aux1 and aux2 (torchvision builds the "
        "model with aux_logits=True to load it strictly, then drops them unless asked for), so a downloaded file "
        "has them and a state_dict() saved from the model torchvision hands out has not: both are accepted, the "
        "heads are not used. The pretrained model also sets transform_input=True (not a parameter).",
    ),
    "resnet50": ("torchvision/models/resnet.py", "resnet50()", [], ""),
}


class _Inert:
    """Stands in for torchvision's helpers: callable, decorating, subclassable, indexable, all without effect."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return args[0] if len(args) == 1 and callable(args[0]) and not kwargs else self

    def __getattr__(self, name: str) -> Any:
        return self

    def __getitem__(self, key: Any) -> Any:
        return self

    def __len__(self) -> int:
        return 1000


class _WeightsEnum:
    """Weight enums are class bodies of ``Weights(...)`` members; only ``verify`` is called (with None here)."""

    @classmethod
    def verify(cls, weights: Any) -> Any:
        return weights


def _decorator_factory(*args: Any, **kwargs: Any) -> Any:
    return lambda function: function


def _namespace() -> dict[str, Any]:
    """torchvision's internal names the model files import, as inert stand-ins."""
    return {
        "__name__": "torchvision_model_source",
        "ImageClassification": _Inert(),
        "_log_api_usage_once": lambda *args, **kwargs: None,
        "register_model": _decorator_factory,
        "handle_legacy_interface": _decorator_factory,
        "Weights": _Inert,
        "WeightsEnum": _WeightsEnum,
        "_IMAGENET_CATEGORIES": ["category"] * 1000,
        "_ovewrite_named_param": lambda kwargs, name, value: kwargs.__setitem__(name, value),
    }


#: Lines importing torchvision's own modules (relative imports), which the stand-ins replace.
_INTERNAL_IMPORT = re.compile(r"^from \.+[\w.]* import .*$", re.MULTILINE)


def _state_of(source: str, call: str) -> dict[str, torch.Tensor]:
    namespace = _namespace()
    exec(compile(_INTERNAL_IMPORT.sub("", source), "torchvision_model_source", "exec"), namespace)
    model = eval(call, namespace)
    return model.state_dict()


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def manifest(wheel: zipfile.ZipFile, version: str, network: str) -> dict[str, Any]:
    """The manifest of ``network``: torchvision's version, the model file's sha256, every state entry in order."""
    member, call, optional, note = NETWORKS[network]
    raw = wheel.read(member)
    torch.manual_seed(0)
    state = _state_of(raw.decode(), call)
    return {
        "network": network,
        "torchvision": version,
        "source": member,
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "built_with": call,
        "optional_prefixes": optional,
        "note": note,
        "state": [[name, list(tensor.shape), _dtype_name(tensor.dtype)] for name, tensor in state.items()],
    }


def _write(path: Path, content: dict[str, Any]) -> None:
    """JSON with one state entry per line: a diff of two torchvision versions reads entry by entry."""
    head = {key: value for key, value in content.items() if key != "state"}
    lines = ",\n".join(f"    {json.dumps(entry)}" for entry in content["state"])
    text = json.dumps(head, indent=2)[:-2] + ',\n  "state": [\n' + lines + "\n  ]\n}\n"
    json.loads(text)  # still JSON
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="a downloaded torchvision wheel (not installed)")
    parser.add_argument("--out", type=Path, default=MANIFESTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(args.wheel) as wheel:
        version_source = wheel.read("torchvision/version.py").decode()
        found = re.search(r"__version__ = '([^']+)'", version_source)
        version = found[1].split("+")[0] if found else "unknown"
        for network in NETWORKS:
            content = manifest(wheel, version, network)
            _write(args.out / f"{network}.json", content)
            print(f"{network}: {len(content['state'])} entries from torchvision {version}")


if __name__ == "__main__":
    main()
