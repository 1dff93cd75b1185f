"""Synchronous code on the event loop (infra/loop_bridge.py): results, errors,
interleaving at the waits, cancellation, and the blocking escape hatch."""

from __future__ import annotations

import asyncio
import threading

import anyio
import pytest

from phonebank.infra.loop_bridge import await_on_loop, blocking, in_bridge, run_on_loop


def _sync_wait(events: list[str], name: str, gate: asyncio.Event) -> str:
    """Synchronous code that waits for ``gate`` on the loop between two steps."""
    events.append(f"{name} starts")
    await_on_loop(gate.wait())
    events.append(f"{name} ends")
    return name


def test_a_call_returns_its_result_and_raises_its_error() -> None:
    # Given synchronous code that awaits twice, and one that fails after a wait
    def adds() -> int:
        return int(await_on_loop(asyncio.sleep(0, 1))) + int(await_on_loop(asyncio.sleep(0, 2)))

    def fails() -> None:
        await_on_loop(asyncio.sleep(0))
        raise ValueError("refused")

    async def main() -> int:
        with pytest.raises(ValueError, match="refused"):
            await run_on_loop(fails)
        return await run_on_loop(adds)

    # When both run on the loop, Then the first gives 3 and the second's error comes out
    assert asyncio.run(main()) == 3


def test_two_calls_interleave_at_their_waits_on_one_thread() -> None:
    # Given two synchronous calls that each wait for a gate, and the thread they run on
    events: list[str] = []
    threads: set[int] = set()

    async def main() -> list[str]:
        first_gate, second_gate = asyncio.Event(), asyncio.Event()

        def first() -> str:
            threads.add(threading.get_ident())
            return _sync_wait(events, "first", first_gate)

        def second() -> str:
            threads.add(threading.get_ident())
            return _sync_wait(events, "second", second_gate)

        tasks = [asyncio.create_task(run_on_loop(first)), asyncio.create_task(run_on_loop(second))]
        await asyncio.sleep(0)
        # When the second's gate opens first
        second_gate.set()
        done = await tasks[1]
        first_gate.set()
        return [done, await tasks[0]]

    # Then both started before either ended, the second ended first, on the loop's thread
    assert asyncio.run(main()) == ["second", "first"]
    assert events == ["first starts", "second starts", "second ends", "first ends"]
    assert threads == {threading.get_ident()}


def test_a_cancelled_call_gets_the_cancellation_at_its_wait() -> None:
    # Given synchronous code that cleans up when its wait is interrupted
    cleaned: list[str] = []

    def waits_forever() -> None:
        try:
            await_on_loop(asyncio.Event().wait())
        finally:
            cleaned.append("cleaned up")

    async def main() -> None:
        task = asyncio.create_task(run_on_loop(waits_forever))
        await asyncio.sleep(0)
        # When its task is cancelled
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    # Then the cancellation reached the synchronous code, which ran its cleanup
    assert cleaned == ["cleaned up"]


def test_outside_the_bridge_nothing_is_awaited_and_blocking_calls_directly() -> None:
    # Given plain synchronous code (the assigner, the CLI)
    # Then it is not in the bridge, may not await, and blocking runs on its own thread
    assert not in_bridge()
    waiting = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="outside run_on_loop"):
        await_on_loop(waiting)
    waiting.close()
    assert blocking(threading.get_ident) == threading.get_ident()


def test_blocking_inside_the_bridge_runs_in_a_worker_thread_while_the_loop_serves() -> None:
    # Given a call that blocks its thread until another call on the loop has run
    served = threading.Event()

    def blocks() -> int:
        assert in_bridge()
        return blocking(lambda: served.wait(5) and threading.get_ident())

    async def main() -> tuple[int, int]:
        blocked = asyncio.create_task(run_on_loop(blocks))
        await asyncio.sleep(0)  # one turn: the call is now blocked in its worker thread
        served.set()  # (had it blocked the loop, this would come after its 5 s wait)
        return await blocked, threading.get_ident()

    # When both run, Then the blocking part ran in another thread and the loop went on
    worker, loop_thread = anyio.run(main, backend="asyncio")
    assert worker and worker != loop_thread
