"""Fixtures: the real local stack once per session, an isolated namespace per test.

Every test that asks for ``settings`` gets its own Kafka topics and Redis key prefix,
removed afterwards, so tests run in any order and side by side.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from phonebank.infra.kafka import make_admin
from phonebank.local import stack
from phonebank.local.stack_settings import StackSettings, load_stack_settings
from phonebank.settings import Settings, load_settings

#: Root of the repository (tests read ../shared from here).
REPO = Path(__file__).resolve().parents[1]
#: The shared Rossvyaz registry, used by tests from ../shared and never committed.
SHARED_REGISTRY = REPO.parent / "shared" / "data" / "numbering-plan" / "DEF-9xx.csv"
#: keys deleted per SCAN batch when a test's namespace is cleaned
CLEANUP_SCAN_COUNT = 1000


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


@pytest.fixture
def settings(local_stack: Settings) -> Iterator[Settings]:
    """Settings with this test's own topics and Redis key prefix, cleaned up afterwards."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    isolated = local_stack.model_copy(
        update={
            "key_prefix": namespace,
            "numbers_topic": f"{namespace}.numbers",
            "outcomes_topic": f"{namespace}.outcomes",
            "dnc_topic": f"{namespace}.dnc",
            "assigner_group": f"{namespace}-assigner",
            "reporter_group": f"{namespace}-reporter",
            "numbers_partitions": 4,
            "outcomes_partitions": 2,
        }
    )
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
    client = redis.Redis.from_url(settings.redis_url)
    try:
        wipe_namespace(client, settings.key_prefix)
    finally:
        client.close()


def wipe_namespace(client: redis.Redis, prefix: str) -> None:
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
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    """A client of the real local redis-server (bytes responses)."""
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    client.close()


@pytest.fixture
def shared_registry() -> Path:
    """The shared numbering-plan registry; the test is skipped where ../shared is absent."""
    if not SHARED_REGISTRY.exists():
        pytest.skip(f"{SHARED_REGISTRY} not present")
    return SHARED_REGISTRY
