"""Settings: typed, documented, failing at start with the variable's name."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from phonebank.local.stack_settings import StackSettings
from phonebank.settings import (
    Settings,
    SettingsError,
    load_settings,
    markdown_table,
    mask_dsn,
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
    # Given the README, When the table is generated from the settings, Then it is in there
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown_table() in readme
    assert markdown_table(StackSettings) in readme, (
        "README table is stale: phonebank config --markdown"
    )
