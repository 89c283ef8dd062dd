"""Freed memory is kept for reuse while a run lasts (glibc), and handed back after."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
import torch

from painterly.allocator import reuse_freed_memory

from .conftest import run_for

BLOCK = 64 * 2**20  # above glibc's largest mmap threshold: normally a fresh mapping of its own


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
    )]  # fmt: skip


def _mapped_bytes_of_a_new_block() -> int:
    """How much of a freshly allocated BLOCK glibc served with mmap (the rest came from its heap)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    before = libc.mallinfo2().hblkhd
    block = torch.empty(BLOCK, dtype=torch.uint8)
    mapped = libc.mallinfo2().hblkhd - before
    del block
    return mapped


glibc_only = pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="needs glibc 2.33+")


@glibc_only
def test_big_blocks_come_from_the_heap_only_inside_and_nesting_keeps_it_on() -> None:
    assert _mapped_bytes_of_a_new_block() >= BLOCK  # by default: its own mapping, page-faulted in at every use
    with reuse_freed_memory() as outer:
        assert outer is True
        with reuse_freed_memory():
            assert _mapped_bytes_of_a_new_block() == 0
        assert _mapped_bytes_of_a_new_block() == 0, "the inner exit must not switch it off under the outer"
    assert _mapped_bytes_of_a_new_block() >= BLOCK  # the defaults are back


def test_disabled_it_changes_nothing() -> None:
    with reuse_freed_memory(enabled=False) as on:
        assert on is False
        if hasattr(ctypes.CDLL(None), "mallinfo2"):
            assert _mapped_bytes_of_a_new_block() >= BLOCK


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


@glibc_only
def test_a_run_executes_inside_and_hands_the_memory_back_after(pair: tuple[Path, Path], tiny_weights) -> None:
    inside: list[int] = []
    run = run_for(*pair, weights=tiny_weights, size=32, iterations=2)
    run.execute(on_step=lambda record: inside.append(_mapped_bytes_of_a_new_block()))
    assert inside == [0, 0]
    assert _mapped_bytes_of_a_new_block() >= BLOCK
