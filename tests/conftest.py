"""Fixtures: the real local stack once per session, an isolated namespace per test.

Every test that asks for ``settings`` gets its own Kafka topics and Redis key prefix,
removed afterwards, so tests run in any order and side by side.

A test module marked ``on_cluster`` runs each of its tests twice: on the stack's one
Redis node (``[redis]``) and on the local Redis Cluster (``[cluster]``, marked
``cluster``: excluded from the default run, selected with ``-m cluster``). The cluster
is started once per session (``phonebank stack up --redis-cluster``) and, at the end,
checked to have refused no command with CROSSSLOT.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonebank.infra.kafka import make_admin
from phonebank.infra.redis_client import RedisClient, connect, primaries
from phonebank.local import redis_cluster, stack
from phonebank.local.stack_settings import StackSettings, load_stack_settings
from phonebank.settings import Settings, load_settings, namespaced, settings_env

#: Root of the repository (tests read ../shared from here).
REPO = Path(__file__).resolve().parents[1]
#: The shared Rossvyaz registry, used by tests from ../shared and never committed.
SHARED_REGISTRY = REPO.parent / "shared" / "data" / "numbering-plan" / "DEF-9xx.csv"
#: keys deleted per SCAN batch when a test's namespace is cleaned
CLEANUP_SCAN_COUNT = 1000
#: the tests' throwaway volunteer secret (services refuse the public default); set for
#: this process and every subprocess a test starts
TEST_VOLUNTEER_SECRET = "test-only-volunteer-secret-0123456789abcdef"
os.environ.setdefault("PHONEBANK_VOLUNTEER_SECRET", TEST_VOLUNTEER_SECRET)


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """The services' settings (environment applied)."""
    return load_settings()


@pytest.fixture(scope="session")
def stack_settings() -> StackSettings:
    """The local stack's settings (environment applied), stack folder in the repo."""
    return load_stack_settings(stack_dir=REPO / ".stack")


@pytest.fixture(scope="session")
def local_stack(base_settings: Settings, stack_settings: StackSettings) -> Iterator[Settings]:
    """Bring the real Kafka + Redis up once if they are not running; leave them as found."""
    started = stack.up(stack_settings)
    yield base_settings
    if started:
        stack.down(stack_settings)


#: the Redis an ``on_cluster`` test runs on: one node, and the Redis Cluster (-m cluster)
REDIS_BACKENDS = ["redis", pytest.param("cluster", marks=pytest.mark.cluster)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test of an ``on_cluster`` module on each Redis backend."""
    on_cluster = metafunc.definition.get_closest_marker("on_cluster") is not None
    if on_cluster and "redis_backend" in metafunc.fixturenames:
        metafunc.parametrize("redis_backend", REDIS_BACKENDS, indirect=True)


@pytest.fixture
def redis_backend(request: pytest.FixtureRequest) -> str:
    """``redis`` (the stack's one node) unless the test is parametrised over backends."""
    return str(getattr(request, "param", "redis"))


def crossslot_errors(client: RedisClient) -> int:
    """Commands every master of ``client`` refused with CROSSSLOT since it started."""
    total = 0
    for node in primaries(client):
        stats = node.info("errorstats")
        total += int(stats.get("errorstat_CROSSSLOT", {}).get("count", 0))
    return total


@pytest.fixture(scope="session")
def cluster_stack(local_stack: Settings, stack_settings: StackSettings) -> Iterator[Settings]:
    """The local Redis Cluster (started if it is not running; left as found), and at the
    end of the session: no command was refused with CROSSSLOT."""
    started = redis_cluster.up(stack_settings)
    on_cluster = redis_cluster.cluster_settings(local_stack, stack_settings)
    client = connect(on_cluster)
    before = crossslot_errors(client)
    yield on_cluster
    after = crossslot_errors(client)
    client.close()
    if started:
        redis_cluster.down(stack_settings)
    assert after == before, f"{after - before} command(s) refused with CROSSSLOT"


@pytest.fixture
def settings(
    local_stack: Settings, redis_backend: str, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """Settings with this test's own topics and Redis key prefix, cleaned up afterwards."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    base = local_stack
    if redis_backend == "cluster":
        base = request.getfixturevalue("cluster_stack")
    isolated = namespaced(base, namespace, numbers_partitions=4, outcomes_partitions=2)
    yield isolated
    drop_topics(isolated)
    drop_keys(isolated)


def drop_topics(settings: Settings) -> None:
    """Delete every Kafka topic named ``<key_prefix>.…`` (a test's namespace)."""
    admin = make_admin(settings)
    try:
        mine = [t for t in admin.list_topics() if t.startswith(settings.key_prefix + ".")]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()


def drop_keys(settings: Settings) -> None:
    """Delete every Redis key of the namespace ``key_prefix``."""
    client = connect(settings)
    try:
        wipe_namespace(client, settings.key_prefix)
    finally:
        client.close()


def wipe_namespace(client: RedisClient, prefix: str) -> None:
    """Delete every Redis key under ``prefix`` (a test's namespace)."""
    batch = []
    for key in client.scan_iter(match=f"{prefix}:*", count=CLEANUP_SCAN_COUNT):
        batch.append(key)
        if len(batch) >= CLEANUP_SCAN_COUNT:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[RedisClient]:
    """A client of the test's Redis: the local redis-server or cluster (bytes responses)."""
    client = connect(settings)
    yield client
    client.close()


@pytest.fixture
def shared_registry() -> Path:
    """The shared numbering-plan registry; the test is skipped where ../shared is absent."""
    if not SHARED_REGISTRY.exists():
        pytest.skip(f"{SHARED_REGISTRY} not present")
    return SHARED_REGISTRY


def use_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Set this process's ``PHONEBANK_*`` environment to ``settings`` (for a command run
    in-process through ``phonebank.cli.main``), undone after the test."""
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
