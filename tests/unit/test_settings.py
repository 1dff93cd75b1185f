"""Settings: typed, documented, failing at start with the variable's name."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from phonebank.local import docs
from phonebank.settings import (
    Settings,
    SettingsError,
    load_settings,
    markdown_table,
    mask_dsn,
    namespaced,
    settings_env,
)


def test_every_field_is_documented() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert missing == []


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given variables with the PHONEBANK_ prefix
    monkeypatch.setenv("PHONEBANK_LEASE_TTL_SECONDS", "60")
    monkeypatch.setenv("PHONEBANK_REGIONS_EXCLUDE", "UA-43, UA-40")
    monkeypatch.setenv("PHONEBANK_CALLING_WINDOW_START", "10:30")
    # When the settings are loaded
    settings = load_settings()
    # Then they are typed
    assert settings.lease_ttl_seconds == 60
    assert settings.regions_exclude == ["UA-43", "UA-40"]
    assert settings.calling_window_start == dt.time(10, 30)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PHONEBANK_LEASE_TTL_SECONDS", "soon"),
        ("PHONEBANK_REDIS_URL", "http://example"),
        ("PHONEBANK_KAFKA_BOOTSTRAP_SERVERS", "nohostport"),
        ("PHONEBANK_CALLING_DAYS", "mon,funday"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_inconsistent_watermarks_are_refused() -> None:
    with pytest.raises(SettingsError, match="queue_low_watermark"):
        load_settings(queue_low_watermark=10, queue_high_watermark=5)


def test_masked_hides_secrets() -> None:
    settings = load_settings(redis_url="redis://user:hunter2@db:6379/0")
    shown = settings.masked()
    assert "hunter2" not in str(shown)
    assert shown["volunteer_secret"] == "***"
    assert mask_dsn("redis://db:6379/0") == "redis://db:6379/0"


def test_readme_configuration_table_is_current() -> None:
    # Given the README, When its settings tables are generated again, Then nothing changes
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown_table() in readme
    assert docs.rewrite_readme(readme) == readme, "README settings are stale: make docs"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"redis_url": "redis://a:1,redis://b:2"}, "needs PHONEBANK_REDIS_CLUSTER=true"),
        ({"redis_url": "redis://a:1/2,redis://b:2", "redis_cluster": True}, "db 0"),
        ({"redis_url": "unix:///tmp/redis.sock", "redis_cluster": True}, "host:port"),
        (
            {"redis_url": "redis://:x@a:1,rediss://:x@b:2", "redis_cluster": True},
            "same scheme and credentials",
        ),
    ],
)
def test_a_malformed_redis_cluster_url_is_refused(
    overrides: dict[str, object], message: str
) -> None:
    # Given a Redis setting that cannot describe one node or one cluster
    # When it is loaded, Then it is refused, naming PHONEBANK_REDIS_URL
    with pytest.raises(SettingsError, match="PHONEBANK_REDIS_URL") as error:
        load_settings(**overrides)
    assert message in str(error.value)


def test_a_cluster_seed_list_is_accepted_and_masked() -> None:
    # Given seeds of one cluster with one password
    settings = load_settings(
        redis_url="redis://:pw@10.0.0.1:6379, redis://:pw@10.0.0.2:6379/0", redis_cluster=True
    )
    # When shown, Then every password is masked
    assert (
        settings.masked()["redis_url"] == "redis://:***@10.0.0.1:6379,redis://:***@10.0.0.2:6379/0"
    )


def test_settings_env_gives_a_child_exactly_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given namespaced settings with lists, times, a flag and a secret changed,
    When a process loads its settings from their environment,
    Then it has exactly those settings, and every topic and group is the namespace's."""
    base = load_settings(volunteer_secret="s" * 40)
    mine = namespaced(
        base,
        "tenv",
        regions_exclude=["UA-43", "UA-40"],
        calling_window_start="10:30",
        redis_cluster=False,
        gateway_port=0,
    )
    for name, value in settings_env(mine).items():
        monkeypatch.setenv(name, value)
    assert load_settings() == mine
    assert {mine.numbers_topic, mine.outcomes_topic, mine.dnc_topic} == {
        "tenv.numbers",
        "tenv.outcomes",
        "tenv.dnc",
    }
    assert (mine.key_prefix, mine.assigner_group, mine.reporter_group) == (
        "tenv",
        "tenv-assigner",
        "tenv-reporter",
    )
