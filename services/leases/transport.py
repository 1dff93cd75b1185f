"""How a batch of packed commands reaches Redis: one pooled connection, or one per node.

:class:`~phonebank.leases.scripts.ScriptPipeline` encodes every command once and hands
the batch here with each command's routing key (its first key). On one node the batch is
written on one pooled connection and its replies read back in order. On a Redis Cluster
the commands are grouped by the master that serves their key's slot; every group is
written before any reply is read (one round trip across the nodes), then the replies are
put back in the batch's order. A command refused with ``MOVED`` did not run: the slot
map is read again and the command sent to the slot's new master; ``ASK`` sends it
once to the importing node behind ``ASKING``; ``TRYAGAIN`` (keys of a slot half
migrated) waits a moment and sends it again — each at most :data:`MAX_REDIRECTS` times.

From the gateway, whose request code runs on the event loop, :class:`LoopTransport`
sends the batch on an asyncio connection instead, so that the loop serves other
requests during the round trip.

A connection error is raised, never retried: the commands on that connection may have
run. The slot map is refreshed first, so the next batch finds the new master after a
failover. Other error replies are returned as exceptions, in place, for the caller.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, cast

import redis
import redis.asyncio
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, MovedError, TryAgainError

from phonebank.infra.loop_bridge import await_on_loop, blocking, in_bridge
from phonebank.infra.redis_client import RedisClient, default_node

#: times one command may be redirected (MOVED, ASK, TRYAGAIN) before the batch fails
#: (redis-py's own budget: 16)
MAX_REDIRECTS = 16
#: seconds to wait before resending commands refused with TRYAGAIN
TRYAGAIN_PAUSE_SECONDS = 0.05
#: the ASKING command as Redis protocol bytes
ASKING = b"*1\r\n$6\r\nASKING\r\n"


class Connection(Protocol):
    """The part of a pooled redis-py connection a batch uses (redis-py leaves it untyped)."""

    def send_packed_command(self, command: list[bytes]) -> None: ...

    def read_response(self) -> Any: ...

    def disconnect(self) -> None: ...


class Transport(Protocol):
    """Sends packed commands; returns one reply per command, error replies as exceptions."""

    def round_trip(self, packed: Sequence[bytes], routes: Sequence[str | None]) -> list[Any]: ...


class TooManyRedirectsError(redis.exceptions.RedisClusterException):
    """A command of a batch was redirected more than :data:`MAX_REDIRECTS` times."""


def transport_for(client: RedisClient) -> Transport:
    """The transport of ``client``: per node on a cluster, else its connection pool."""
    if isinstance(client, RedisCluster):
        return ClusterTransport(client)
    return PooledTransport(client.connection_pool)


def _read_replies(connection: Connection, count: int) -> list[Any]:
    """Read ``count`` replies; an error reply is kept as its exception, so that every
    reply is read and the connection stays in step."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(connection.read_response())
        except redis.exceptions.ResponseError as error:
            replies.append(error)
    return replies


