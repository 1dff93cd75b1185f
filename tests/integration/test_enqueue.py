"""enqueue-4.lua against the real redis-server: order, do-not-call screening, bounds."""

from __future__ import annotations

from typing import cast

import pytest
import redis

from phonebank.leases import dnc
from phonebank.leases.queues import batch_id, enqueue_chunk, pack_numbers
from phonebank.leases.scripts import ReturnCode, Scripts
from phonebank.settings import Settings
from tests.integration.lease_helpers import FIRST, numbers_from, scheme

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]


def ready_list(client: redis.Redis, settings: Settings) -> list[int]:
    ready = client.lrange(scheme(settings).region("RU-MOW").ready, 0, -1)
    return [int(number) for number in cast(list[bytes], ready)]


def test_numbers_are_queued_in_order_across_command_batches(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given 1,234 numbers (three RPUSH batches inside the script), one of them listed
    numbers = numbers_from(FIRST, 1_234)
    dnc.add_numbers(redis_client, settings.key_prefix, [numbers[700]], lambda _: "RU-MOW")
    # When they are enqueued
    queued = enqueue_chunk(redis_client, scheme(settings), "RU-MOW", numbers)
    # Then all but the listed one are queued, in their order
    assert queued == 1_233
    assert ready_list(redis_client, settings) == numbers[:700] + numbers[701:]


@pytest.mark.parametrize("count", [0, 5_001])
def test_an_empty_or_oversized_batch_is_refused_and_queues_nothing(
    settings: Settings, redis_client: redis.Redis, count: int
) -> None:
    # Given a batch of no numbers, or of more than one call takes
    numbers = numbers_from(FIRST, count)
    keys = scheme(settings).region("RU-MOW")
    # When it is sent to the script directly
    reply = Scripts(redis_client).run(
        "enqueue",
        keys,
        [batch_id(pack_numbers(numbers)), *numbers],
    )
    # Then it is refused and nothing is queued
    assert reply == [ReturnCode.BAD_ARGUMENT, b"argument count"]
    assert ready_list(redis_client, settings) == []
