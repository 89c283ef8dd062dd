"""Keep freed memory in the process while a run optimises, so big buffers are not page-faulted in at every step.

On Linux, glibc serves every allocation above its mmap threshold (32 MiB at most) with a fresh ``mmap`` and gives
it back to the kernel when it is freed. One evaluation of the objective at 1024x768 allocates and frees dozens of
such buffers (activations and their gradients, 25-200 MiB each), so every evaluation page-faults them all in
again, and the kernel zeroes every page first. Measured with ``bench/speed.py`` at 1024x768 on 2 cores: the
encoder's bare forward+backward took 1.62 s that way and 1.25 s with the blocks kept; a whole default 512 px
run of 260 steps took 77 s instead of 83 s (docs/performance.md, "Freed memory, kept for reuse").

:func:`reuse_freed_memory` switches glibc to serve every allocation from its heap and not to trim the heap's
top, so after the first evaluation the same blocks are reused; on leaving, ``malloc_trim`` returns the free memory
to the system. Elsewhere (macOS, Windows, musl), and where the user tuned malloc through the environment
(``MALLOC_*_``, ``GLIBC_TUNABLES``), it does nothing.

Library users: a program that imports painterly gets these settings only while a run executes
(``StyleTransferRun.execute`` enters :func:`reuse_freed_memory`, so do :func:`painterly.stylize`, ``resume`` and
``colorize``). Importing changes nothing, and when the last run leaves (finished, failed, interrupted) the
settings go back, so the host's own allocations between runs are served as glibc serves them by default. glibc
has no call that reads its parameters, so "back" means fixed values (``AFTER_*`` below: where glibc's own
tuning takes them once the process has freed a large block, which it then no longer adjusts), not whatever the
host set with its own ``mallopt``; a host that tunes malloc should do it through the environment, which this
module then leaves alone.

Limits: the switch is process-wide, so a run that would not qualify (tiled, or short of memory) still keeps freed
memory while a qualifying one runs beside it in the same process; and threads other than the main one allocate
from their own glibc arenas, which still map blocks above 64 MiB afresh, so a run on a worker thread gains less.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["active_runs", "release_free_memory", "reuse_freed_memory", "user_tuned_malloc"]

# mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
#: Keep up to this much free memory at the heap's top while a run lasts (the largest value ``mallopt`` takes).
RUN_TRIM_THRESHOLD = 2**31 - 1
#: Settings after a run. Any ``mallopt`` of these switches glibc's self-adjusting mmap threshold off for good, so
#: they are set where that adjustment takes them once a large block has been freed (the threshold at its 64-bit
#: maximum, the trim threshold twice that), and the default mapping count comes back.
AFTER_MMAP_THRESHOLD = 32 * 2**20
AFTER_TRIM_THRESHOLD = 2 * AFTER_MMAP_THRESHOLD
DEFAULT_MMAP_MAX = 65536

_lock = threading.Lock()
_active = 0  # runs inside reuse_freed_memory(); the settings change with the first and are restored after the last


def active_runs() -> int:
    """How many runs are inside :func:`reuse_freed_memory` now (0: glibc has its usual settings)."""
    return _active


def user_tuned_malloc() -> bool:
    """Whether the environment sets glibc malloc parameters, which this module must then leave alone."""
    return any(name.startswith("MALLOC_") and name.endswith("_") for name in os.environ) or (
        "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")
    )


def _glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc (whose ``mallopt`` this module relies on), else None."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it)
    except (OSError, AttributeError, TypeError):
        return None
    return libc


#: The C library whose malloc this module tunes (None where it is not glibc); tests put a recorder in its place.
LIBC = _glibc()


def release_free_memory() -> None:
    """Hand the heap's free memory back to the system now (glibc's ``malloc_trim``; a no-op elsewhere).

    For tiled runs, which never keep freed memory: their windows change shape as the grid moves, so the pieces
    they free fit the next window badly, and resident memory crept up step by step. At 1024 px (256 px cores,
    12 steps, bfloat16, run revision 3): 1.51 GiB untrimmed, 1.37 GiB trimmed once per evaluation (5 % slower),
    1.13 GiB trimmed after every window (26 % slower). ``TiledObjective`` trims after each of its two passes;
    since revision 5 the grid takes a few positions, so the windows come in a few shapes and the creep is gone,
    and the trims still lower the peak (30 steps at 1024 px, history 1: 1.01 GiB with them, 1.39 without, 7 % slower).
    """
    if LIBC is not None:
        LIBC.malloc_trim(0)


@contextmanager
def reuse_freed_memory(enabled: bool = True) -> Iterator[bool]:
    """While inside, freed memory stays in the process for reuse; yields whether that is in effect.

    Nested and concurrent uses (several runs in one process, on any threads) share one switch under a lock: the
    settings change when the first enters and are restored when the last leaves, also when it leaves by an
    exception, so a program using painterly as a library has them only while a run lasts (the module's docstring
    says what "restored" means). The price is resident memory: what a step frees is not returned until the run
    ends, and the heap keeps pieces of it (a float32 run at 1024x768 peaked at 3.86 against 3.31 GiB; in bfloat16
    at the same 2.74 GiB).
    """
    global _active
    libc = LIBC if enabled and not user_tuned_malloc() else None
    if libc is None:
        yield False
        return
    entered = False
    try:
        with _lock:
            # Counted before switching, so that a switch failing halfway is still switched back in ``finally``.
            _active += 1
            entered = True
            if _active == 1:
                libc.mallopt(M_MMAP_MAX, 0)
                libc.mallopt(M_TRIM_THRESHOLD, RUN_TRIM_THRESHOLD)
        yield True
    finally:
        if entered:
            with _lock:
                _active -= 1
                if _active == 0:
                    libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                    libc.mallopt(M_MMAP_THRESHOLD, AFTER_MMAP_THRESHOLD)
                    libc.mallopt(M_TRIM_THRESHOLD, AFTER_TRIM_THRESHOLD)
                    release_free_memory()
