"""Whether the web extra is installed: FastAPI, uvicorn and python-multipart come with ``painterly[web]``."""

from __future__ import annotations

from painterly.errors import MissingExtraError

__all__ = ["INSTALL_WEB", "require_web"]

INSTALL_WEB = "pip install 'painterly[web]'"


def require_web() -> None:
    """Refuse in one sentence, saying how to install them, when the extra's packages are missing."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise MissingExtraError(
            f"painterly serve needs FastAPI, uvicorn and python-multipart ({error.name} is missing): {INSTALL_WEB}"
        ) from None
