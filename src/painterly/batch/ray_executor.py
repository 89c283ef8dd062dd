"""The Ray executor: a batch's jobs over a Ray cluster (optional extra: ``pip install 'painterly[ray]'``).

- **One actor per device**, each holding one warm :class:`~painterly.session.Session` for the whole batch: a GPU
  each where the cluster has GPUs, else one per machine with that machine's CPUs (``torch`` uses them all; two
  actors on one CPU would only share its cores).  ``workers`` and ``cpus_per_worker`` override the choice.
- **Inputs travel once**: each content and style file is read by the driver and put in Ray's object store once,
  however many jobs use it; a node writes it to a local cache named by its sha256 the first time one of its actors
  needs it, so a worker needs no shared filesystem and every later job there reads the local copy.
- **Results stream back** as each job ends (``ray.wait``) and the driver writes them (results folder, job store):
  workers never write results, so the job store has one writer and its truth does not depend on a remote disk.
- **A lost worker's job is retried elsewhere**: when an actor dies (its process or machine lost), its job goes back
  to the front of the queue for another actor, and a fresh actor replaces the dead one; a job whose worker is lost
  ``max_lost`` times fails with that reason.  A job that fails by itself (a bad input) is not retried here: it
  fails the same way anywhere; the next run of the batch retries it up to the driver's limit.
- **Stopping**: when the driver's stop token is set (Ctrl-C), each busy actor is asked to stop between two steps;
  its job writes its checkpoint on that worker's disk and comes back interrupted.  The checkpoints live in the
  batch's work folder when the worker can write there (one machine, or a shared filesystem), else in the node's
  temporary folder; an interrupted job continues from its checkpoint when the next run gives it to an actor that
  can read that file, and starts afresh otherwise (docs/batch.md).

Ray is imported when an executor is made, never at import time: ``painterly.batch`` works without it.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from painterly.batch.executors import DEFAULT_CHECKPOINT_EVERY, Outcome, Task, failure_reason
from painterly.batch.grid import JobSpec
from painterly.batch.runner import run_job
from painterly.errors import MissingExtraError
from painterly.events import StopToken
from painterly.run import Interrupted

__all__ = ["INSTALL_RAY", "BatchWorker", "RayExecutor", "import_ray"]

INSTALL_RAY = "pip install 'painterly[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or a one-sentence :class:`MissingExtraError` saying how to install it."""
    try:
        import ray
    except ModuleNotFoundError:
        raise MissingExtraError(f"--executor ray needs Ray, which is not installed: {INSTALL_RAY}") from None
    return ray


class BatchWorker:
    """What each Ray actor is: one session, a local cache of the inputs, and a stop token (see the module).

    The actor runs with two threads (``max_concurrency=2``), so :meth:`stop` is heard while :meth:`run` works.
    """

    def __init__(self, device: str, threads: int, work: str, checkpoint_every: int) -> None:
        import torch

        from painterly.session import Session

        torch.set_num_threads(max(1, threads))
        self.session = Session(device)
        self.checkpoint_every = checkpoint_every
        self.stop_token = StopToken()
        self.work = Path(work)
        try:  # the batch's work folder if this node can write there, else this node's own
            self.work.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self.work).close()
        except OSError:
            self.work = Path(tempfile.gettempdir()) / "painterly-batch-work"
        self.inputs = Path(tempfile.gettempdir()) / "painterly-batch-inputs"
        self.inputs.mkdir(parents=True, exist_ok=True)

    def where(self) -> str:
        import socket

        return f"{socket.gethostname()}:{os.getpid()}:{self.session.device}"

    def _local(self, digest: str, suffix: str, ref: Any) -> str:
        path = self.inputs / f"{digest}{suffix}"
        if not path.exists():
            import ray

            from painterly.io.atomic import atomic_write_bytes

            atomic_write_bytes(path, ray.get(ref))
        return str(path)

    def run(self, key: str, job: dict[str, Any], inputs: dict[str, tuple[str, str, Any]]) -> Outcome:
        """Run one job; ``inputs`` maps each input path to its (sha256, suffix, object reference).  Once the
        driver asked this actor to stop, every job it is given stops at once (the request may arrive before the job)."""
        spec = JobSpec.from_dict(job)
        local = {path: self._local(*inputs[path]) for path in (spec.content, *spec.styles)}
        spec = dataclasses.replace(spec, content=local[spec.content], styles=tuple(local[s] for s in spec.styles))
        paths = {copy: original for original, copy in local.items()}
        try:
            result = run_job(self.session, key, spec, self.work, checkpoint_every=self.checkpoint_every,
                             should_stop=self.stop_token)  # fmt: skip
        except Interrupted:
            return Outcome(key, interrupted=True, paths=paths)
        except Exception as error:  # the job's own failure: reported, the actor stays for the next job
            return Outcome(key, failure=failure_reason(error), paths=paths)
        result.worker = self.where()
        return Outcome(key, result=result, paths=paths)

    def stop(self) -> None:
        self.stop_token.request()


