"""The web server: the API the page uses, over the job store and the worker process.

:class:`WebServer` holds the data folder, the job store (the server adds, cancels and deletes jobs; the worker
claims and finishes them: SQLite in WAL mode takes both writers), the worker process and the :class:`Hub` of
live events.  :func:`create_app` builds the FastAPI application around it: the page, the form's description,
jobs (start, list, show, cancel, delete), pictures (current, result, content, blend), the trace, and the event
stream (server-sent events).  A job paints a photo (``kind=stylize``) or colours a sketch (``kind=colorize``, its
content the line drawing, colorize's own settings beside the RunConfig fields).  The worker starts and stops with
the application (its lifespan), so a test's ``TestClient`` and ``painterly serve`` run the same thing.  A worker
that dies while the server runs (killed, out of memory) is started again after a pause that doubles with each death
in a row; the job it was running continues from its last periodic checkpoint (a sketch's colouring starts again),
and a job running at :data:`WORKER_DEATHS_PER_JOB` deaths is failed instead, so one job that kills the worker cannot
stall the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import multiprocessing
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from PIL import Image

from painterly.batch.grid import JOB_KINDS, JobSpec, job_kind
from painterly.batch.results import IMAGE_NAME
from painterly.batch.runner import trace_path
from painterly.batch.store import JobRow, JobState, JobStore
from painterly.errors import ImageError, OptionError, OutputError, PainterlyError
from painterly.io.images import load_image
from painterly.web.data import EXAMPLES, MAX_STYLES, MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, DataFolder, check_key
from painterly.web.form import cli_command, colorize_form, colorize_from_form, config_from_form, form_fields
from painterly.web.hub import Hub
from painterly.web.security import COOKIE, RequestGuard
from painterly.web.worker import worker_main

__all__ = [
    "DEFAULT_QUOTA_BYTES",
    "WORKER_DEATHS_PER_JOB",
    "WORKER_RESTART_DELAY",
    "ServerSettings",
    "WebServer",
    "create_app",
    "is_loopback",
]

#: The data folder's default quota: 5 GiB (uploads, results and running jobs' checkpoints together).
DEFAULT_QUOTA_BYTES = 5 * 2**30
#: Most jobs waiting at once: a page (or a script) cannot fill the disk with queued jobs' uploads.
MAX_WAITING = 200
#: How long one event stream lasts before the page reconnects (with Last-Event-ID, missing nothing).
STREAM_SECONDS = 300.0
#: How often an event stream looks for new events (the delay a step may wait before it is sent).
STREAM_POLL = 0.05
#: The page's name for each store state ("pending" is "waiting" to a person watching a queue).
SHOWN_STATE = {"pending": "waiting"}
#: Seconds before a worker that died is started again; doubled for each death in a row, up to a minute.
WORKER_RESTART_DELAY = 1.0
#: A job that was running when the worker died this many times is failed, not tried again: it is what kills it.
WORKER_DEATHS_PER_JOB = 2


@dataclass
class ServerSettings:
    """How one server runs (the options of ``painterly serve``)."""

    data: Path
    host: str = "127.0.0.1"
    port: int = 8765
    quota_bytes: int = DEFAULT_QUOTA_BYTES
    checkpoint_every: int = 100
    #: settings the server lays over every job's (``painterly serve --weights FILE``), never offered by the form
    fixed: dict[str, Any] = field(default_factory=dict)
    #: the token; None: made at start when the server listens beyond loopback, else not required
    token: str | None = None
    #: host names the server answers to besides loopback and its own address
    allowed_hosts: tuple[str, ...] = ()


LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


class WebServer:
    """The server's state: data folder, job store, worker process, live events (see the module)."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.data = DataFolder(settings.data, quota_bytes=settings.quota_bytes)
        self.store = JobStore.open(self.data.store_path, any_thread=True)
        self.hub = Hub()
        if settings.token is None and not is_loopback(settings.host):
            settings.token = secrets.token_urlsafe(24)
        self.lock = threading.Lock()  # the store's connection is this process's; requests run in threads
        self.worker: multiprocessing.process.BaseProcess | None = None
        self._events: Queue[dict[str, Any]] | None = None
        self._commands: Queue[tuple[str, str]] | None = None
        self._pump: threading.Thread | None = None
        self._supervising = threading.Lock()  # one of start, restart and stop at a time
        self._stopping = threading.Event()  # set by stop_worker: a worker that ends now is not started again
        self._deaths_in_row = 0
        self._deaths: dict[str, int] = {}  # job key -> how often the worker died while running it

    # --- the worker ------------------------------------------------------------------------------------------

    def start_worker(self) -> None:
        with self._supervising:
            self._stopping.clear()
            self._start_worker()

    def _start_worker(self) -> None:
        """A new worker process with new queues (a killed process may have died holding a queue's lock)."""
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or torch state inherited
        self._events, self._commands = context.Queue(), context.Queue()
        self.worker = context.Process(
            target=worker_main, name="painterly-web-worker", daemon=True,
            args=(str(self.data.root), self.settings.quota_bytes, self.settings.checkpoint_every, self._events,
                  self._commands),
        )  # fmt: skip
        self.worker.start()
        self._pump = threading.Thread(target=self._read_events, name="painterly-web-events", daemon=True)
        self._pump.start()

    def _read_events(self) -> None:
        """The pump: the worker's events to the hub until the worker ends; then, unless it was asked to stop, the
        worker is started again (see the module)."""
        events, worker = self._events, self.worker
        assert events is not None and worker is not None
        while True:
            try:
                event = events.get(timeout=0.5)
            except Exception:  # queue.Empty, or the queue closed
                if worker.is_alive():
                    continue
                if self._stopping.is_set() or worker.exitcode == 0:
                    if self.hub.worker_state not in ("stopped", "gone"):
                        self.hub.publish({"type": "worker", "state": "gone"})
                    return
                self._after_death(worker.exitcode)
                return
            if event.get("type") == "state" and event.get("state") == "done":
                self._deaths_in_row = 0  # a worker that finishes jobs is healthy again
            self.hub.publish(event)

    def _after_death(self, exitcode: int | None) -> None:
        """The worker died on its own: the job it ran continues (or fails, at its second death), and a new worker
        starts after a pause, unless the server stops meanwhile."""
        how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
        with self.lock:
            for row in [row for row in self.store.rows() if row.state == "running"]:
                key = row.key
                deaths = self._deaths[key] = self._deaths.get(key, 0) + 1
                state: JobState
                if deaths >= WORKER_DEATHS_PER_JOB:
                    state = "failed"
                    reason = f"the worker process died {deaths} times while running it (last: {how}); not tried again"
                else:
                    state, reason = "interrupted", f"the worker process died ({how}); {row.spec.after_a_stop}"
                self.store.set_state_if(key, ("running",), state, reason)
                self.hub.publish({"type": "state", "key": key, "state": state, "reason": reason})
        delay = min(60.0, WORKER_RESTART_DELAY * 2**self._deaths_in_row)
        self._deaths_in_row += 1
        self.hub.publish({"type": "worker", "state": "restarting", "reason": f"it died ({how}); again in {delay:g} s"})
        if self._stopping.wait(delay):
            return
        with self._supervising:
            if not self._stopping.is_set():
                self._start_worker()

    def stop_worker(self, timeout: float = 120.0) -> None:
        """Ask the worker to stop (the running job writes its checkpoint, as interrupted) and wait for it."""
        self._stopping.set()
        with self._supervising:
            self._stop_worker(timeout)

    def _stop_worker(self, timeout: float) -> None:
        if self.worker is None or self._commands is None:
            return
        self._commands.put(("stop", ""))
        self.worker.join(timeout)
        if self.worker.is_alive():
            self.worker.terminate()
            self.worker.join(5)
        if self._pump is not None:
            self._pump.join(2)

    def cancel(self, key: str) -> str:
        """Cancel a job: a waiting one at once, the running one between two steps; returns its state."""
        with self.lock:
            row = self._row(key)
            if row.state in ("pending", "interrupted"):
                if self.store.set_state_if(key, ("pending", "interrupted"), "cancelled", "cancelled before it ran"):
                    self.hub.publish({"type": "state", "key": key, "state": "cancelled"})
                    return "cancelled"
            elif row.state != "running":
                return row.state
        if self._commands is not None:
            self._commands.put(("cancel", key))
        return "running"

    # --- jobs ------------------------------------------------------------------------------------------------

    def _row(self, key: str) -> JobRow:
        row = self.store.get(check_key(key))
        if row is None:
            raise OutputError(f"no job {key!r}")
        return row

    def row(self, key: str) -> JobRow:
        with self.lock:
            return self._row(key)

    def add(self, spec: JobSpec) -> str:
        with self.lock:
            waiting = self.store.counts()["pending"]
            if waiting >= MAX_WAITING:
                raise OutputError(f"{waiting} jobs are waiting already; wait for some to finish")
            key = secrets.token_hex(8)
            self.store.add([(key, spec)])
        self.hub.publish({"type": "state", "key": key, "state": "waiting"})
        return key

    def delete(self, key: str) -> None:
        with self.lock:
            row = self._row(key)
            if row.state == "running":
                raise OptionError("the job is running; cancel it first")
            self.store.delete(key)
        self.data.remove_job_files(key)
        self.hub.forget(key)
        self.hub.publish({"type": "deleted", "key": key})

    def describe(self, row: JobRow) -> dict[str, Any]:
        """A job as the page lists it."""
        result = self.data.result(row.key) / IMAGE_NAME
        return {
            "key": row.key, "kind": row.spec.kind, "state": SHOWN_STATE.get(row.state, row.state),
            "reason": row.reason, "label": dict(row.spec.label), "attempts": row.attempts,
            "inputs": {"content": self.ref(row.spec.content), "styles": [self.ref(s) for s in row.spec.styles]},
            "settings": {k: v for k, v in row.spec.config.to_dict().items() if k not in self.settings.fixed},
            "options": dict(row.spec.options),
            "progress": self.hub.latest.get(row.key), "has_result": result.exists(),
            "has_picture": result.exists() or self.data.last_image(row.key).exists()
            or self.data.preview(row.key).exists(),
        }  # fmt: skip

    def ref(self, path: str) -> str:
        """An input file as the page names it: ``upload:<sha256>.<ext>`` or ``example:<name>``."""
        file = Path(path)
        if file.parent == self.data.root / "uploads":
            return f"upload:{file.name}"
        return f"example:{file.stem}"

    def input_path(self, ref: str, role: str) -> Path:
        """A page's reference to an earlier upload or a bundled example, as a path inside the data folder."""
        kind, _, name = ref.partition(":")
        if kind == "upload":
            path = self.data.upload(name)
            if not path.exists():
                raise ImageError(f"{role}: the earlier upload {name} is gone; upload it again")
            return path
        if kind == "example":
            return self.data.example(name)
        raise ImageError(f"{role}: {ref!r} is neither an upload nor an example")


