"""Invariant 6: Redis can be wiped and rebuilt from Kafka (``phonebank rebuild``)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from phonebank.assigner.worker import AssignerWorker
from phonebank.domain.records import Outcome
from phonebank.infra.kafka import ensure_topics, make_producer
from phonebank.infra.redis_client import RedisClient
from phonebank.leases import dnc
from phonebank.leases.relay import OutcomeRelay, RelayMetrics
from phonebank.ops.dnc import record_in_kafka
from phonebank.ops.rebuild import RebuildError, rebuild
from phonebank.settings import Settings
from tests.conftest import wipe_namespace
from tests.integration.assigner_helpers import chunk, produce, queue_all, ready, step_until
from tests.integration.lease_helpers import (
    FIRST,
    MOSCOW_ONLY,
    assert_conserved,
    lease_client,
    local_instant,
    scheme,
)

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

#: the numbers of the campaign: FIRST … FIRST + 9
NUMBERS = [FIRST + i for i in range(10)]
#: what the volunteers answered for the first four numbers leased
ANSWERS = [Outcome.CONVERSATION, Outcome.DO_NOT_CALL, Outcome.NO_ANSWER, Outcome.WRONG_NUMBER]


def test_wiped_redis_is_rebuilt_from_kafka(settings: Settings, redis_client: RedisClient) -> None:
    moscow = settings.model_copy(update={"regions_include": ["RU-MOW"]})
    ensure_topics(moscow)
    produce(moscow, [chunk("RU-MOW", 0, NUMBERS)])
    producer = make_producer(moscow)
    # Given ten queued numbers, four of them called with four different answers,
    queue_all(moscow, redis_client)
    client = lease_client(moscow, redis_client, local_instant(12), MOSCOW_ONLY)
    for answer in ANSWERS:
        lease = client.acquire(f"volunteer-{answer}")
        assert lease is not None
        client.complete(lease.lease_id, lease.token, answer)
    # and an operator's do-not-call for a fifth, the outcomes relayed to Kafka
    record_in_kafka(moscow, [FIRST + 4], lambda number: "RU-MOW")
    dnc.add_numbers(redis_client, moscow.key_prefix, [FIRST + 4], lambda number: "RU-MOW")
    OutcomeRelay(moscow, redis_client, producer, RelayMetrics(CollectorRegistry())).relay_all()
    producer.close()
    # When Redis loses everything, the state is rebuilt from Kafka and a worker re-reads
    wipe_namespace(redis_client, moscow.key_prefix)
    assert ready(redis_client, moscow, "RU-MOW") == []
    summary = rebuild(moscow, redis_client)
    queue_all(moscow, redis_client)
    # Then finished numbers stay finished, the unanswered one keeps its attempt
    assert dict(summary.states) == {"done": 1, "dnc": 1, "in play": 1, "retired": 1}
    assert summary.operator_dnc == 1
    assert sorted(ready(redis_client, moscow, "RU-MOW")) == [FIRST + 2, *NUMBERS[5:]]
    keys = scheme(moscow).region("RU-MOW")
    assert redis_client.hget(keys.attempts, str(FIRST + 2)) == b"1"
    # And do-not-call is still final, also the operator's
    for number in (FIRST + 1, FIRST + 4):
        assert dnc.is_listed(redis_client, moscow.key_prefix, number, lambda n: "RU-MOW")
    # And every number is in exactly one state
    assert_conserved(moscow, redis_client, "RU-MOW", client.now_ms())


def test_rebuild_refuses_while_an_assigner_runs(
    settings: Settings, redis_client: RedisClient
) -> None:
    # Given a live member of the assigner group
    ensure_topics(settings)
    worker = AssignerWorker(settings, redis_client)
    try:
        step_until(worker, lambda: bool(worker.consumer.assignment()))
        # When a rebuild is asked for, Then it refuses and names the reason
        with pytest.raises(RebuildError, match="still running"):
            rebuild(settings, redis_client)
    finally:
        worker.consumer.close(autocommit=False)
