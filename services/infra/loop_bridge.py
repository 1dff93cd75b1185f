"""Synchronous code on the event loop: its waits are awaited, not blocked on.

The gateway's request logic (the guard, the lease client) is synchronous and shared with
the assigner, the CLI and the tests. :func:`run_on_loop` runs such a call in a greenlet
on the event loop's thread; where the call must wait (a Redis round trip, through
:class:`~phonebank.leases.transport.LoopTransport`), it hands an awaitable to
:func:`await_on_loop`, which switches back to the loop's task, awaits it there and
switches back in with the result — the bridge SQLAlchemy uses for its asyncio drivers.
Requests interleave at those waits only, on one thread: no worker threads, no lock
hand-offs between them, no GIL contention (measured in docs/gateway.md). A call that
must block (Kafka's acknowledgement) goes through :func:`blocking`, which runs it in a
worker thread while the loop serves others.

Outside :func:`run_on_loop` (the assigner, the CLI, the tests calling the lease client
directly) :func:`in_bridge` is false and callers do their plain synchronous thing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar, cast

import anyio
import greenlet

Result = TypeVar("Result")


class _Bridged(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet started by :func:`run_on_loop` (its parent is the loop's task)."""


async def run_on_loop(function: Callable[..., Result], *args: Any) -> Result:
    """Run ``function(*args)`` on the loop's thread, awaiting what it hands over."""
    worker = _Bridged(function, greenlet.getcurrent())
    handed = worker.switch(*args)
    while not worker.dead:
        try:
            value = await cast(Awaitable[Any], handed)
        except BaseException as error:  # every error, cancellation too, goes back in
            handed = worker.throw(error)
        else:
            handed = worker.switch(value)
    return cast(Result, handed)


def in_bridge() -> bool:
    """Whether the current code runs inside :func:`run_on_loop`."""
    return isinstance(greenlet.getcurrent(), _Bridged)


def await_on_loop(awaitable: Awaitable[Result]) -> Result:
    """Await ``awaitable`` on the loop from synchronous code run by :func:`run_on_loop`;
    its result, or its exception raised here."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        raise RuntimeError("await_on_loop outside run_on_loop")
    return cast(Result, current.parent.switch(awaitable))


def blocking(function: Callable[..., Result], *args: Any, **keywords: Any) -> Result:
    """Call ``function(*args, **keywords)``, which blocks: in a worker thread when inside
    the bridge (the loop serves other requests meanwhile), directly otherwise."""
    if not in_bridge():
        return function(*args, **keywords)
    return await_on_loop(anyio.to_thread.run_sync(partial(function, *args, **keywords)))
