"""A local web page over the job queue: upload, set, watch it paint, cancel, compare, download (docs/web.md).

``form`` generates the settings form from RunConfig, ``data`` is the server's data folder and its limits,
``security`` checks every request, ``hub`` numbers the live events, ``worker`` is the process that owns the network,
``app`` the FastAPI application and ``server`` runs it (``painterly serve``).  It needs the extra
``painterly[web]`` (FastAPI, uvicorn, python-multipart); without it, importing this package says how to install it.
Its modules' public names are re-exported here; the modules import each other by module, never this file.
"""

from __future__ import annotations

from painterly.web.extra import INSTALL_WEB, require_web

require_web()  # before the modules that import FastAPI

from painterly.web.app import (  # noqa: E402
    DEFAULT_QUOTA_BYTES,
    WORKER_DEATHS_PER_JOB,
    WORKER_RESTART_DELAY,
    ServerSettings,
    WebServer,
    create_app,
    is_loopback,
)
from painterly.web.data import EXAMPLES, MAX_STYLES, MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, DataFolder, check_key  # noqa: E402
from painterly.web.form import (  # noqa: E402
    NOT_IN_FORM,
    cli_command,
    colorize_fields,
    colorize_form,
    colorize_from_form,
    config_from_form,
    form_fields,
)
from painterly.web.hub import WINDOW, Hub  # noqa: E402
from painterly.web.security import COOKIE, HEADER, RequestGuard  # noqa: E402
from painterly.web.server import address, serve  # noqa: E402
from painterly.web.worker import PREVIEW_INTERVAL, Commands, worker_main  # noqa: E402

__all__ = [
    "COOKIE",
    "DEFAULT_QUOTA_BYTES",
    "EXAMPLES",
    "HEADER",
    "INSTALL_WEB",
    "MAX_STYLES",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "NOT_IN_FORM",
    "PREVIEW_INTERVAL",
    "WINDOW",
    "WORKER_DEATHS_PER_JOB",
    "WORKER_RESTART_DELAY",
    "Commands",
    "DataFolder",
    "Hub",
    "RequestGuard",
    "ServerSettings",
    "WebServer",
    "address",
    "check_key",
    "cli_command",
    "colorize_fields",
    "colorize_form",
    "colorize_from_form",
    "config_from_form",
    "create_app",
    "form_fields",
    "is_loopback",
    "require_web",
    "serve",
    "worker_main",
]
