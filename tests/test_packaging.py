"""Packaging: one version, read by both the module and the installed metadata; the licence file matches."""

from __future__ import annotations

import importlib.metadata
import tomllib

import painterly

from .conftest import REPO


def test_the_module_reports_the_installed_version() -> None:
    """``painterly.__version__`` and the distribution's metadata come from one place (src/painterly/_version.py).

    A failure here means the two were written apart again, or the editable install predates a version change
    (reinstall with ``pip install -e .``).
    """
    assert painterly.__version__ == importlib.metadata.version("painterly")


def test_pyproject_takes_the_version_from_the_module_and_names_the_licence_file() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "painterly._version.__version__"}
    assert project["project"]["license"] in ({"text": "MIT"}, "MIT")  # the table form, or PEP 639's expression
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2026 the painterly authors" in licence


def test_the_package_says_it_is_typed() -> None:
    """PEP 561: py.typed ships with the package, so type checkers read painterly's annotations."""
    from importlib.resources import files

    assert (files("painterly") / "py.typed").is_file()
