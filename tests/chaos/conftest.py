"""The chaos suite's private stack (its own Kafka and Redis, killed at will) and table.

Faults kill the broker and Redis, so the suite never runs on the shared local stack:
it starts its own on the ports below, in ``.stack/chaos``, and stops it at the end. Each
scenario adds a row to the table printed after the run (and written to
``.stack/chaos/table.md``), the one the README quotes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonebank.local import stack
from phonebank.local.demo_services import phonebank
from phonebank.local.stack_settings import StackSettings, load_stack_settings
from phonebank.settings import Settings, child_env, load_settings
from tests.chaos.campaign import SCENARIO_NUMBERS
from tests.chaos.table import ROWS, render
from tests.conftest import REPO, SHARED_REGISTRY

#: the private stack's ports (the shared one uses 19092/19093/16379)
CHAOS_KAFKA_PORT = 28092
CHAOS_CONTROLLER_PORT = 28093
CHAOS_REDIS_PORT = 28379
#: MiB of heap for the private broker
CHAOS_KAFKA_HEAP_MB = 384
#: seed of the scenario numbers drawn from the registry
NUMBERS_SEED = 11


@pytest.fixture(scope="session")
def chaos_stack() -> Iterator[StackSettings]:
    """A private Kafka + Redis for the chaos suite, stopped afterwards."""
    settings = load_stack_settings(
        stack_dir=REPO / ".stack" / "chaos",
        stack_kafka_port=CHAOS_KAFKA_PORT,
        stack_controller_port=CHAOS_CONTROLLER_PORT,
        stack_redis_port=CHAOS_REDIS_PORT,
        stack_kafka_heap_mb=CHAOS_KAFKA_HEAP_MB,
    )
    stack.up(settings)
    yield settings
    stack.down(settings)
    (settings.stack_dir / "table.md").write_text(render(ROWS))


@pytest.fixture(scope="session")
def chaos_base(chaos_stack: StackSettings) -> Settings:
    """The services' settings pointed at the private stack and the shared registry."""
    update: dict[str, object] = {
        "kafka_bootstrap_servers": f"127.0.0.1:{CHAOS_KAFKA_PORT}",
        "redis_url": f"redis://127.0.0.1:{CHAOS_REDIS_PORT}/0",
        "redis_cluster": False,
    }
    if SHARED_REGISTRY.exists():
        update["numbering_plan"] = [str(SHARED_REGISTRY)]
    return load_settings().model_copy(update=update)


@pytest.fixture(scope="session")
def numbers_file(chaos_base: Settings, chaos_stack: StackSettings) -> Path:
    """One file of numbers from the numbering plan, ingested by every scenario."""
    path = chaos_stack.stack_dir / "numbers.txt"
    with path.open("wb") as out:
        subprocess.run(
            phonebank("generate", "--count", str(SCENARIO_NUMBERS), "--seed", str(NUMBERS_SEED)),
            env=child_env(chaos_base),
            stdout=out,
            check=True,
        )
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The scenario table after the run."""
    if ROWS:
        terminalreporter.write_sep("=", "chaos table")
        terminalreporter.write_line(render(ROWS))
