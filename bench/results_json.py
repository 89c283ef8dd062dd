"""The raw results file every resumable bench keeps: read it (empty when missing), write it whole after each run.

Written atomically (painterly.io.atomic), so a bench stopped mid-write keeps its earlier results and resumes from
them.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from painterly.io.atomic import atomic_write_bytes


def load_results(path: Path) -> dict[str, Any]:
    """The results kept at ``path``, or an empty dict for a first run."""
    return json.loads(path.read_text()) if path.exists() else {}


def save_results(path: Path, data: dict[str, Any]) -> None:
    """``data`` as indented, key-sorted JSON at ``path`` (its folder made if missing), replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())


def machine() -> dict[str, Any]:
    """What a timing depends on, kept beside each run: the CPU's model name, cores, torch's threads, the load, the
    versions and the date (a figure without its CPU cannot be compared)."""
    cpu = "unknown CPU"
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_1min": load,
            "torch": torch.__version__, "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}  # fmt: skip
