"""The driver: one batch from its jobs to its results, resumable, honest about failures.

:func:`run_batch` keys every job (:mod:`painterly.batch.keys`), records them in the batch folder's job store, and
decides what to run from what the store says:

- ``done`` with its result folder present: skipped;
- ``failed`` fewer than ``max_attempts`` times: run again; as many times: skipped, with its last reason;
- ``interrupted``: run again, continuing from its checkpoint; ``pending`` (or done but its folder deleted): run.

It hands those to an executor, and as each outcome streams back it writes the result folder (atomic), then marks
the job done (in that order: a job is done only once its folder is whole), or failed with its one-sentence reason,
or interrupted.  One bar shows the whole batch.  At the end it writes the contact sheet and ``summary.json`` and
returns the :class:`BatchSummary`: done, failed and skipped, with reasons.

The batch folder holds ``jobs.sqlite`` (the store), ``jobs/<key>/`` (results), ``work/`` (checkpoints and traces of
unfinished jobs), ``contact_sheet.png`` and ``summary.json``.  One driver per folder at a time (a lock file).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from painterly.batch.contact import Cell, write_contact_sheet
from painterly.batch.executors import Executor, InlineExecutor, Outcome
from painterly.batch.grid import JobSpec
from painterly.batch.keys import DigestCache, job_key
from painterly.batch.results import IMAGE_NAME, result_folder, write_result
from painterly.batch.store import JobStore
from painterly.errors import OutputError
from painterly.events import Event, StopToken
from painterly.io.atomic import atomic_write_bytes
from painterly.records import StepRecord

__all__ = ["DEFAULT_MAX_ATTEMPTS", "BatchSummary", "JobReport", "run_batch"]

#: A job that failed this many times is skipped (``--max-attempts``); an input that is bad stays bad.
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class JobReport:
    """One job in the summary."""

    key: str
    label: dict[str, str]
    reason: str | None = None

    def name(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.label.items()) or self.key


@dataclass
class BatchSummary:
    """What a run of the batch did: done now, done before (skipped), failed, skipped, interrupted."""

    folder: Path
    done: list[JobReport] = field(default_factory=list)
    failed: list[JobReport] = field(default_factory=list)
    skipped: list[JobReport] = field(default_factory=list)
    interrupted: list[JobReport] = field(default_factory=list)
    contact_sheet: Path | None = None

    @property
    def ok(self) -> bool:
        """No job failed or was interrupted in this run (skipped jobs that failed before count as failed)."""
        return not self.failed and not self.interrupted and all(s.reason == "done before" for s in self.skipped)

    def to_dict(self) -> dict[str, Any]:
        def reports(items: list[JobReport]) -> list[dict[str, Any]]:
            return [{"key": r.key, "label": r.label, **({"reason": r.reason} if r.reason else {})} for r in items]

        return {"done": reports(self.done), "failed": reports(self.failed), "skipped": reports(self.skipped),
                "interrupted": reports(self.interrupted),
                "contact_sheet": None if self.contact_sheet is None else str(self.contact_sheet)}  # fmt: skip

    def text(self) -> str:
        """The summary for people: counts, then each failed, interrupted and skipped job with its reason."""
        counts = f"{len(self.done)} done, {len(self.failed)} failed, {len(self.skipped)} skipped"
        lines = [counts + (f", {len(self.interrupted)} interrupted" if self.interrupted else "")]
        for title, items in (("failed", self.failed), ("interrupted", self.interrupted), ("skipped", self.skipped)):
            for report in items:
                lines.append(f"  {title}: {report.name()}: {report.reason}")
        return "\n".join(lines)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "batch.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"batch folder {folder} is in use by another painterly batch; wait for it") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _key(job: JobSpec, cache: DigestCache) -> tuple[str, str | None]:
    """The job's key, or a stand-in key and the one-sentence reason when an input cannot be read."""
    try:
        return job_key(job, cache), None
    except OSError as error:
        stand_in = hashlib.sha256(json.dumps(job.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
        return stand_in, f"{error.filename or 'an input'}: {error.strerror or error}"


class _Bar:
    """One bar over the whole batch, in jobs; the running job's step shows beside it when it runs here."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="job", desc="batch", disable=not enabled, dynamic_ncols=True)

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepRecord):
            self.bar.set_postfix_str(f"job step {event.step}/{event.total_steps}", refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def run_batch(
    jobs: Sequence[JobSpec],
    folder: str | os.PathLike[str],
    *,
    executor: Executor | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    progress: bool = False,
    should_stop: StopToken | None = None,
    contact_sheet: bool = True,
) -> BatchSummary:
    """Run ``jobs`` into ``folder`` (see the module); ``executor`` defaults to an :class:`InlineExecutor`.
    Stopping (``should_stop``) ends the running jobs between two steps with their checkpoints written."""
    folder = Path(folder).resolve()
    stop = should_stop if should_stop is not None else StopToken()
    summary = BatchSummary(folder)
    with _folder_lock(folder), JobStore.open(folder / "jobs.sqlite") as store:
        cache: DigestCache = {}
        keyed: dict[str, JobSpec] = {}
        unreadable: dict[str, str] = {}
        for job in jobs:
            key, problem = _key(job, cache)
            keyed.setdefault(key, job)
            if problem is not None:
                unreadable[key] = problem
        store.add(list(keyed.items()))
        to_run: list[tuple[str, JobSpec]] = []
        for row in store.rows(keyed):
            report = JobReport(row.key, dict(row.spec.label))
            if row.key in unreadable:
                store.started(row.key)
                store.failed(row.key, unreadable[row.key])
                summary.failed.append(JobReport(row.key, report.label, unreadable[row.key]))
            elif row.state == "done" and (result_folder(folder, row.key) / IMAGE_NAME).exists():
                summary.skipped.append(JobReport(row.key, report.label, "done before"))
            elif row.state == "failed" and row.attempts >= max_attempts:
                summary.skipped.append(JobReport(row.key, report.label,
                                                 f"failed {row.attempts} times: {row.reason}"))  # fmt: skip
            else:
                to_run.append((row.key, keyed[row.key]))
        bar = _Bar(len(to_run), progress)
        own_executor = executor is None
        if executor is None:
            executor = InlineExecutor(sink=bar)
        elif isinstance(executor, InlineExecutor) and executor.sink is None:
            executor.sink = bar
        try:
            for outcome in executor.run(to_run, folder / "work", on_start=store.started, should_stop=stop):
                _record(outcome, keyed[outcome.key], folder, store, summary)
                bar.bar.update(1)
        except BaseException:
            store.recover()  # whatever still runs is interrupted, its checkpoint kept
            raise
        finally:
            bar.close()
            if own_executor:
                executor.close()
        for key, job in to_run:  # never started because the batch was stopped
            if key not in {r.key for r in (*summary.done, *summary.failed, *summary.interrupted)}:
                summary.interrupted.append(JobReport(key, dict(job.label), "not started: the batch was stopped"))
        if contact_sheet:
            summary.contact_sheet = write_contact_sheet(folder / "contact_sheet.png", _cells(store, keyed, folder))
    atomic_write_bytes(folder / "summary.json", (json.dumps(summary.to_dict(), indent=1) + "\n").encode())
    return summary


def _record(outcome: Outcome, job: JobSpec, folder: Path, store: JobStore, summary: BatchSummary) -> None:
    """Write a finished job's folder, then mark it; or mark it failed or interrupted."""
    label = dict(job.label)
    if outcome.result is not None:
        try:
            write_result(folder, job, outcome.result, outcome.paths)
        except (OSError, OutputError) as error:
            reason = f"its result could not be written: {error}"
            store.failed(outcome.key, reason)
            summary.failed.append(JobReport(outcome.key, label, reason))
            return
        store.finished(outcome.key)
        summary.done.append(JobReport(outcome.key, label))
    elif outcome.interrupted:
        store.interrupted(outcome.key, f"stopped on request; {job.after_a_stop}")
        summary.interrupted.append(JobReport(outcome.key, label, f"stopped; {job.after_a_stop}"))
    else:
        reason = outcome.failure or "failed"
        store.failed(outcome.key, reason)
        summary.failed.append(JobReport(outcome.key, label, reason))


def _cells(store: JobStore, keyed: dict[str, JobSpec], folder: Path) -> list[Cell]:
    cells: list[Cell] = []
    for row in store.rows(keyed):
        picture = result_folder(folder, row.key) / IMAGE_NAME
        done = row.state == "done" and picture.exists()
        cells.append((dict(row.spec.label), picture if done else None, row.reason if row.state == "failed" else None))
    return cells
