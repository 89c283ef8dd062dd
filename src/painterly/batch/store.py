"""The job store: one SQLite file (WAL mode) that records every job's state; it is the batch's truth.

Each job is a row: its key, its description (:class:`~painterly.batch.grid.JobSpec` as JSON), its state, how many
times it was started, the reason of its last failure, and when it changed.  The states:

``pending``      known, never started
``running``      started by a driver that has not reported back
``done``         its result folder is complete
``failed``       it raised; ``reason`` is the one-sentence error, ``attempts`` counts the starts
``interrupted``  stopped on request (Ctrl-C) or found ``running`` when a driver opens the store: the driver that
                 started it was killed; it continues from its checkpoint on the next run (a sketch's colouring,
                 which has none, starts again; its reason says so)
``cancelled``    stopped by its user for good (the web page's cancel); never run again, its last picture kept

A batch driver never writes ``cancelled``; a store made before that state existed refuses it (its CHECK constraint),
which only the web queue, with a store of its own, ever writes.

Every change is one short transaction, committed before the driver goes on, so a driver killed at any moment
(``kill -9`` included) leaves the store consistent: at worst a job is still marked running, and the next
:meth:`JobStore.open` turns it into ``interrupted``.  WAL lets a reader (a web page showing the queue, ``sqlite3`` in
another terminal) read while the driver writes.  One driver per batch folder at a time: the driver holds a lock file
(:mod:`painterly.batch.driver`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from painterly.batch.grid import AFTER_A_STOP, JobSpec
from painterly.errors import OutputError

__all__ = ["STATES", "JobRow", "JobState", "JobStore"]

JobState = Literal["pending", "running", "done", "failed", "interrupted", "cancelled"]
#: A batch's states (what :meth:`JobStore.counts` always lists); the web queue's ``cancelled`` joins them only in a
#: store that holds such a job.
STATES: tuple[JobState, ...] = ("pending", "running", "done", "failed", "interrupted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed', 'interrupted', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class JobRow:
    """One job as the store holds it."""

    key: str
    spec: JobSpec
    state: JobState
    attempts: int
    reason: str | None


class JobStore:
    """The SQLite job store of one batch folder (see the module)."""

    def __init__(self, path: str | os.PathLike[str], *, any_thread: bool = False) -> None:
        """``any_thread``: the connection may be used from threads other than the one that made it (a web server's
        request threads); the caller then makes sure only one thread uses it at a time."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: autocommit; each change below is its own explicit transaction
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=not any_thread)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process (WAL), not power loss
            self._db.executescript(SCHEMA)
        except sqlite3.Error as error:
            raise OutputError(f"job store {self.path}: {error}") from None

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, any_thread: bool = False) -> JobStore:
        """Open (or create) the store, and mark jobs a killed driver left running as interrupted."""
        store = cls(path, any_thread=any_thread)
        store.recover()
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _change(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with self._transaction():
            self._db.executemany(sql, rows)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def recover(self) -> int:
        """Jobs left ``running`` (their driver was killed) become ``interrupted``; returns how many.  The reason
        says what the next run does with each: a sketch's colouring, having no checkpoint, starts again."""
        with self._transaction():
            left = self._db.execute("SELECT key, spec FROM jobs WHERE state='running'").fetchall()
            self._db.executemany(
                "UPDATE jobs SET state='interrupted', reason=?, updated=? WHERE key=?",
                [(_recovered_reason(json.loads(spec)), time.time(), key) for key, spec in left],
            )
        return len(left)

    def add(self, jobs: Sequence[tuple[str, JobSpec]]) -> int:
        """Record new jobs as pending (a key already stored keeps its state); returns how many were new."""
        with self._transaction():
            start = self._db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM jobs").fetchone()[0]
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO jobs (key, position, spec, state, updated) VALUES (?, ?, ?, 'pending', ?)",
                [(key, start + i, json.dumps(spec.to_dict()), time.time()) for i, (key, spec) in enumerate(jobs)],
            )
            return self._db.total_changes - before

    def started(self, key: str) -> None:
        """The job is being run: ``running``, one more attempt."""
        self._change("UPDATE jobs SET state='running', attempts=attempts+1, updated=? WHERE key=?",
                     [(time.time(), key)])  # fmt: skip

    def finished(self, key: str) -> None:
        self._change("UPDATE jobs SET state='done', reason=NULL, updated=? WHERE key=?", [(time.time(), key)])

    def failed(self, key: str, reason: str) -> None:
        self._change("UPDATE jobs SET state='failed', reason=?, updated=? WHERE key=?", [(reason, time.time(), key)])

    def interrupted(self, key: str, reason: str = "stopped on request") -> None:
        self._change("UPDATE jobs SET state='interrupted', reason=?, updated=? WHERE key=?",
                     [(reason, time.time(), key)])  # fmt: skip

    def cancelled(self, key: str, reason: str = "cancelled") -> None:
        self._change("UPDATE jobs SET state='cancelled', reason=?, updated=? WHERE key=?",
                     [(reason, time.time(), key)])  # fmt: skip

    def claim_next(self, states: Sequence[JobState] = ("interrupted", "pending")) -> JobRow | None:
        """Mark the first job (in the order added) whose state is one of ``states`` running, one more attempt, and
        return it; None when there is none.  One transaction, so a job cancelled or deleted by another writer at
        the same moment is either claimed whole or not at all (the web queue's worker takes jobs this way)."""
        marks = ", ".join("?" for _ in states)
        with self._transaction():
            row = self._db.execute(
                f"SELECT key, spec, state, attempts, reason FROM jobs WHERE state IN ({marks}) "
                "ORDER BY CASE state WHEN 'interrupted' THEN 0 ELSE 1 END, position LIMIT 1",
                tuple(states),
            ).fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE jobs SET state='running', attempts=attempts+1, updated=? WHERE key=?",
                             (time.time(), row[0]))  # fmt: skip
        return _row((row[0], row[1], "running", row[3] + 1, row[4]))

    def set_state_if(self, key: str, old: Sequence[JobState], new: JobState, reason: str | None = None) -> bool:
        """Change a job's state only if it is one of ``old`` (a waiting job cancelled while the worker may claim
        it); returns whether it changed."""
        marks = ", ".join("?" for _ in old)
        with self._transaction():
            cursor = self._db.execute(
                f"UPDATE jobs SET state=?, reason=?, updated=? WHERE key=? AND state IN ({marks})",
                (new, reason, time.time(), key, *old),
            )
        return cursor.rowcount > 0

    def delete(self, key: str) -> bool:
        """Forget a job (its files are the caller's); returns whether it was there."""
        with self._transaction():
            cursor = self._db.execute("DELETE FROM jobs WHERE key=?", (key,))
        return cursor.rowcount > 0

    def forget_attempts(self, key: str) -> None:
        """Start counting a failed job's attempts afresh (``--retry-failed``: the user fixed the cause)."""
        self._change("UPDATE jobs SET attempts=0 WHERE key=?", [(key,)])

    def get(self, key: str) -> JobRow | None:
        row = self._db.execute("SELECT key, spec, state, attempts, reason FROM jobs WHERE key=?", (key,)).fetchone()
        return None if row is None else _row(row)

    def rows(self, keys: Iterable[str] | None = None) -> Iterator[JobRow]:
        """Every job in the order it was added (or those of ``keys``, in that order)."""
        if keys is None:
            for row in self._db.execute("SELECT key, spec, state, attempts, reason FROM jobs ORDER BY position"):
                yield _row(row)
            return
        for key in keys:
            found = self.get(key)
            if found is not None:
                yield found

    def counts(self) -> dict[str, int]:
        """``{state: number of jobs}``: every state of :data:`STATES`, and ``cancelled`` where a job is."""
        found = dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        return {state: int(found.get(state, 0)) for state in STATES} | {
            state: int(count) for state, count in found.items() if state not in STATES
        }


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an error): the write lock is taken at the start, so two
    writers wait for each other instead of failing halfway."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *exc: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _recovered_reason(spec: dict[str, object]) -> str:
    """A killed driver's job's reason: a style transfer's is what it always was (it continues from its checkpoint),
    another kind's says what happens to it (read from the stored JSON: a row is never refused here)."""
    kind = str(spec.get("kind", "stylize"))
    note = "" if kind == "stylize" or kind not in AFTER_A_STOP else f"; {AFTER_A_STOP[kind]}"
    return f"the batch was stopped while it ran{note}"


def _row(row: tuple[str, str, str, int, str | None]) -> JobRow:
    key, spec, state, attempts, reason = row
    return JobRow(key, JobSpec.from_dict(json.loads(spec)), state, attempts, reason)  # type: ignore[arg-type]
