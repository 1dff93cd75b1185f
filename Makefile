# The two commands of the README, plus the checks CI runs. Each target installs what it
# needs first (deploy/local/bootstrap.sh), so they work on a fresh machine.
PYTHON ?= python3

.PHONY: bootstrap demo test test-cluster lint bench

bootstrap:
	@bash deploy/local/bootstrap.sh

## The main job: the whole pipeline on the local stack (real Kafka + Redis).
demo: bootstrap
	phonebank demo

## The test suite (brings the local stack up if it is not running).
test: bootstrap
	$(PYTHON) -m pytest

## The Redis Cluster suite (starts the local cluster if it is not running: docs/redis-cluster.md).
test-cluster: bootstrap
	$(PYTHON) -m pytest -m cluster

lint: bootstrap
	ruff check services tests benchmarks
	mypy

## The benchmarks the README quotes (slow; run on purpose).
bench: bootstrap
	phonebank stack up
	$(PYTHON) benchmarks/ingest.py
	$(PYTHON) benchmarks/leases.py
	$(PYTHON) benchmarks/assign.py
	$(PYTHON) benchmarks/reporter.py