def _error(status: int, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=status)


def _page() -> str:
    return resources.files("painterly.web").joinpath("static/index.html").read_text(encoding="utf-8")


def create_app(server: WebServer, *, start_worker: bool = True) -> Any:
    """The application: FastAPI routes wrapped in the :class:`~painterly.web.security.RequestGuard`."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start_worker:
            server.start_worker()
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, server.stop_worker)
            server.store.close()

    app = FastAPI(title="painterly", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(PainterlyError)
    async def painterly_error(request: Request, error: PainterlyError) -> JSONResponse:
        if isinstance(error, OutputError) and str(error).startswith("no "):
            return _error(404, error)
        return _error(400, error)

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        response = HTMLResponse(_page(), headers={"Cache-Control": "no-store"})
        token = request.query_params.get("token")
        if server.settings.token is not None and token == server.settings.token:
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.get("/api/form")
    def form() -> dict[str, Any]:
        return {
            "fields": form_fields(), "colorize": colorize_form(), "kinds": list(JOB_KINDS), "examples": EXAMPLES,
            "fixed": sorted(server.settings.fixed),
            "limits": {"upload_bytes": MAX_UPLOAD_BYTES, "upload_pixels": MAX_UPLOAD_PIXELS,
                       "styles": MAX_STYLES, "quota_bytes": server.settings.quota_bytes},
        }  # fmt: skip

    @app.get("/api/jobs")
    def jobs() -> dict[str, Any]:
        with server.lock:
            rows = list(server.store.rows())
        return {"jobs": [server.describe(row) for row in rows], "worker": server.hub.worker_state,
                "seq": server.hub.seq}  # fmt: skip

    @app.post("/api/jobs", status_code=201)
    async def start(request: Request) -> dict[str, Any]:
        form = await request.form(max_files=MAX_STYLES + 1, max_fields=64)
        try:
            settings = json.loads(str(form.get("settings") or "{}"))
        except ValueError:
            raise OptionError("settings: not a JSON object") from None
        if not isinstance(settings, dict):
            raise OptionError("settings: not a JSON object")
        kind = job_kind(str(form.get("kind") or "stylize"))
        values = {str(k): str(v) for k, v in settings.items()}
        if kind == "colorize":
            config, options = colorize_from_form(values, server.settings.fixed)
        else:
            config, options = config_from_form(values, server.settings.fixed), {}
        content_role = "sketch" if kind == "colorize" else "content"
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, server.data.check_quota)  # a job needs room for its result and checkpoints

        async def inputs(role: str, files_field: str, refs_field: str) -> list[tuple[Path, str]]:
            found: list[tuple[Path, str]] = []
            for item in form.getlist(files_field):
                if isinstance(item, str):
                    continue
                data = await item.read(MAX_UPLOAD_BYTES + 1)
                name = Path(item.filename or "upload").name
                path = await loop.run_in_executor(None, server.data.save_upload, data, name, role)
                found.append((path, name))
            for ref in form.getlist(refs_field):
                if isinstance(ref, str) and ref:
                    path = server.input_path(ref, role)
                    found.append((path, path.stem if ref.startswith("example:") else ref.partition(":")[2][:8]))
            return found

        contents = await inputs(content_role, "content", "content_ref")
        styles = await inputs("style", "styles", "style_refs")
        if len(contents) != 1:
            raise ImageError(f"give one {content_role} image (an upload or an example), not {len(contents)}")
        if not styles or len(styles) > MAX_STYLES:
            raise ImageError(f"give 1 to {MAX_STYLES} style images, not {len(styles)}")
        config.check_inputs(len(styles))
        # a re-run refers to earlier uploads by digest; the page sends their names (the earlier job's label) along
        names = [name for name in str(form.get("style_names") or "").split(" + ") if name]
        style_names = names if len(names) == len(styles) and not form.getlist("styles") else [n for _, n in styles]
        content_name = form.get("content_name") if not form.getlist("content") else None
        labels = {"content": Path(str(content_name or contents[0][1])).name,
                  "style": " + ".join(Path(name).name for name in style_names)}  # fmt: skip
        spec = JobSpec(str(contents[0][0]), tuple(str(path) for path, _ in styles), config, labels, kind=kind,
                       options=options)  # fmt: skip
        return {"key": server.add(spec)}

    @app.get("/api/jobs/{key}")
    def job(key: str) -> dict[str, Any]:
        row = server.row(key)
        described = server.describe(row)
        folder = server.data.result(key)
        trace = folder / "trace.jsonl" if (folder / "trace.jsonl").exists() else trace_path(server.data.work, key)
        described["trace"] = _read_trace(trace)
        saved = folder / "settings.json"
        described["result"] = json.loads(saved.read_text()) if saved.exists() else None
        shown = str(described["label"].get("style", "")).split(" + ")
        shown = shown if len(shown) == len(row.spec.styles) else [""] * len(row.spec.styles)
        described["command"] = cli_command(
            _file_name(str(described["label"].get("content", "")), row.spec.content),
            [_file_name(name, path) for name, path in zip(shown, row.spec.styles, strict=True)],
            described["result"]["settings"] if described["result"] else {**row.spec.config.to_dict(),
                                                                         **row.spec.options},
            kind=row.spec.kind,
        )  # fmt: skip
        return described

    @app.post("/api/jobs/{key}/cancel")
    def cancel(key: str) -> dict[str, Any]:
        return {"key": key, "state": SHOWN_STATE.get(state := server.cancel(key), state)}

    @app.delete("/api/jobs/{key}")
    def delete(key: str) -> dict[str, Any]:
        server.delete(key)
        return {"key": key, "deleted": True}

    @app.get("/api/jobs/{key}/picture")
    def picture(key: str) -> Response:
        """The job's picture as it stands: the result, a stopped job's last picture, or the running preview."""
        server.row(key)
        for path in (server.data.result(key) / IMAGE_NAME, server.data.last_image(key), server.data.preview(key)):
            if path.exists():
                return FileResponse(path, headers={"Cache-Control": "no-store"})
        raise OutputError(f"no picture of job {key} yet")

    @app.get("/api/jobs/{key}/download")
    def download(key: str) -> Response:
        server.row(key)
        path = server.data.result(key) / IMAGE_NAME
        if not path.exists():
            path = server.data.last_image(key)
        if not path.exists():
            raise OutputError(f"no picture of job {key} to download yet")
        return FileResponse(path, media_type="image/png", filename=f"painterly-{key}.png")

    @app.get("/api/jobs/{key}/trace")
    def trace(key: str) -> Response:
        server.row(key)
        path = server.data.result(key) / "trace.jsonl"
        if not path.exists():
            path = trace_path(server.data.work, key)
        if not path.exists():
            raise OutputError(f"no trace of job {key} yet")
        return FileResponse(path, media_type="application/x-ndjson", filename=f"painterly-{key}.trace.jsonl")

    @app.get("/api/jobs/{key}/content")
    def content(key: str) -> Response:
        """The job's content picture (a sketch's colouring: the sketch) as the run read it (sRGB, PNG), for the
        before/after slider."""
        row = server.row(key)
        return _png(load_image(row.spec.content, max_pixels=MAX_UPLOAD_PIXELS, role="content").rgb)

    @app.get("/api/jobs/{key}/blend")
    def blend(key: str, strength: float = 1.0) -> Response:
        """The result blended with the content: ``strength`` 1 is the result, 0 the content (download)."""
        row = server.row(key)
        path = server.data.result(key) / IMAGE_NAME
        if not path.exists():
            raise OutputError(f"job {key} has no result to blend yet")
        if not 0.0 <= strength <= 1.0:
            raise OptionError(f"strength must be between 0 and 1, not {strength}")
        with Image.open(path) as opened:
            result = opened.convert("RGB")
        photo = load_image(row.spec.content, max_pixels=MAX_UPLOAD_PIXELS, role="content").rgb
        mixed = Image.blend(photo.resize(result.size, Image.Resampling.LANCZOS), result, strength)
        return _png(mixed, filename=f"painterly-{key}-strength-{round(strength * 100)}.png")

    @app.get("/api/examples/{name}")
    def example(name: str) -> Response:
        return FileResponse(server.data.example(name), headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/events", response_class=EventSourceResponse)
    async def events(request: Request, seconds: float = STREAM_SECONDS) -> AsyncIterator[ServerSentEvent]:
        """Server-sent events: every worker event, numbered; ``Last-Event-ID`` resumes after the one named."""
        last = request.headers.get("last-event-id", "")
        seq = int(last) if last.isdigit() else server.hub.seq
        yield ServerSentEvent(event="hello", data={"seq": seq, "worker": server.hub.worker_state}, retry=1000)
        deadline, quiet = time.monotonic() + min(seconds, STREAM_SECONDS), time.monotonic()
        while time.monotonic() < deadline and not await request.is_disconnected():
            found, dropped = server.hub.since(seq)
            if dropped:
                yield ServerSentEvent(event="resync", data={"seq": server.hub.seq})
            for number, event in found:
                yield ServerSentEvent(event=str(event.get("type", "message")), data=event, id=str(number))
                seq = number
            if found:
                quiet = time.monotonic()
            elif time.monotonic() - quiet > 15:
                yield ServerSentEvent(comment="keep-alive")
                quiet = time.monotonic()
            await asyncio.sleep(STREAM_POLL)

    hosts = {*LOOPBACK, server.settings.host, *server.settings.allowed_hosts}
    if server.settings.host in ("0.0.0.0", "::"):
        import socket

        hosts |= {socket.gethostname(), socket.getfqdn()}
    hosts = {f"[{h}]" if ":" in h and not h.startswith("[") else h for h in hosts}
    max_body = (MAX_STYLES + 1) * MAX_UPLOAD_BYTES + 2**20
    return RequestGuard(app, hosts=hosts, token=server.settings.token, max_body=max_body)


def _read_trace(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows


def _file_name(shown: str, path: str) -> str:
    """An input as the reproducing command names it: the user's file name where known, else the server's."""
    return shown if shown and "." in shown else Path(path).name


def _png(image: Image.Image, filename: str | None = None) -> Response:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if filename else {}
    return Response(buffer.getvalue(), media_type="image/png", headers=headers)
