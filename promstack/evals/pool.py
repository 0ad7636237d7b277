"""The worker pool the test runner and the arena share: a fixed number of workers take work
from a bounded queue, so memory stays flat however large the suite, and at most `concurrency`
items are in hand at once.

An interruption (a cancelled task, Ctrl-C) or an error in any worker cancels every worker and
the feeder, waits for them, and then propagates: work in flight is dropped, not half-kept, so
the callers record an item only once it is finished and a resume redoes exactly the rest.

The workers start a moment apart (STAGGER each, RAMP at most in all). Started together, their
calls go out together and their answers arrive together, every round trip: the loop then takes
the whole batch's CPU (~0.5 ms a call) in one turn while the model waits, so each wave of 50
calls of 100 ms took ~109 ms. Spread over a few ms they stay spread, each answered as it comes:
1,000 cases at 50 x 100 ms went from 1.12-1.16x the ideal to 1.06-1.10x (bench/bench_runner.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
_END = object()
STAGGER = 0.001  # seconds between two workers' first items: above a call's CPU on the loop
RAMP = 0.2  # seconds at most between the first worker's start and the last one's


async def run_pool(items: AsyncIterable[T] | Iterable[T], work: Callable[[T], Awaitable[None]], *,
                   concurrency: int, backlog: int) -> None:
    """Await `work(item)` for every item, `concurrency` at a time, with at most `backlog` items
    read ahead of the workers. Returns when every item is done."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=backlog)

    async def feed() -> None:
        if isinstance(items, AsyncIterable):
            async for item in items:
                await queue.put(item)
        else:
            for item in items:
                await queue.put(item)
        for _ in range(concurrency):
            await queue.put(_END)

    gap = min(STAGGER, RAMP / max(concurrency, 1))

    async def worker(index: int) -> None:
        if index:
            await asyncio.sleep(index * gap)
        while True:
            item = await queue.get()
            if item is _END:
                return
            await work(item)

    # A worker that fails stops the feeder too: it would otherwise wait on a full queue forever.
    tasks = [asyncio.create_task(feed()), *(asyncio.create_task(worker(i)) for i in range(concurrency))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
