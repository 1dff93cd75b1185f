"""Settings of the local stack only (``PHONEBANK_STACK_*``): where it keeps its state, its ports.

They are not production settings: no service reads them. ``phonebank stack``, the demo
and the tests do; the services reach the stack through the ordinary connection settings
(``PHONEBANK_KAFKA_BOOTSTRAP_SERVERS``, ``PHONEBANK_REDIS_URL``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from phonebank.settings import ENV_PREFIX, SettingsError, env_name


class StackSettings(BaseSettings):
    """The local stack's knobs. Environment: ``PHONEBANK_<FIELD NAME IN CAPITALS>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", validate_default=True, frozen=True
    )

    stack_dir: Path = Field(
        Path(".stack"), description="Folder of the local stack's jars, data, logs and pids."
    )
    stack_kafka_port: int = Field(19092, ge=1, le=65535, description="Local Kafka port.")
    stack_controller_port: int = Field(
        19093, ge=1, le=65535, description="Local KRaft controller port."
    )
    stack_redis_port: int = Field(16379, ge=1, le=65535, description="Local Redis port.")
    stack_kafka_heap_mb: int = Field(
        512, ge=128, le=8192, description="Local Kafka JVM heap (MiB)."
    )
    stack_redis_cluster_port: int = Field(
        17001,
        ge=1,
        le=65529,
        description="First of the 6 client ports of `phonebank stack up --redis-cluster` "
        "(3 masters, 3 replicas).",
    )
    stack_redis_cluster_bus_port: int = Field(
        17101,
        ge=1,
        le=65529,
        description="First of the 6 cluster bus ports of the local Redis Cluster.",
    )

    stack_kafka_cluster_port: int = Field(
        19101,
        ge=1,
        le=65533,
        description="First of the 3 broker ports of `phonebank stack up --kafka-brokers 3`.",
    )
    stack_kafka_cluster_controller_port: int = Field(
        19111,
        ge=1,
        le=65533,
        description="First of the 3 KRaft controller ports of the local three-broker Kafka.",
    )
    stack_kafka_cluster_heap_mb: int = Field(
        320, ge=128, le=8192, description="JVM heap of each broker of the three (MiB)."
    )


def load_stack_settings(**overrides: Any) -> StackSettings:
    """Read the stack settings; an invalid value raises :class:`SettingsError` naming it."""
    try:
        return StackSettings(**overrides)
    except ValidationError as exc:
        problems = [
            f"{env_name(str(error['loc'][0])) if error['loc'] else 'stack'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