class PooledTransport:
    """The whole batch on one pooled connection of one node."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._pool = pool

    def round_trip(self, packed: Sequence[bytes], routes: Sequence[str | None]) -> list[Any]:
        """Write the batch, read one reply per command."""
        pooled = self._pool.get_connection()
        connection = cast(Connection, pooled)
        try:
            connection.send_packed_command([b"".join(packed)])
            return _read_replies(connection, len(packed))
        except BaseException:
            connection.disconnect()  # replies may be left unread: never reuse it as is
            raise
        finally:
            self._pool.release(pooled)


class _Group:
    """The commands of one batch bound for one node, and their place in the batch."""

    def __init__(self, node: ClusterNode, asking: bool) -> None:
        self.node = node
        self.asking = asking
        self.indexes: list[int] = []
        self.pool: redis.ConnectionPool | None = None
        self.connection: Connection | None = None


class ClusterTransport:
    """The batch split by slot owner, one pooled connection per node, redirects followed."""

    def __init__(self, client: RedisCluster) -> None:
        self._client = client
        self._nodes = client.nodes_manager

    def round_trip(self, packed: Sequence[bytes], routes: Sequence[str | None]) -> list[Any]:
        """Send each command to its slot's master; replies in the batch's order."""
        replies: list[Any] = [None] * len(packed)
        pending = list(range(len(packed)))
        asked: dict[int, ClusterNode] = {}
        for attempt in range(MAX_REDIRECTS + 1):
            results = self._exchange(self._groups(pending, routes, asked), packed)
            pending, asked, moved = [], {}, []
            for index, reply in results:
                if isinstance(reply, MovedError | AskError | TryAgainError):
                    pending.append(index)
                if isinstance(reply, MovedError):
                    moved.append(reply)
                elif isinstance(reply, AskError):
                    asked[index] = self._node(reply.host, reply.port)
                elif not isinstance(reply, TryAgainError):
                    replies[index] = reply
            if not pending:
                return replies
            if moved:
                self._remap(moved)
            elif not asked and attempt < MAX_REDIRECTS:
                time.sleep(TRYAGAIN_PAUSE_SECONDS)
        raise TooManyRedirectsError(f"{len(pending)} command(s) redirected {MAX_REDIRECTS} times")

    def _remap(self, moved: list[MovedError]) -> None:
        """Read the slot map again, then trust each MOVED for its slot (the node that
        answered knows; a replica asked for the map may not have heard yet)."""
        self._nodes.initialize()
        for error in moved:
            self._nodes.move_slot(error)

    def _node(self, host: str, port: int) -> ClusterNode:
        """The node an ASK names (the slot map is read again if it does not know it)."""
        node = self._nodes.get_node(host=host, port=port)
        if node is None:
            self._nodes.initialize()
            node = self._nodes.get_node(host=host, port=port)
        if node is None:
            raise redis.exceptions.RedisClusterException(f"ASK to unknown node {host}:{port}")
        return node

    def _groups(
        self, pending: list[int], routes: Sequence[str | None], asked: dict[int, ClusterNode]
    ) -> list[_Group]:
        """The pending commands grouped by target node (ASKed ones apart, each alone)."""
        by_node: dict[str, _Group] = {}
        groups: list[_Group] = []
        for index in pending:
            target = asked.get(index)
            if target is not None:
                group = _Group(target, asking=True)
                groups.append(group)
            else:
                node = self._target(routes[index])
                group = by_node.setdefault(node.name, _Group(node, asking=False))
            group.indexes.append(index)
        return groups + list(by_node.values())

    def _target(self, route: str | None) -> ClusterNode:
        if route is None:
            return default_node(self._client)
        return self._nodes.get_node_from_slot(key_slot(route.encode()))

    def _exchange(self, groups: list[_Group], packed: Sequence[bytes]) -> list[tuple[int, Any]]:
        """Write every group, then read every group's replies; a connection error is
        raised after the other groups were read (their connections stay usable)."""
        failure: BaseException | None = None
        for group in groups:
            failure = failure or self._write(group, packed)
        results: list[tuple[int, Any]] = []
        for group in groups:
            if group.connection is None:
                continue
            try:
                if group.asking:
                    _read_replies(group.connection, 1)  # the +OK of ASKING
                read = _read_replies(group.connection, len(group.indexes))
                results.extend(zip(group.indexes, read, strict=True))
            except BaseException as error:
                group.connection.disconnect()
                failure = failure or error
            finally:
                self._release(group)
        if failure is not None:
            self._nodes.initialize()
            raise failure
        return results

    def _write(self, group: _Group, packed: Sequence[bytes]) -> BaseException | None:
        """Send one group's commands on a pooled connection of its node."""
        node_client = self._client.get_redis_connection(group.node)
        group.pool = node_client.connection_pool
        try:
            group.connection = cast(Connection, group.pool.get_connection())
            head = [ASKING] if group.asking else []
            body = [packed[index] for index in group.indexes]
            group.connection.send_packed_command([b"".join(head + body)])
        except BaseException as error:
            if group.connection is not None:
                group.connection.disconnect()
            self._release(group)
            group.connection = None
            return error
        return None

    @staticmethod
    def _release(group: _Group) -> None:
        if group.pool is not None and group.connection is not None:
            group.pool.release(group.connection)  # type: ignore[arg-type]


class LoopTransport:
    """A batch sent from synchronous code that runs on the event loop
    (:func:`~phonebank.infra.loop_bridge.run_on_loop`, the gateway): on one node, written
    and read on an asyncio connection while the loop serves other requests; on a
    Cluster, ``fallback`` (the :class:`ClusterTransport`) in a worker thread. Outside the
    bridge it is ``fallback`` itself, so the same lease client works anywhere."""

    def __init__(self, fallback: Transport, pool: redis.asyncio.ConnectionPool | None) -> None:
        self._fallback = fallback
        self._pool = pool

    def round_trip(self, packed: Sequence[bytes], routes: Sequence[str | None]) -> list[Any]:
        """Write the batch, read one reply per command (awaited when on the loop)."""
        if not in_bridge():
            return self._fallback.round_trip(packed, routes)
        if self._pool is None:
            return blocking(self._fallback.round_trip, packed, routes)
        return await_on_loop(self._exchange(self._pool, packed))

    @staticmethod
    async def _exchange(pool: redis.asyncio.ConnectionPool, packed: Sequence[bytes]) -> list[Any]:
        checkout = cast(Callable[[], Awaitable[redis.asyncio.Connection]], pool.get_connection)
        connection = await checkout()
        try:
            await connection.send_packed_command(b"".join(packed))
            replies: list[Any] = []
            for _ in packed:
                try:
                    replies.append(await connection.read_response())
                except redis.exceptions.ResponseError as error:
                    replies.append(error)
            return replies
        except BaseException:
            await connection.disconnect()  # replies may be left unread: never reuse it as is
            raise
        finally:
            await pool.release(connection)
