"""phonebank: a distributed phone bank (ingest → Kafka → assigner → Redis leases → reporter)."""

__version__ = "0.1.0"
