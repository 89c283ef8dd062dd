"""Freed memory is kept for reuse while a run lasts (glibc), and handed back after."""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import painterly.engine.allocator as allocator
from painterly.engine.allocator import reuse_freed_memory
from painterly.plan.memory import estimate_run_bytes
from painterly.plan.stages import KEEP_FREED_MARGIN, NetworkShape, make_plan

from .conftest import run_for


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
    )]  # fmt: skip


def _mallinfo2() -> _MallInfo2 | None:
    libc = allocator.LIBC
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
    _mallinfo2() is None or allocator.user_tuned_malloc(), reason="needs glibc 2.33+ with its default malloc"
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
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[_RecordingLibc]:
    fake = _RecordingLibc()
    monkeypatch.setattr(allocator, "LIBC", fake)
    for name in [name for name in os.environ if name.startswith("MALLOC_") or name == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(name)
    assert allocator.active_runs() == 0, "no run is inside when a test starts: the first to enter switches on"
    yield fake
    assert allocator.active_runs() == 0, "every run that entered has left: the next one switches on afresh"


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


def test_a_failing_inner_run_leaves_the_outer_one_switched_on(recording: _RecordingLibc) -> None:
    with reuse_freed_memory():
        with pytest.raises(RuntimeError), reuse_freed_memory():
            raise RuntimeError("the inner run failed")
        assert recording.calls == SWITCH_ON, "the outer run still keeps freed memory"
    assert recording.calls == SWITCH_ON + SWITCH_BACK


def test_a_switch_that_fails_halfway_is_still_switched_back(recording: _RecordingLibc) -> None:
    def second_call_fails(parameter: int, value: int) -> int:
        recording.calls.append(("mallopt", parameter, value))
        if len(recording.calls) == 2:
            raise OSError("mallopt failed")
        return 1

    recording.mallopt = second_call_fails  # type: ignore[method-assign]
    with pytest.raises(OSError, match="mallopt failed"), reuse_freed_memory():
        pytest.fail("the body must not run")
    assert recording.calls == SWITCH_ON + SWITCH_BACK


def test_runs_on_two_threads_share_one_switch(recording: _RecordingLibc) -> None:
    """The first thread in switches on, the last one out switches back, whichever order they leave in."""
    entered = [threading.Event(), threading.Event()]
    leave = [threading.Event(), threading.Event()]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            with reuse_freed_memory() as on:
                assert on
                entered[index].set()
                assert leave[index].wait(10)
        except BaseException as error:  # handed to the main thread, which asserts
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in (0, 1)]
    threads[0].start()
    assert entered[0].wait(10)
    threads[1].start()
    assert entered[1].wait(10)
    assert recording.calls == SWITCH_ON, "the second run finds it switched on already"
    leave[0].set()  # the first run leaves while the second still runs
    threads[0].join(10)
    assert recording.calls == SWITCH_ON, "the second run still keeps freed memory"
    leave[1].set()
    threads[1].join(10)
    assert not errors and recording.calls == SWITCH_ON + SWITCH_BACK


def test_a_second_thread_waits_until_the_switch_is_made(recording: _RecordingLibc) -> None:
    """The count and the switch change under one lock: no run is inside before the settings are in effect."""
    switching, finish = threading.Event(), threading.Event()
    plain_mallopt = recording.mallopt

    def slow_first_call(parameter: int, value: int) -> int:
        if not recording.calls:
            switching.set()
            assert finish.wait(10)
        return plain_mallopt(parameter, value)

    recording.mallopt = slow_first_call  # type: ignore[method-assign]
    seen_inside: list[list[tuple]] = []  # the calls made when each run got in
    second_inside = threading.Event()

    def run(first: bool) -> None:
        with reuse_freed_memory():
            seen_inside.append(list(recording.calls))
            if first:  # stay until the second is in, so it finds the switch on and the order is fixed
                second_inside.wait(10)
            else:
                second_inside.set()

    first, second = threading.Thread(target=run, args=(True,)), threading.Thread(target=run, args=(False,))
    first.start()
    assert switching.wait(10)
    second.start()
    time.sleep(0.2)  # time enough for the second run to get in, were it not held back
    assert seen_inside == [], "no run may be inside while the first is still switching"
    finish.set()
    first.join(10)
    second.join(10)
    assert seen_inside == [SWITCH_ON, SWITCH_ON]
    assert recording.calls == SWITCH_ON + SWITCH_BACK


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


def test_a_run_keeps_freed_memory_only_with_room_to_spare(pair: tuple[Path, Path], tiny_weights) -> None:
    run = run_for(*pair, weights=tiny_weights, size=32)
    network = NetworkShape(run.encoder.computed_layers, run.encoder.max_stride, run.encoder.min_side)

    def keeps(free: int | None, device_type: str = "cpu") -> bool:
        plan = make_plan(run.config, run.content.rgb.size, network, content_layer_weights=run.content_weights,
                         per_style_weights=run.per_style_weights, free_bytes=free, device_type=device_type)  # fmt: skip
        return plan.keep_freed_memory

    needed = estimate_run_bytes(network.layers, *run.plan.stages[-1].shape, history=run.plan.history_size)
    room = KEEP_FREED_MARGIN * needed
    assert keeps(int(room) + 1) and not keeps(int(room) - 1)
    assert not keeps(None)  # unknown: leave malloc alone
    assert keeps(2**50) and not keeps(2**50, "cuda")  # CUDA's caching allocator reuses its blocks itself
    # tiled runs hand freed memory back after every evaluation instead (their windows fragment the heap)
    tiled = run_for(*pair, weights=tiny_weights, size=160, start_size=None, tile_size=64)
    assert tiled.tile_cores[-1] is not None and not tiled.plan.keep_freed_memory


@real_glibc
def test_a_run_executes_inside_and_hands_the_memory_back_after(pair: tuple[Path, Path], tiny_weights) -> None:
    inside: list[bool] = []
    run = run_for(*pair, weights=tiny_weights, size=32, iterations=2)
    assert run.plan.keep_freed_memory
    run.execute(on_step=lambda record: inside.append(_new_big_block_is_mapped()))
    assert inside == [False, False]
    assert _new_big_block_is_mapped()


def test_a_library_run_has_the_settings_only_while_it_executes_even_when_it_fails(
    pair: tuple[Path, Path], tiny_weights, recording: _RecordingLibc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a program using painterly as a library sees: nothing on planning, on during the steps, back after."""
    import painterly.run

    monkeypatch.setattr(painterly.run, "available_bytes", lambda device: 2**50)  # room to keep freed memory
    run = run_for(*pair, weights=tiny_weights, size=32, iterations=3)
    assert recording.calls == [], "planning a run changes nothing"
    during: list[list[tuple]] = []

    def failing_step(record) -> None:
        during.append(list(recording.calls))
        if record.step == 2:
            raise RuntimeError("the caller's callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        run.execute(on_step=failing_step)
    assert during == [SWITCH_ON, SWITCH_ON]
    assert recording.calls == SWITCH_ON + SWITCH_BACK
