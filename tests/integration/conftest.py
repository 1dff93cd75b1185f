"""Fixtures shared by the integration tests of more than one module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from phonebank.infra.redis_client import RedisClient


@pytest.fixture
def cluster_client(redis_client: RedisClient) -> Iterator[RedisCluster]:
    """The test's Redis client, which a cluster-only module needs to be a Redis Cluster."""
    assert isinstance(redis_client, RedisCluster)
    yield redis_client
