"""Adapters without phonebank rules: Kafka, the metric catalogue and /metrics server, shutdown."""
