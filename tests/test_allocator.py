"""Freed memory is kept for reuse while a run lasts (glibc), and handed back after."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest
import torch

import painterly.allocator as allocator
from painterly.allocator import reuse_freed_memory

from .conftest import run_for


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
    )]  # fmt: skip


def _mallinfo2() -> _MallInfo2 | None:
    libc = allocator._LIBC
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2()


def _new_big_block_is_mapped() -> bool:
    """Whether glibc serves a new block, larger than any free piece of its heap, with a fresh mapping."""
    before = _mallinfo2()
    assert before is not None
    size = max(64 * 2**20, before.fordblks + 64 * 2**20)  # above the mmap threshold, and no free piece fits it
    block = torch.empty(size, dtype=torch.uint8)  # (pages untouched: nothing is faulted in)
    after = _mallinfo2()
    del block
    assert after is not None
    return after.hblkhd - before.hblkhd >= size


real_glibc = pytest.mark.skipif(
    _mallinfo2() is None or allocator._user_tuned_malloc(), reason="needs glibc 2.33+ with its default malloc"
)


class _RecordingLibc:
    """Stands in for glibc: records the calls, so the switching logic is tested whatever the C library."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> _RecordingLibc:
    fake = _RecordingLibc()
    monkeypatch.setattr(allocator, "_LIBC", fake)
    for name in [name for name in os.environ if name.startswith("MALLOC_") or name == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(name)
    return fake


SWITCH_ON = [
    ("mallopt", allocator.M_MMAP_MAX, 0),
    ("mallopt", allocator.M_TRIM_THRESHOLD, allocator.RUN_TRIM_THRESHOLD),
]
SWITCH_BACK = [
    ("mallopt", allocator.M_MMAP_MAX, allocator.DEFAULT_MMAP_MAX),
    ("mallopt", allocator.M_MMAP_THRESHOLD, allocator.AFTER_MMAP_THRESHOLD),
    ("mallopt", allocator.M_TRIM_THRESHOLD, allocator.AFTER_TRIM_THRESHOLD),
    ("malloc_trim", 0),
]


def test_the_first_entry_switches_on_and_the_last_exit_switches_back(recording: _RecordingLibc) -> None:
    with reuse_freed_memory() as outer:
        assert outer is True and recording.calls == SWITCH_ON
        with reuse_freed_memory() as inner:
            assert inner is True
        assert recording.calls == SWITCH_ON, "the inner exit must not switch it off under the outer"
    assert recording.calls == SWITCH_ON + SWITCH_BACK


def test_a_failing_run_still_switches_back(recording: _RecordingLibc) -> None:
    with pytest.raises(RuntimeError), reuse_freed_memory():
        raise RuntimeError("the run failed")
    assert recording.calls == SWITCH_ON + SWITCH_BACK
    with reuse_freed_memory():  # and the count is back at zero: the next run switches on again
        pass
    assert recording.calls == (SWITCH_ON + SWITCH_BACK) * 2


def test_disabled_or_user_tuned_it_changes_nothing(recording: _RecordingLibc, monkeypatch: pytest.MonkeyPatch) -> None:
    with reuse_freed_memory(enabled=False) as on:
        assert on is False
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    with reuse_freed_memory() as on:
        assert on is False
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    with reuse_freed_memory() as on:
        assert on is False
    assert recording.calls == []


@real_glibc
def test_with_real_glibc_big_blocks_come_from_the_heap_only_inside() -> None:
    assert _new_big_block_is_mapped()
    with reuse_freed_memory():
        assert not _new_big_block_is_mapped()
    assert _new_big_block_is_mapped()


def test_a_run_keeps_freed_memory_only_with_room_to_spare(
    pair: tuple[Path, Path], tiny_weights, monkeypatch: pytest.MonkeyPatch
) -> None:
    import painterly.run

    run = run_for(*pair, weights=tiny_weights, size=32)
    needed = run._stage_bytes(run._stage_shape(run.sizes[-1]), run.tile_cores[-1])
    room = painterly.run.KEEP_FREED_MARGIN * needed
    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: int(room) + 1)
    assert run._room_to_keep_freed_memory()
    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: int(room) - 1)
    assert not run._room_to_keep_freed_memory()
    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: None)  # unknown: leave malloc alone
    assert not run._room_to_keep_freed_memory()
    # tiled runs hand freed memory back after every evaluation instead (their windows fragment the heap)
    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: 2**50)
    assert run._room_to_keep_freed_memory()
    tiled = run_for(*pair, weights=tiny_weights, size=160, start_size=None, tile_size=64)
    assert tiled.tile_cores[-1] is not None and not tiled._room_to_keep_freed_memory()


@real_glibc
def test_a_run_executes_inside_and_hands_the_memory_back_after(pair: tuple[Path, Path], tiny_weights) -> None:
    inside: list[bool] = []
    run = run_for(*pair, weights=tiny_weights, size=32, iterations=2)
    assert run._room_to_keep_freed_memory()
    run.execute(on_step=lambda record: inside.append(_new_big_block_is_mapped()))
    assert inside == [False, False]
    assert _new_big_block_is_mapped()
