"""The raw results file every resumable bench keeps: read it (empty when missing), write it whole after each run.

Written atomically (painterly.io.atomic), so a bench stopped mid-write keeps its earlier results and resumes from
them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from painterly.io.atomic import atomic_write_bytes


def load_results(path: Path) -> dict[str, Any]:
    """The results kept at ``path``, or an empty dict for a first run."""
    return json.loads(path.read_text()) if path.exists() else {}


def save_results(path: Path, data: dict[str, Any]) -> None:
    """``data`` as indented, key-sorted JSON at ``path`` (its folder made if missing), replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())
