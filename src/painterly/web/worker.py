"""The worker: one process that owns the network and runs the web queue's jobs one at a time on a warm session.

It takes the next job from the job store (:meth:`~painterly.batch.store.JobStore.claim_next`: an interrupted job
first, then the waiting ones in the order they came) and runs it with the batch's runner, which writes a
checkpoint every ``checkpoint_every`` steps and continues from one when it finds it.  It reports to the server
through a queue of small dicts (a step's numbers, a state change) and writes the current picture as a JPEG at
most :data:`PREVIEW_INTERVAL` apart, so the page fetches images by URL and no frame travels as data.

The server talks to it through a command queue: ``("cancel", key)`` stops that job between two steps for good
(its last picture kept), ``("stop", "")`` stops the running job with its checkpoint, as ``interrupted``, and ends
the worker: the next server continues that job bit for bit.  If the worker is killed, the next one finds the job
``running``, marks it interrupted (:meth:`JobStore.open`) and continues it from its last periodic checkpoint.  A
sketch's colouring runs the same way (the runner calls colorize on the worker's session) but keeps no checkpoint: it
is interrupted the same way and starts again from the beginning, as its state's reason says.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from typing import Any

from painterly.batch.executors import failure_reason
from painterly.batch.results import write_result
from painterly.batch.runner import checkpoint_path, run_job
from painterly.batch.store import JobRow, JobStore
from painterly.events import Event, Failed, RunStarted, StageStarted, Stopped
from painterly.io.atomic import atomic_write_with
from painterly.io.images import save_image
from painterly.records import StepRecord
from painterly.run import Interrupted
from painterly.session import Session
from painterly.web.data import DataFolder

__all__ = ["PREVIEW_INTERVAL", "Commands", "worker_main"]

log = logging.getLogger("painterly")

#: Least time between two preview pictures written (the page shows at most this many a second: 4).
PREVIEW_INTERVAL = 0.25
#: How often an idle worker looks for a new job.
IDLE_POLL = 0.1


class Commands:
    """The worker's side of the command queue: which jobs were cancelled, whether to stop.

    A server that dies without a word (``kill -9``) counts as a stop: the worker would otherwise live on as an
    orphan beside the next server's worker, two processes running the same job."""

    def __init__(self, source: Queue[tuple[str, str]]) -> None:
        self.source = source
        self.cancelled: set[str] = set()
        self.stop = False
        self.parent = multiprocessing.parent_process()

    def read(self, wait: float = 0.0) -> None:
        """Take every command waiting (waiting up to ``wait`` seconds for the first)."""
        if self.parent is not None and not self.parent.is_alive():
            self.stop = True
            return
        try:
            command = self.source.get(timeout=wait) if wait > 0 else self.source.get_nowait()
            while True:
                kind, key = command
                if kind == "cancel":
                    self.cancelled.add(key)
                elif kind == "stop":
                    self.stop = True
                command = self.source.get_nowait()
        except (queue.Empty, EOFError, OSError):
            pass


class _Reporter:
    """The job's event sink: each step's numbers to the server, the current picture to the preview file."""

    def __init__(self, key: str, data: DataFolder, send: Callable[[dict[str, Any]], None]) -> None:
        self.key, self.data, self.send = key, data, send
        self.written = 0.0
        self.previews = 0
        self.resumed_at_step = 0
        self.last_image: Any = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.resumed_at_step = event.resumed_at_step
            self.send({"type": "started", "key": self.key, "total": event.total_steps,
                       "resumed_at_step": event.resumed_at_step, "precision": event.precision})  # fmt: skip
        elif isinstance(event, StageStarted):
            self.written = 0.0  # the first step of a stage shows its new size at once
        elif isinstance(event, StepRecord):
            now = time.monotonic()
            last = event.step == event.total_steps
            if now - self.written >= PREVIEW_INTERVAL or last:
                picture = event.to_pil()
                atomic_write_with(self.data.preview(self.key), lambda handle: picture.save(handle, "JPEG", quality=90))
                self.written, self.previews = now, self.previews + 1
            self.send({
                "type": "step", "key": self.key, "step": event.step, "total": event.total_steps,
                "stage": event.stage, "stages": event.stages, "size": list(event.size),
                "losses": {name: float(value) for name, value in event.losses.items()},
                "elapsed": round(event.elapsed, 4), "resumed_at_step": self.resumed_at_step,
                "preview": self.previews, "time": time.time(),
            })  # fmt: skip
        elif isinstance(event, (Stopped, Failed)) and event.image is not None:
            self.last_image = event.image


def _run_one(row: JobRow, store: JobStore, data: DataFolder, session: Session, commands: Commands,
             send: Callable[[dict[str, Any]], None], checkpoint_every: int) -> bool:  # fmt: skip
    """Run one claimed job to its end; returns False when the worker was asked to stop."""
    key = row.key
    reporter = _Reporter(key, data, send)

    def should_stop() -> bool:
        commands.read()
        return commands.stop or key in commands.cancelled

    try:
        result = run_job(session, key, row.spec, data.work, checkpoint_every=checkpoint_every,
                         should_stop=should_stop, sinks=(reporter,))  # fmt: skip
    except Interrupted:
        if key in commands.cancelled:
            _keep_last(reporter, data, key)
            checkpoint_path(data.work, key).unlink(missing_ok=True)
            store.cancelled(key, "cancelled; its last picture is kept")
            send({"type": "state", "key": key, "state": "cancelled"})
            return not commands.stop
        store.interrupted(key, f"the server stopped; {row.spec.after_a_stop}")
        send({"type": "state", "key": key, "state": "interrupted"})
        return False
    except Exception as error:  # one job's failure is its own; the queue goes on
        _keep_last(reporter, data, key)
        store.failed(key, failure_reason(error))
        send({"type": "state", "key": key, "state": "failed", "reason": failure_reason(error)})
        return not commands.stop
    try:
        write_result(data.root, row.spec, result)
    except OSError as error:
        store.failed(key, f"its result could not be written: {error}")
        send({"type": "state", "key": key, "state": "failed"})
        return True
    store.finished(key)
    data.preview(key).unlink(missing_ok=True)
    send({"type": "state", "key": key, "state": "done"})
    return True


def _keep_last(reporter: _Reporter, data: DataFolder, key: str) -> None:
    if reporter.last_image is not None:
        save_image(reporter.last_image, data.last_image(key), overwrite=True)


def worker_main(root: str, quota_bytes: int, checkpoint_every: int, events: Queue[dict[str, Any]],
                commands_queue: Queue[tuple[str, str]]) -> None:  # fmt: skip
    """The worker process's body (see the module): runs until told to stop."""
    logging.basicConfig(level=logging.WARNING, format="painterly worker: %(message)s")
    data = DataFolder(root, quota_bytes=quota_bytes)
    commands = Commands(commands_queue)
    session = Session()
    with JobStore.open(data.store_path) as store:
        events.put({"type": "worker", "state": "ready"})
        while not commands.stop:
            row = store.claim_next()
            if row is None:
                commands.read(wait=IDLE_POLL)
                continue
            if row.key in commands.cancelled:  # cancelled while it waited for the worker
                store.cancelled(row.key)
                events.put({"type": "state", "key": row.key, "state": "cancelled"})
                continue
            events.put({"type": "state", "key": row.key, "state": "running"})
            if not _run_one(row, store, data, session, commands, events.put, checkpoint_every):
                break
    session.close()
    events.put({"type": "worker", "state": "stopped"})
