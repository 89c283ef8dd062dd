"""``painterly serve``: the web page's server, started on loopback unless asked otherwise.

It prints the address (with the token when one is needed) and opens no browser.  Uvicorn runs the application of
:mod:`painterly.web.app`; Ctrl-C or SIGTERM stops the worker between two steps, writing the running job's
checkpoint, so the next ``painterly serve`` on the same data folder continues it bit for bit.
"""

from __future__ import annotations

import sys
from typing import TextIO

from painterly.web.app import ServerSettings, WebServer, create_app, is_loopback

__all__ = ["address", "serve"]


def address(settings: ServerSettings) -> str:
    """The page's address as printed: with ``?token=...`` when the server needs its token."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "[::]") else host
    query = f"/?token={settings.token}" if settings.token else "/"
    return f"http://{shown}:{settings.port}{query}"


def serve(settings: ServerSettings, *, out: TextIO = sys.stdout) -> None:
    """Run the server until stopped (see the module)."""
    import uvicorn

    server = WebServer(settings)
    app = create_app(server)
    where = "loopback only" if is_loopback(settings.host) else "beyond loopback: the token is required"
    print(f"painterly: serving {server.data.root} at {address(settings)} ({where}); Ctrl-C stops", file=out)
    out.flush()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5)
