"""The reporter's incremental checkpoint against the real broker and redis-server."""

from __future__ import annotations

import pytest
import redis

from phonebank.domain.records import Outcome
from phonebank.infra.kafka import ensure_topic
from phonebank.leases.keys import ReporterKeys
from phonebank.reporter import checkpoint
from phonebank.reporter.aggregate import Aggregator
from phonebank.reporter.checkpoint import Checkpoint, CheckpointStore
from phonebank.reporter.consumer import ReporterService
from phonebank.reporter.number_states import SEGMENT_SHIFT, number_key
from phonebank.settings import Settings
from tests.integration.test_reporter_service import consume_until, outcome, produce

pytestmark = pytest.mark.integration

#: two numbers far apart (different checkpoint segments) and one next to the first
NEAR, NEIGHBOUR, FAR = 9_160_000_001, 9_160_000_002, 9_160_000_001 + (8 << SEGMENT_SHIFT)


def test_a_checkpoint_rewrites_only_changed_segments_and_resumes_exactly(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given a reporter that checkpointed calls to numbers in two segments
    When one more number of the first segment is called and checkpointed again, while a
    spy checks that readers' lock is free during every save
    Then the second checkpoint rewrote one segment only, and a restarted reporter holds
    every number's state (a repeat call counts as a second call, not a first)."""
    ensure_topic(settings, settings.outcomes_topic, settings.outcomes_partitions)
    produce(settings, [outcome(NEAR, Outcome.NO_ANSWER), outcome(FAR, Outcome.REFUSED)])
    service = ReporterService(settings)
    consumer = service.open_consumer()
    saves: list[bool] = []
    real_save = service.store.save

    def spy(checkpoint: Checkpoint, *, whole: bool = False) -> bool:
        saves.append(service.status.lock.locked())
        return real_save(checkpoint, whole=whole)

    service.store.save = spy  # type: ignore[method-assign]
    numbers_key = ReporterKeys(settings.key_prefix, settings.campaign).checkpoint_numbers
    try:
        consume_until(service, consumer, 2)
        assert service.checkpoint(consumer, force=True)
        first = redis_client.hgetall(numbers_key)
        assert len(first) == 2
        produce(settings, [outcome(NEIGHBOUR, Outcome.BUSY)])
        consume_until(service, consumer, 3)
        assert service.checkpoint(consumer, force=True)
        second = redis_client.hgetall(numbers_key)
    finally:
        consumer.close()
    changed = {field for field in second if second[field] != first[field]}
    region = service.status.aggregator.region_index["RU-MOW"]
    assert changed == {str(number_key(region, NEAR) >> SEGMENT_SHIFT).encode()}
    assert saves == [False, False]
    # When a new reporter starts and the first number is called again
    produce(settings, [outcome(NEAR, Outcome.CONVERSATION)])
    restarted = ReporterService(settings)
    consumer = restarted.open_consumer()
    try:
        assert restarted.status.aggregator.applied == 3
        consume_until(restarted, consumer, 4)
    finally:
        consumer.close()
    tally = restarted.status.aggregator.regions["RU-MOW"]
    assert (tally.attempted, tally.reached, tally.conversations) == (3, 2, 1)
    assert tally.calls_histogram[1:3] == [2, 1]


def test_an_unusable_checkpoint_is_recounted_from_the_start(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given a checkpoint whose segments hash lost a segment (not what the document says)
    When a reporter starts
    Then it refuses that checkpoint, recounts the topic from the start, and its first
    checkpoint replaces the damaged segments."""
    ensure_topic(settings, settings.outcomes_topic, settings.outcomes_partitions)
    produce(settings, [outcome(NEAR, Outcome.NO_ANSWER), outcome(FAR, Outcome.REFUSED)])
    service = ReporterService(settings)
    consumer = service.open_consumer()
    try:
        consume_until(service, consumer, 2)
        assert service.checkpoint(consumer, force=True)
    finally:
        consumer.close()
    numbers_key = ReporterKeys(settings.key_prefix, settings.campaign).checkpoint_numbers
    region = service.status.aggregator.region_index["RU-MOW"]
    redis_client.hdel(numbers_key, str(number_key(region, FAR) >> SEGMENT_SHIFT))
    restarted = ReporterService(settings)
    consumer = restarted.open_consumer()
    try:
        assert restarted.status.aggregator.applied == 0
        consume_until(restarted, consumer, 2)
        assert restarted.checkpoint(consumer, force=True)
    finally:
        consumer.close()
    assert restarted.status.aggregator.regions["RU-MOW"].attempted == 2
    assert len(redis_client.hgetall(restarted.store.stored_numbers_key())) == 2
    assert not redis_client.exists(numbers_key)  # the damaged generation is gone


def test_a_checkpoint_written_in_many_hsets_loads_whole(
    settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given one segment per HSET inside the checkpoint's MULTI
    When numbers in five segments are checkpointed and the checkpoint is loaded
    Then every segment was written and the loaded state equals the saved one."""
    monkeypatch.setattr(checkpoint, "HSET_FIELDS", 1)
    aggregator = Aggregator()
    aggregator.apply_all(outcome(NEAR + (k << SEGMENT_SHIFT), Outcome.NO_ANSWER) for k in range(5))
    store = CheckpointStore(redis_client, ReporterKeys(settings.key_prefix, settings.campaign))
    store.save(Checkpoint(settings.outcomes_topic, aggregator, {0: 5}))
    loaded = store.load(settings.outcomes_topic)
    assert loaded is not None and loaded.offsets == {0: 5}
    assert dict(loaded.aggregator.numbers.items()) == dict(aggregator.numbers.items())
    assert redis_client.hlen(store.stored_numbers_key()) == 5


def test_a_full_rewrite_goes_in_rounds_and_replaces_the_stored_checkpoint_at_once(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given a stored checkpoint of five segments, and a new process (nothing loaded)
    holding six segments, two written per round
    When it checkpoints round after round, a number of an already written segment
    changing between two rounds
    Then until the last round a reader loads the previous checkpoint whole; the last
    round switches to the new one (the changed number included) and drops the old hash."""
    keys = ReporterKeys(settings.key_prefix, settings.campaign)
    topic = settings.outcomes_topic
    old = Aggregator()
    old.apply_all(outcome(NEAR + (k << SEGMENT_SHIFT), Outcome.NO_ANSWER) for k in range(5))
    CheckpointStore(redis_client, keys).save(Checkpoint(topic, old, {0: 5}))
    previous_key = CheckpointStore(redis_client, keys).stored_numbers_key()
    new = Aggregator()
    new.apply_all(outcome(NEAR + (k << SEGMENT_SHIFT), Outcome.REFUSED) for k in range(6))
    writer = CheckpointStore(redis_client, keys)
    writer.segments_per_round = 2
    rounds: list[bool] = []
    for round_number in range(10):
        done = writer.save(Checkpoint(topic, new, {0: 6 + round_number}))
        rounds.append(done)
        if done:
            break
        loaded = CheckpointStore(redis_client, keys).load(topic)
        assert loaded is not None and loaded.offsets == {0: 5}
        assert dict(loaded.aggregator.numbers.items()) == dict(old.numbers.items())
        if round_number == 1:  # the first segment was written in round 0: it changes
            new.apply_all([outcome(NEAR, Outcome.CONVERSATION)])
    assert rounds == [False, False, False, True]  # 6 segments, then the changed one again
    loaded = CheckpointStore(redis_client, keys).load(topic)
    assert loaded is not None and loaded.offsets == {0: 9}
    assert dict(loaded.aggregator.numbers.items()) == dict(new.numbers.items())
    assert CheckpointStore(redis_client, keys).stored_numbers_key() != previous_key
    assert not redis_client.exists(previous_key)


def test_a_full_rewrite_racing_changes_ends_after_twice_its_rounds(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given a new process with four segments, one written per round
    When every segment changes again between every two rounds (a backlog)
    Then after twice the four rounds needed, the next round writes all that is left and
    the stored checkpoint is the new state."""
    keys = ReporterKeys(settings.key_prefix, settings.campaign)
    topic = settings.outcomes_topic
    state = Aggregator()
    segments = [NEAR + (k << SEGMENT_SHIFT) for k in range(4)]
    state.apply_all(outcome(number, Outcome.NO_ANSWER) for number in segments)
    writer = CheckpointStore(redis_client, keys)
    writer.segments_per_round = 1
    rounds: list[bool] = []
    for _ in range(20):
        rounds.append(writer.save(Checkpoint(topic, state, {0: len(rounds)})))
        if rounds[-1]:
            break
        state.apply_all(outcome(number, Outcome.BUSY) for number in segments)
    assert rounds == [False] * 8 + [True]
    loaded = CheckpointStore(redis_client, keys).load(topic)
    assert loaded is not None
    assert dict(loaded.aggregator.numbers.items()) == dict(state.numbers.items())


def test_an_unreadable_stored_document_is_replaced(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given a stored checkpoint document that is not zlib JSON
    When a new process checkpoints
    Then it writes a checkpoint that loads, instead of failing on the old one."""
    keys = ReporterKeys(settings.key_prefix, settings.campaign)
    redis_client.set(keys.checkpoint, b"not a checkpoint")
    state = Aggregator()
    state.apply_all([outcome(NEAR, Outcome.NO_ANSWER)])
    assert CheckpointStore(redis_client, keys).save(
        Checkpoint(settings.outcomes_topic, state, {0: 1})
    )
    loaded = CheckpointStore(redis_client, keys).load(settings.outcomes_topic)
    assert loaded is not None and loaded.offsets == {0: 1}
