"""The job store: one SQLite file (WAL mode) that records every job's state; it is the batch's truth.

Each job is a row: its key, its description (:class:`~painterly.batch.grid.JobSpec` as JSON), its state, how many
times it was started, the reason of its last failure, and when it changed.  The states:

``pending``      known, never started
``running``      started by a driver that has not reported back
``done``         its result folder is complete
``failed``       it raised; ``reason`` is the one-sentence error, ``attempts`` counts the starts
``interrupted``  stopped on request (Ctrl-C) or found ``running`` when a driver opens the store: the driver that
                 started it was killed; it continues from its checkpoint on the next run

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

from painterly.batch.grid import JobSpec
from painterly.errors import OutputError

__all__ = ["STATES", "JobRow", "JobState", "JobStore"]

JobState = Literal["pending", "running", "done", "failed", "interrupted"]
STATES: tuple[JobState, ...] = ("pending", "running", "done", "failed", "interrupted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed', 'interrupted')),
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

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: autocommit; each change below is its own explicit transaction
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process (WAL), not power loss
            self._db.executescript(SCHEMA)
        except sqlite3.Error as error:
            raise OutputError(f"job store {self.path}: {error}") from None

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> JobStore:
        """Open (or create) the store, and mark jobs a killed driver left running as interrupted."""
        store = cls(path)
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
        """Jobs left ``running`` (their driver was killed) become ``interrupted``; returns how many."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE jobs SET state='interrupted', reason='the batch was stopped while it ran', updated=? "
                "WHERE state='running'", (time.time(),))  # fmt: skip
        return cursor.rowcount

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
        """``{state: number of jobs}``, every state present."""
        found = dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        return {state: int(found.get(state, 0)) for state in STATES}


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an error): the write lock is taken at the start, so two
    writers wait for each other instead of failing halfway."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *exc: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _row(row: tuple[str, str, str, int, str | None]) -> JobRow:
    key, spec, state, attempts, reason = row
    return JobRow(key, JobSpec.from_dict(json.loads(spec)), state, attempts, reason)  # type: ignore[arg-type]
