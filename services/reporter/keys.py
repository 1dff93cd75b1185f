"""The reporter's own Redis keys (state checkpoint, active-volunteer HyperLogLogs).

Same style as :mod:`phonebank.core.keys`: ``{prefix}:c:{campaign}:report:...``. The
reporter's keys share one hash tag per campaign, ``{rep:CAMPAIGN}``, so that a
``PFCOUNT`` over many time buckets touches one Redis Cluster slot. The assigner's
``ingested`` hash is read here too (the assigner writes it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReporterKeys:
    """The keys the reporter reads and writes for one campaign."""

    prefix: str
    campaign: str

    def _key(self, name: str) -> str:
        return f"{self.prefix}:c:{self.campaign}:report:{{rep:{self.campaign}}}:{name}"

    @property
    def checkpoint(self) -> str:
        """STRING: zlib-compressed JSON of the aggregate state and its Kafka offsets."""
        return self._key("checkpoint")

    def volunteers_minute(self, minute: int) -> str:
        """HYPERLOGLOG of volunteer hashes with an outcome in one epoch minute."""
        return self._key(f"vol:m:{minute}")

    def volunteers_hour(self, hour: int) -> str:
        """HYPERLOGLOG of volunteer hashes with an outcome in one epoch hour."""
        return self._key(f"vol:h:{hour}")

    @property
    def ingested(self) -> str:
        """HASH region → distinct numbers newly accepted (written by the assigner)."""
        return f"{self.prefix}:c:{self.campaign}:ingested"
