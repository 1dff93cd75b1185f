"""The assigner reads both chunk versions and skips a bad record without stopping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from phonebank.assigner.worker import AssignerWorker
from phonebank.settings import Settings
from tests.integration.assigner_helpers import (
    chunk,
    consumed_to_end,
    produce_values,
    ready,
    running_worker,
    step_until,
)

pytestmark = pytest.mark.integration

REGION = "RU-MOW"


@pytest.fixture
def worker(settings: Settings, redis_client: redis.Redis) -> Iterator[AssignerWorker]:
    with running_worker(settings, redis_client) as instance:
        yield instance


def test_old_and_new_chunks_queue_and_bad_records_are_skipped(
    settings: Settings, redis_client: redis.Redis, worker: AssignerWorker
) -> None:
    """Given one partition holding a JSON chunk (version 1), a corrupt compact chunk, a
    tombstone, garbage, and a compact chunk whose numbers came unsorted
    When the worker consumes the partition
    Then both good chunks are queued (the compact one in ascending order), the three bad
    records are counted as malformed, and the worker goes on to the end."""
    compact = chunk(REGION, 2, [9161000003, 9161000001, 9161000002]).encode()
    values = [
        chunk(REGION, 0, [9169000002, 9169000001]).model_dump_json().encode(),
        compact[:-4] + b"\x00\x00\x00\x00",
        None,
        b"\xff not a chunk",
        compact,
    ]
    produce_values(settings, [(REGION, value) for value in values])
    before = worker.metrics.malformed_records._value.get()
    step_until(worker, lambda: consumed_to_end(worker))
    assert ready(redis_client, settings, REGION) == [
        9169000002,
        9169000001,
        9161000001,
        9161000002,
        9161000003,
    ]
    assert worker.metrics.malformed_records._value.get() - before == 3
