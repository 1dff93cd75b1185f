"""The one way every component gets its Redis client: one node or a Redis Cluster.

``PHONEBANK_REDIS_URL`` names one node (``redis://host:port/db``) unless
``PHONEBANK_REDIS_CLUSTER=true``: then it is a comma list of seed nodes
(``redis://[:password@]host:port,redis://host:port,…``, db 0) and :func:`connect`
returns a :class:`redis.cluster.RedisCluster`, which reads the slot map from the first
seed that answers and follows it (``MOVED``/``ASK``, failovers). Every key a script or
a multi-key command touches carries one hash tag (``leases/keys.py``), so no command
spans two slots. The batches of :mod:`phonebank.leases.scripts` go through
:mod:`phonebank.leases.transport`, which groups them by node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, cast
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster

from phonebank.settings import Settings

#: a client of one Redis node or of a Redis Cluster (both speak every command phonebank uses)
RedisClient: TypeAlias = redis.Redis | RedisCluster
#: a non-transactional command pipeline of either client
RedisPipeline: TypeAlias = redis.client.Pipeline | ClusterPipeline
#: default Redis port when a seed omits it
DEFAULT_PORT = 6379

# redis-py leaves these untyped; their types, as redis.cluster documents them
cluster_node = cast(Callable[[str, int], ClusterNode], ClusterNode)


def primary_nodes(client: RedisCluster) -> list[ClusterNode]:
    """The masters of the cluster, as the client's slot map has them."""
    return cast(Callable[[], list[ClusterNode]], client.get_primaries)()


def default_node(client: RedisCluster) -> ClusterNode:
    """The node commands without a key go to."""
    return cast(Callable[[], ClusterNode], client.get_default_node)()


def seed_nodes(redis_url: str) -> list[ClusterNode]:
    """The host:port of every seed in a comma list of DSNs."""
    nodes = []
    for dsn in redis_url.split(","):
        parts = urlsplit(dsn.strip())
        nodes.append(cluster_node(parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT))
    return nodes


def _credentials(redis_url: str) -> dict[str, Any]:
    """Username, password and TLS of the seeds (the settings check they agree)."""
    first = urlsplit(redis_url.split(",", maxsplit=1)[0].strip())
    options: dict[str, Any] = {"ssl": first.scheme == "rediss"}
    if first.username:
        options["username"] = unquote(first.username)
    if first.password:
        options["password"] = unquote(first.password)
    return options


def connect(settings: Settings, **options: Any) -> RedisClient:
    """A client for ``settings.redis_url``: one node, or the cluster when
    ``settings.redis_cluster``. ``options`` go to redis-py (``socket_timeout``,
    ``max_connections`` — per node on a cluster —, ``decode_responses`` …)."""
    if not settings.redis_cluster:
        return redis.Redis.from_url(settings.redis_url, **options)
    return RedisCluster(
        startup_nodes=seed_nodes(settings.redis_url),
        require_full_coverage=True,
        **_credentials(settings.redis_url),
        **options,
    )


def primaries(client: RedisClient) -> list[redis.Redis]:
    """A one-node client per master: the node itself, or each master of the cluster."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(node) for node in primary_nodes(client)]
    return [client]
