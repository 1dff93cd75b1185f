# The two commands of the README, plus the checks CI runs. Each target installs what it
# needs first (deploy/local/bootstrap.sh), so they work on a fresh machine.
PYTHON ?= python3
SOURCES = services tests benchmarks

.PHONY: bootstrap demo test test-cluster test-kafka-cluster chaos lint format docs clean bench

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

## The three-broker Kafka suite: brokers killed with SIGKILL, N assigners (starts the
## local three-broker Kafka if it is not running: docs/kafka-cluster.md).
test-kafka-cluster: bootstrap
	$(PYTHON) -m pytest -m kafka_cluster

## The chaos suite: one fault at a time on a private stack, each audited (slow: ~15 min).
chaos: bootstrap
	$(PYTHON) -m pytest -m chaos tests/chaos

## What CI checks before the tests: lint, formatting, strict types on everything.
lint: bootstrap
	ruff check $(SOURCES)
	ruff format --check $(SOURCES)
	mypy

## Rewrite the tree in the project's format (and apply ruff's safe fixes).
format: bootstrap
	ruff check --fix $(SOURCES)
	ruff format $(SOURCES)

## Regenerate every generated table: the README's settings, the protocol's scripts.
docs: bootstrap
	$(PYTHON) -m phonebank.local.docs .

## Remove caches and build output (not .stack/: `phonebank stack down` first, then rm it).
clean:
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.stack/*' -exec rm -rf {} +

## The benchmarks the README quotes (slow; run on purpose).
bench: bootstrap
	phonebank stack up
	$(PYTHON) benchmarks/ingest.py
	$(PYTHON) benchmarks/leases.py
	$(PYTHON) benchmarks/assign.py
	$(PYTHON) benchmarks/reporter.py
	$(PYTHON) benchmarks/audit.py
	$(PYTHON) benchmarks/gateway.py
