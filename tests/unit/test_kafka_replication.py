"""Replication of the topics phonebank creates: fitted to the cluster unless set."""

from __future__ import annotations

import pytest

from phonebank.infra.kafka import ReplicationError, replication_for
from phonebank.settings import Settings, SettingsError, load_settings


def test_one_broker_gets_one_replica_three_get_three_with_two_in_sync() -> None:
    """Given the automatic settings (0 and 0),
    When topics are created on 1, 2, 3 and 5 brokers,
    Then they get 1/1, 1/1, 3/2 and 3/2 replicas/min.insync.replicas."""
    settings = load_settings()
    assert [replication_for(settings, brokers) for brokers in (1, 2, 3, 5)] == [
        (1, 1),
        (1, 1),
        (3, 2),
        (3, 2),
    ]


def test_explicit_settings_win_and_are_bounded_by_the_replicas() -> None:
    """Given explicit replication settings,
    When topics are created,
    Then the settings are used, min ISR at most the replicas, and more replicas than
    brokers is refused with the variable named."""
    settings = Settings(kafka_replication_factor=2)
    assert replication_for(settings, 3) == (2, 1)
    assert replication_for(Settings(kafka_min_insync_replicas=3), 3) == (3, 3)
    assert replication_for(Settings(kafka_min_insync_replicas=2), 1) == (1, 1)
    with pytest.raises(ReplicationError, match="PHONEBANK_KAFKA_REPLICATION_FACTOR=2"):
        replication_for(settings, 1)


def test_min_insync_above_the_replication_factor_is_refused() -> None:
    """Given min.insync.replicas 3 with replication factor 2, Then the settings are refused."""
    with pytest.raises(SettingsError, match="kafka_min_insync_replicas"):
        load_settings(kafka_replication_factor=2, kafka_min_insync_replicas=3)
