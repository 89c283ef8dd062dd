"""The package version, in one place: pyproject.toml reads it (``[tool.setuptools.dynamic]``) and
``painterly.__version__`` re-exports it, so the installed metadata and the module can never disagree.

Kept free of imports, so setuptools reads it without importing painterly (and torch).
"""

__version__ = "0.1.0"
