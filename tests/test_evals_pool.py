"""The worker pool the runner and the arena share."""

import asyncio

import pytest

from promstack.evals.pool import run_pool


def test_every_item_done_at_most_concurrency_at_once():
    in_hand, most, done = 0, 0, []

    async def work(item: int) -> None:
        nonlocal in_hand, most
        in_hand += 1
        most = max(most, in_hand)
        # longer than the workers' staggered start (pool.RAMP at most), so that all are at work
        await asyncio.sleep(0.01)
        done.append(item)
        in_hand -= 1

    asyncio.run(run_pool(range(50), work, concurrency=4, backlog=8))
    assert sorted(done) == list(range(50))
    assert most == 4


def test_reads_ahead_only_as_far_as_the_backlog():
    read = []

    async def scenario() -> None:
        gate = asyncio.Event()

        def items():
            for i in range(100):
                read.append(i)
                yield i

        async def work(item: int) -> None:
            await gate.wait()

        task = asyncio.create_task(run_pool(items(), work, concurrency=2, backlog=3))
        for _ in range(20):
            await asyncio.sleep(0)
        # two in the workers' hands, three queued, one waiting to be queued
        assert len(read) <= 2 + 3 + 1
        gate.set()
        await task

    asyncio.run(scenario())
    assert len(read) == 100


def test_async_items_and_a_failing_worker_stops_the_pool():
    started = []

    async def items():
        for i in range(1000):
            yield i

    async def work(item: int) -> None:
        started.append(item)
        if item == 3:
            raise RuntimeError("boom")
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(asyncio.wait_for(run_pool(items(), work, concurrency=2, backlog=2), 5))
    assert len(started) < 20  # the feeder stopped instead of waiting on a full queue


def test_cancelling_drops_work_in_flight():
    finished = []

    async def scenario() -> None:
        async def work(item: int) -> None:
            await asyncio.sleep(0.01 if item < 4 else 10)
            finished.append(item)

        task = asyncio.create_task(run_pool(range(10), work, concurrency=4, backlog=4))
        while len(finished) < 4:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert sorted(finished) == [0, 1, 2, 3]


def test_workers_start_staggered_yet_all_take_part():
    """The workers start a moment apart (so their calls do not go out, and come back, in one
    burst), and every one of them still takes items."""
    by_worker: dict[int, int] = {}

    async def work(item: int) -> None:
        task = id(asyncio.current_task())
        by_worker[task] = by_worker.get(task, 0) + 1
        await asyncio.sleep(0.005)

    asyncio.run(run_pool(range(200), work, concurrency=8, backlog=16))
    assert sum(by_worker.values()) == 200 and len(by_worker) == 8
