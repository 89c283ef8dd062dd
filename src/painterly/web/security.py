"""The checks every request passes before it reaches a route: Host, Origin, the server's token, the body's size.

- **Host**: only the names the server answers to (``127.0.0.1``, ``localhost``, ``[::1]``, and the address it was
  asked to listen on), so a web site that points its own name at this machine (DNS rebinding) is refused.
- **Origin**: a request that says where it comes from must come from this server's own page; a browser's
  cross-site request (``Sec-Fetch-Site: cross-site``) is refused even without an Origin, so another site can
  neither start nor cancel jobs nor read pictures.
- **Token**: a per-server secret, required whenever the server listens beyond loopback: as the ``token`` query
  parameter of the first page load (which sets it as a same-site cookie), the ``X-Painterly-Token`` header, or the
  cookie.
- **Size**: a request body larger than ``max_body`` bytes is cut off with 413 as it arrives, before it is spooled.

Refusals are one sentence of JSON (``{"detail": ...}``), as every error of the API.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["COOKIE", "HEADER", "RequestGuard"]

COOKIE = "painterly_token"
HEADER = "x-painterly-token"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    pass


class RequestGuard:
    """ASGI middleware doing the checks of the module around ``app``."""

    def __init__(self, app: App, *, hosts: Collection[str], token: str | None, max_body: int) -> None:
        self.app = app
        self.hosts = {host.lower() for host in hosts}
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        problem = self.refusal(scope, headers)
        if problem is not None:
            await _reply(send, problem[0], problem[1])
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await _reply(send, 413, f"the request is larger than the server's {self.max_body // 2**20} MiB limit")
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise _TooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _reply(send, 413, f"the request is larger than the server's {self.max_body // 2**20} MiB limit")

    def refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, sentence) when the request must be refused, else None."""
        host = _hostname(headers.get("host", ""))
        if host not in self.hosts:
            return 400, f"this server does not answer to the host name {host or '(none)'!r}"
        origin = headers.get("origin")
        if origin is not None and (origin == "null" or _hostname(urlsplit(origin).netloc) not in self.hosts):
            return 403, "requests from other sites are refused"
        if headers.get("sec-fetch-site") == "cross-site":
            return 403, "requests from other sites are refused"
        if self.token is not None:
            given = headers.get(HEADER) or _query_token(scope) or _cookie_token(headers)
            if not given or not hmac.compare_digest(given, self.token):
                return 401, "this server needs its token: open the address it printed, with ?token=..."
        return None


def _hostname(netloc: str) -> str:
    """The host name of a Host header or an origin's network location, without its port, lower case."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[: netloc.find("]") + 1]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


def _cookie_token(headers: dict[str, str]) -> str | None:
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is no token
        return None
    return cookie[COOKIE].value if COOKIE in cookie else None


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
