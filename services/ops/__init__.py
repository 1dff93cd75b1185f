"""Operator commands run beside the services: rebuild from Kafka, the do-not-call list."""
