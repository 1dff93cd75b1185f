"""The one typed settings object every service reads, from ``PHONEBANK_*`` variables.

Each field says its unit and default. Invalid values fail at start with a message
naming the environment variable (see :func:`load_settings`). A namespace of its own
(:func:`namespaced`) and the environment that hands settings to a child process
(:func:`settings_env`, :func:`child_env`) are built here too, once, for the tests, the
demo and the benchmarks.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: The prefix of every environment variable phonebank reads.
ENV_PREFIX = "PHONEBANK_"

#: Marker shown instead of a secret by :meth:`Settings.masked`.
MASK = "***"
#: Shown by :meth:`Settings.masked` for a secret still at its public default.
DEFAULT_MARK = "default"
#: The public default of ``PHONEBANK_VOLUNTEER_SECRET``: never accepted by a service.
INSECURE_DEFAULT = "change-me-in-production"
#: bytes: the shortest volunteer secret a service accepts
MIN_SECRET_BYTES = 32
#: a rate limit's notation: COUNT/UNIT, e.g. ``120/minute`` (gateway rate-limit settings)
RATE_NOTATION = r"^[1-9][0-9]{0,8}/(second|minute|hour|day)$"


class SettingsError(ValueError):
    """A setting is invalid; the message names the environment variable."""


def _split_csv(value: Any) -> Any:
    """Accept ``a,b,c`` from the environment for list fields."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Every knob of phonebank. Environment: ``PHONEBANK_<FIELD NAME IN CAPITALS>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", validate_default=True, frozen=True
    )

    # --- campaign -------------------------------------------------------------------
    campaign: str = Field(
        "default",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="Campaign id: namespace of queues, records and reports.",
    )
    key_prefix: str = Field(
        "pb",
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        description="Prefix of every Redis key (tests use one per test).",
    )

    # --- Kafka ----------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:19092", description="Kafka bootstrap servers, host:port[,host:port]."
    )
    numbers_topic: str = Field("phonebank.numbers", description="Topic of number chunks.")
    outcomes_topic: str = Field("phonebank.outcomes", description="Topic of outcome events.")
    dnc_topic: str = Field(
        "phonebank.dnc", description="Compacted topic of the operators' do-not-call numbers."
    )
    numbers_partitions: int = Field(
        96,
        ge=1,
        le=1024,
        description="Partitions of the numbers topic (count); at least the number of "
        "regions gives each region its own.",
    )
    outcomes_partitions: int = Field(
        6, ge=1, le=1024, description="Partitions of the outcomes topic (count)."
    )
    kafka_session_timeout_ms: int = Field(
        10_000,
        ge=6_000,
        le=300_000,
        description="Milliseconds without heartbeat before a dead consumer's partitions "
        "move to the others (ms).",
    )
    kafka_replication_factor: int = Field(
        0,
        ge=0,
        le=16,
        description="Replicas of each topic phonebank creates (count); 0: 3 when the "
        "cluster has at least 3 brokers, else 1 (docs/kafka-cluster.md).",
    )
    kafka_min_insync_replicas: int = Field(
        0,
        ge=0,
        le=16,
        description="min.insync.replicas of each topic phonebank creates (count); 0: 2 when "
        "the topic has 3 or more replicas, else 1. With acks=all a write needs this many.",
    )
    assigner_group: str = Field("phonebank-assigner", description="Assigner consumer group.")
    reporter_group: str = Field("phonebank-reporter", description="Reporter consumer group.")

    # --- Redis ----------------------------------------------------------------------
    redis_url: str = Field(
        "redis://127.0.0.1:16379/0",
        description="Redis DSN: redis[s]://[:password@]host:port/db; with PHONEBANK_REDIS_CLUSTER, "
        "a comma list of seed nodes redis[s]://[:password@]host:port (db 0).",
    )
    redis_cluster: bool = Field(
        False,
        description="Redis Cluster: PHONEBANK_REDIS_URL lists seed nodes, the client follows "
        "the cluster's slot map (docs/redis-cluster.md).",
    )

    # --- leases ---------------------------------------------------------------------
    lease_ttl_seconds: int = Field(
        900, ge=10, le=86_400, description="Seconds a lease lives without renew (seconds)."
    )
    lease_max_expiries: int = Field(
        3, ge=1, le=100, description="Expiries after which a number is parked (count)."
    )
    volunteer_max_leases: int = Field(
        1, ge=1, le=10, description="Concurrent leases per volunteer (count)."
    )
    volunteer_max_per_hour: int = Field(
        30, ge=1, le=100_000, description="Leases per volunteer per rolling hour (count)."
    )
    calling_window_start: dt.time = Field(
        dt.time(9, 0), description="Earliest callee-local time to call (HH:MM)."
    )
    calling_window_end: dt.time = Field(
        dt.time(21, 0), description="Callee-local time calls stop, exclusive (HH:MM)."
    )
    calling_days: CsvList = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        description="Callee-local weekdays on which calls are made (comma list).",
    )

    calling_hours_by_day: CsvList = Field(
        default_factory=list,
        description="Per-weekday hours replacing the window on those days, comma list of "
        "DAY=HH:MM-HH:MM (e.g. sat=10:00-20:00,sun=11:00-19:00).",
    )

    # --- queues ---------------------------------------------------------------------
    queue_high_watermark: int = Field(
        5000, ge=1, description="Ready numbers per region the assigner fills up to (count)."
    )
    queue_low_watermark: int = Field(
        1000, ge=0, description="Ready numbers per region below which it refills (count)."
    )

    # --- numbers --------------------------------------------------------------------
    numbering_plan: CsvList = Field(
        default_factory=list,
        description="Registry CSV files (Rossvyaz DEF/ABC format), comma list; "
        "empty = the shipped fixture.",
    )
    regions_include: CsvList = Field(
        default_factory=list, description="Region codes to call; empty = all (comma list)."
    )
    regions_exclude: CsvList = Field(
        default_factory=list, description="Region codes never to call (comma list)."
    )

    # --- services -------------------------------------------------------------------
    bind_address: str = Field(
        "127.0.0.1",
        description="Address the HTTP servers (/metrics, reporter, gateway) listen on; "
        "0.0.0.0 in containers.",
    )
    ingest_metrics_port: int = Field(9100, ge=0, le=65535, description="Ingest /metrics port.")
    assigner_metrics_port: int = Field(9101, ge=0, le=65535, description="Assigner /metrics port.")
    reporter_port: int = Field(9102, ge=0, le=65535, description="Reporter HTTP port.")
    gateway_port: int = Field(
        8080,
        ge=0,
        le=65535,
        description="Gateway HTTP port (volunteer lease API, volunteer page, /metrics).",
    )
    volunteer_token_ttl_seconds: int = Field(
        7 * 86_400,
        ge=60,
        le=366 * 86_400,
        description="Seconds a volunteer bearer token minted by `phonebank gateway token` "
        "stays valid (seconds).",
    )
    volunteer_token_max_ttl_seconds: int = Field(
        7 * 86_400,
        ge=60,
        le=366 * 86_400,
        description="Longest lifetime (exp - iat) of a volunteer token the gateway accepts "
        "or `phonebank gateway token` mints (seconds).",
    )
    volunteer_token_public_keys: CsvList = Field(
        default_factory=list,
        description="PEM files of Ed25519 or RSA public keys that verify EdDSA / RS256 "
        "volunteer tokens of an identity provider (comma list; kid = file name stem).",
    )
    volunteer_secret: SecretStr = Field(
        SecretStr(INSECURE_DEFAULT),
        description="HMAC key of volunteer tokens (HS256), volunteer hashes and lease tokens "
        f"(secret, at least {MIN_SECRET_BYTES} bytes; services refuse to start without it).",
    )
    gateway_rate_per_token: str = Field(
        "120/minute",
        pattern=RATE_NOTATION,
        description="Requests one volunteer token may make (COUNT/UNIT, a unit of second, "
        "minute, hour or day; e.g. 120/minute).",
    )
    gateway_rate_per_address: str = Field(
        "1200/minute",
        pattern=RATE_NOTATION,
        description="Requests one client address may make (COUNT/UNIT).",
    )
    gateway_auth_failures_per_address: str = Field(
        "20/minute",
        pattern=RATE_NOTATION,
        description="Failed authentications one client address may make (COUNT/UNIT).",
    )
    gateway_max_connections: int = Field(
        2048, ge=1, le=100_000, description="Open connections the gateway accepts (count)."
    )
    gateway_cors_origins: CsvList = Field(
        default_factory=list,
        description="Origins allowed to call /api/v1/ from a browser (comma list; none = "
        "same origin only).",
    )
    gateway_trusted_proxies: CsvList = Field(
        default_factory=list,
        description="Peer addresses whose X-Forwarded-For names the client (comma list).",
    )
    log_level: str = Field(
        "INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="Log level."
    )

    @field_validator(
        "numbering_plan",
        "volunteer_token_public_keys",
        "gateway_cors_origins",
        "gateway_trusted_proxies",
        "regions_include",
        "regions_exclude",
        "calling_days",
        "calling_hours_by_day",
        mode="before",
    )
    @classmethod
    def _lists_from_csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("calling_days")
    @classmethod
    def _known_days(cls, value: list[str]) -> list[str]:
        days = [day.lower()[:3] for day in value]
        unknown = sorted(set(days) - set(WEEKDAYS))
        if unknown:
            raise ValueError(f"unknown weekday(s) {unknown}; use {', '.join(WEEKDAYS)}")
        return days

    @field_validator("calling_hours_by_day")
    @classmethod
    def _day_hours(cls, value: list[str]) -> list[str]:
        for item in value:
            day_hours(item)
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_dsn(cls, value: str) -> str:
        for dsn in value.split(","):
            parts = urlsplit(dsn.strip())
            if parts.scheme not in {"redis", "rediss", "unix"}:
                raise ValueError("must start with redis://, rediss:// or unix://")
            if parts.scheme != "unix" and not parts.hostname:
                raise ValueError("needs a host, e.g. redis://127.0.0.1:6379/0")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _redis_topology(self) -> Settings:
        seeds = [urlsplit(dsn.strip()) for dsn in self.redis_url.split(",")]
        url, flag = env_name("redis_url"), env_name("redis_cluster")
        if not self.redis_cluster:
            if len(seeds) > 1:
                raise ValueError(f"{url}: a comma list of seed nodes needs {flag}=true")
            return self
        for seed in seeds:
            if seed.scheme == "unix" or seed.path.strip("/") not in {"", "0"}:
                raise ValueError(f"{url}: with {flag}=true each seed is host:port, db 0")
        if len({(seed.scheme, seed.username, seed.password) for seed in seeds}) > 1:
            raise ValueError(f"{url}: every cluster seed needs the same scheme and credentials")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.queue_low_watermark >= self.queue_high_watermark:
            raise ValueError("queue_low_watermark must be below queue_high_watermark")
        if self.calling_window_start >= self.calling_window_end:
            raise ValueError("calling_window_start must be before calling_window_end")
        replicas, min_isr = self.kafka_replication_factor, self.kafka_min_insync_replicas
        if replicas and min_isr > replicas:
            raise ValueError("kafka_min_insync_replicas must not exceed kafka_replication_factor")
        return self

    @property
    def bootstrap_servers(self) -> list[str]:
        """The bootstrap servers as a list, as kafka-python wants them."""
        return [server.strip() for server in self.kafka_bootstrap_servers.split(",")]

    def masked(self) -> dict[str, Any]:
        """The effective settings with secrets and DSN passwords replaced by ``***``."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump(mode="json").items():
            secret = getattr(self, name)
            if isinstance(secret, SecretStr):
                default = type(self).model_fields[name].default
                shown[name] = DEFAULT_MARK if secret == default else MASK
            elif name == "redis_url":
                shown[name] = mask_dsn(value)
            else:
                shown[name] = value
        return shown


#: Weekday names as ``calling_days`` takes them, Monday first (``date.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def day_hours(item: str) -> tuple[str, dt.time, dt.time]:
    """``"sat=10:00-20:00"`` → ``("sat", 10:00, 20:00)``; ValueError if malformed."""
    day, _, hours = item.partition("=")
    first, _, last = hours.partition("-")
    day = day.strip().lower()[:3]
    if day not in WEEKDAYS:
        raise ValueError(f"{item!r}: the day must be one of {', '.join(WEEKDAYS)}")
    try:
        start, end = dt.time.fromisoformat(first.strip()), dt.time.fromisoformat(last.strip())
    except ValueError:
        raise ValueError(f"{item!r} is not DAY=HH:MM-HH:MM") from None
    if start >= end:
        raise ValueError(f"{item!r}: the start must be before the end")
    return day, start, end


def mask_dsn(dsn: str) -> str:
    """Replace the password of a DSN (or of each DSN of a comma list) by ``***``."""
    if "," in dsn:
        return ",".join(mask_dsn(item.strip()) for item in dsn.split(","))
    parts = urlsplit(dsn)
    if not parts.password:
        return dsn
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:{MASK}@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def require_volunteer_secret(settings: Settings) -> str:
    """The volunteer secret; :class:`SettingsError` naming the variable while it is the
    public default or shorter than :data:`MIN_SECRET_BYTES` (every service that verifies
    or mints tokens or volunteer hashes calls this before it starts)."""
    secret = settings.volunteer_secret.get_secret_value()
    variable = env_name("volunteer_secret")
    if secret == INSECURE_DEFAULT:
        raise SettingsError(
            f"{variable} is the public default: set it to a secret of at least "
            f"{MIN_SECRET_BYTES} bytes, e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'"
        )
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(f"{variable} is shorter than {MIN_SECRET_BYTES} bytes")
    return secret


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; on an invalid value raise :class:`SettingsError` naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "settings"
            where = env_name(field) if field in Settings.model_fields else field
            problems.append(f"{where}: {error['msg']}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None


def namespaced(settings: Settings, namespace: str, **update: Any) -> Settings:
    """``settings`` with a namespace of their own, then ``update``: the Redis key prefix,
    every topic and every consumer group named after ``namespace`` (so a test, a demo or
    a benchmark shares no key, topic or group with anything else)."""
    own = {
        "key_prefix": namespace,
        "numbers_topic": f"{namespace}.numbers",
        "outcomes_topic": f"{namespace}.outcomes",
        "dnc_topic": f"{namespace}.dnc",
        "assigner_group": f"{namespace}-assigner",
        "reporter_group": f"{namespace}-reporter",
    }
    return Settings.model_validate({**settings.model_dump(), **own, **update})


def _env_value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``PHONEBANK_*`` variables that give a process exactly ``settings`` (the volunteer
    secret in clear: for a child's environment, never to print)."""
    env = {
        env_name(name): _env_value(value)
        for name, value in settings.model_dump(mode="json").items()
    }
    env[env_name("volunteer_secret")] = settings.volunteer_secret.get_secret_value()
    return env


def child_env(settings: Settings) -> dict[str, str]:
    """This process's environment with ``settings`` over it: a child ``phonebank`` process
    started with it runs on exactly these settings."""
    return {**os.environ, **settings_env(settings)}


def markdown_table(model: type[BaseSettings] = Settings) -> str:
    """The configuration table of the README, generated from the fields of ``model``."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    defaults = model.model_construct()
    for name, field in model.model_fields.items():
        default = getattr(defaults, name)
        if isinstance(default, SecretStr):
            shown = MASK
        elif isinstance(default, list):
            shown = ",".join(default)
        elif isinstance(default, dt.time):
            shown = default.strftime("%H:%M")
        else:
            shown = str(default)
        rows.append(f"| `{env_name(name)}` | `{shown}` | {field.description} |")
    return "\n".join(rows)
