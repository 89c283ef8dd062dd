"""Loading a bench script in a test: bench/ is a folder of scripts, not a package, so a test loads the file itself
(its main() runs only as a script), registered in sys.modules for the test's duration (dataclasses look their
module up while the file runs)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def require_judges_extra() -> None:
    """Skip a test of a judged bench where the judges extra is missing here; fail it in CI, where `make test`
    installs it."""
    if importlib.util.find_spec("skimage") is None or importlib.util.find_spec("scipy") is None:
        if os.environ.get("CI"):
            pytest.fail("scikit-image and scipy (the judges extra) missing in CI")
        pytest.skip("scikit-image and scipy (the judges extra) not installed here")


def load_bench_script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``bench/<name>.py`` as a module named ``bench_<name>``."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module