def _cause(error: BaseException) -> str:
    """The last line of a Ray error that names an exception (an actor's creation may have raised one), else its
    kind: Ray's messages run to many lines."""
    lines = [line.strip() for line in str(error).splitlines() if "Error" in line and ":" in line]
    return lines[-1][:300] if lines else type(error).__name__


class RayExecutor:
    """Runs a batch's jobs on Ray actors (see the module)."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        cpus_per_worker: int | None = None,
        gpus_per_worker: float | None = None,
        device: str = "auto",
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        max_lost: int = 2,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        """``address``: a cluster to join (``ray://host:10001``, ``auto``), None for one started here (or the one
        this process already joined); the rest as the module says."""
        self.ray = ray = import_ray()
        self.owns_ray = not ray.is_initialized()
        if self.owns_ray:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **(init_options or {}))
        gpus = int(ray.cluster_resources().get("GPU", 0))
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        node_cpus = [int(node.get("Resources", {}).get("CPU", 1)) for node in nodes] or [1]
        if gpus_per_worker is None:
            gpus_per_worker = 1.0 if gpus else 0.0
        if workers is None:
            workers = gpus if gpus_per_worker else len(nodes) or 1
        if cpus_per_worker is None:
            cpus_per_worker = max(1, min(node_cpus) // max(1, gpus // max(1, len(nodes)))) if gpus else min(node_cpus)
        self.workers, self.cpus_per_worker, self.gpus_per_worker = workers, cpus_per_worker, gpus_per_worker
        self.device, self.checkpoint_every, self.max_lost = device, checkpoint_every, max_lost
        self._actor_class = ray.remote(BatchWorker).options(
            num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_concurrency=2
        )
        self.actors: list[Any] = []
        self._inputs: dict[str, tuple[str, str, Any]] = {}
        self.running: dict[str, Any] = {}  #: key -> the actor running it (tests kill one to lose a worker)

    def _new_actor(self, work: Path) -> Any:
        return self._actor_class.remote(self.device, self.cpus_per_worker, str(work), self.checkpoint_every)

    def _put(self, job: JobSpec) -> dict[str, tuple[str, str, Any]]:
        """Each input file in the object store once (the driver reads it; every actor gets the same reference)."""
        for path in (job.content, *job.styles):
            if path not in self._inputs:
                data = Path(path).read_bytes()
                self._inputs[path] = (hashlib.sha256(data).hexdigest(), Path(path).suffix, self.ray.put(data))
        return {path: self._inputs[path] for path in (job.content, *job.styles)}

    def run(
        self, tasks: Sequence[Task], work: Path, *, on_start: Callable[[str], None], should_stop: StopToken
    ) -> Iterator[Outcome]:
        ray = self.ray
        from ray.exceptions import ObjectLostError, RayActorError, WorkerCrashedError

        lost_errors = (RayActorError, WorkerCrashedError, ObjectLostError)
        while len(self.actors) < min(self.workers, max(1, len(tasks))):
            self.actors.append(self._new_actor(work))
        idle = list(self.actors)
        queue = collections.deque(tasks)
        in_flight: dict[Any, tuple[Any, Task]] = {}
        lost: collections.Counter[str] = collections.Counter()
        stop_sent = False
        while queue or in_flight:
            while idle and queue and not should_stop.requested:
                actor, (key, job) = idle.pop(), queue.popleft()
                try:
                    inputs = self._put(job)
                except OSError as error:
                    idle.append(actor)
                    yield Outcome(key, failure=f"input unreadable: {error}")
                    continue
                in_flight[actor.run.remote(key, job.to_dict(), inputs)] = (actor, (key, job))
                self.running[key] = actor
                on_start(key)
            if not in_flight:
                return
            if should_stop.requested and not stop_sent:
                for actor, _ in in_flight.values():
                    actor.stop.remote()
                stop_sent = True
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.25)
            for ref in done:
                actor, (key, job) = in_flight.pop(ref)
                self.running.pop(key, None)
                try:
                    outcome: Outcome = ray.get(ref)
                except lost_errors as error:
                    lost[key] += 1
                    self.actors.remove(actor)
                    replacement = self._new_actor(work)
                    self.actors.append(replacement)
                    idle.append(replacement)
                    if lost[key] > self.max_lost:
                        yield Outcome(key, failure=f"its worker was lost {lost[key]} times ({_cause(error)})")
                    else:
                        queue.appendleft((key, job))  # another actor takes it first
                    continue
                except Exception as error:  # the actor's method itself raised: that job's failure
                    idle.append(actor)
                    yield Outcome(key, failure=failure_reason(error))
                    continue
                idle.append(actor)
                yield outcome

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors.clear()
        if self.owns_ray:
            self.ray.shutdown()
