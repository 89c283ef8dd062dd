"""Batch runs: contents × styles × sweeps (or a job file) run resumably into one folder, on one warm session or a
Ray cluster, with a contact sheet (docs/batch.md).

``grid`` and ``jobfile`` describe the jobs, ``sweep`` is the ``--sweep`` grammar, ``keys`` names a job by what makes
it, ``store`` is the SQLite job store, ``runner`` runs one job on a session, ``executors`` (inline) and
``ray_executor`` run many, ``results`` writes a job's folder, ``contact`` the contact sheet, and ``driver`` ties
them together (:func:`run_batch`).  Ray is imported only when a :class:`RayExecutor` is made (extra
``painterly[ray]``).  Its modules' public names are re-exported here for users; the modules themselves import each
other by module, never this file.
"""

from __future__ import annotations

from painterly.batch.contact import Cell, contact_sheet, write_contact_sheet
from painterly.batch.driver import DEFAULT_MAX_ATTEMPTS, BatchSummary, JobReport, run_batch
from painterly.batch.executors import DEFAULT_CHECKPOINT_EVERY, Executor, InlineExecutor, Outcome, Task, failure_reason
from painterly.batch.grid import (
    AFTER_A_STOP,
    INPUT_SUFFIXES,
    JOB_KINDS,
    JobKind,
    JobSpec,
    expand_inputs,
    job_kind,
    make_grid,
)
from painterly.batch.jobfile import read_job_file
from painterly.batch.keys import KEY_LENGTH, NOT_IN_KEY, DigestCache, canonical_job, job_key
from painterly.batch.ray_executor import INSTALL_RAY, BatchWorker, RayExecutor, import_ray
from painterly.batch.results import IMAGE_NAME, result_folder, settings_of, write_result
from painterly.batch.runner import JobResult, checkpoint_path, run_job, trace_path
from painterly.batch.store import STATES, JobRow, JobState, JobStore
from painterly.batch.sweep import (
    SWEEP_EXCLUDED,
    Sweep,
    combinations,
    parse_sweep,
    parse_sweeps,
    parse_value,
    value_text,
)

__all__ = [
    "AFTER_A_STOP",
    "DEFAULT_CHECKPOINT_EVERY",
    "DEFAULT_MAX_ATTEMPTS",
    "IMAGE_NAME",
    "INPUT_SUFFIXES",
    "INSTALL_RAY",
    "JOB_KINDS",
    "KEY_LENGTH",
    "NOT_IN_KEY",
    "STATES",
    "SWEEP_EXCLUDED",
    "BatchSummary",
    "BatchWorker",
    "Cell",
    "DigestCache",
    "Executor",
    "InlineExecutor",
    "JobKind",
    "JobReport",
    "JobResult",
    "JobRow",
    "JobSpec",
    "JobState",
    "JobStore",
    "Outcome",
    "RayExecutor",
    "Sweep",
    "Task",
    "canonical_job",
    "checkpoint_path",
    "combinations",
    "contact_sheet",
    "expand_inputs",
    "failure_reason",
    "import_ray",
    "job_key",
    "job_kind",
    "make_grid",
    "parse_sweep",
    "parse_sweeps",
    "parse_value",
    "read_job_file",
    "result_folder",
    "run_batch",
    "run_job",
    "settings_of",
    "trace_path",
    "value_text",
    "write_contact_sheet",
    "write_result",
]
