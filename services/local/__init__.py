"""The local stack (real Kafka + Redis on loopback) and the demo; never imported by a service."""
