"""`phonebank stack`: idempotent up, down leaves nothing behind, clear one-line errors.

These tests run a second, private stack on other ports and folder, so the session's
stack is never disturbed; its jars are linked from the session stack (no download).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonebank.local import stack
from phonebank.local.stack_settings import StackSettings

#: added to each of the session stack's ports to give the private stack's (29092, 29093 and
#: 26379 by default), so sessions with stacks of their own never share a private port
PRIVATE_PORT_OFFSET = 10_000


def _ports(settings: StackSettings) -> tuple[int, int, int]:
    return settings.stack_kafka_port, settings.stack_controller_port, settings.stack_redis_port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not stack.reap_child(pid)


@pytest.fixture
def private_settings(
    local_stack: object, stack_settings: StackSettings, tmp_path: Path
) -> Iterator[StackSettings]:
    root = tmp_path / "stack"
    root.mkdir()
    (root / "jars").symlink_to(stack.stack_paths(stack_settings).jars)
    ports = ("stack_kafka_port", "stack_controller_port", "stack_redis_port")
    private = stack_settings.model_copy(
        update={"stack_dir": root}
        | {port: getattr(stack_settings, port) + PRIVATE_PORT_OFFSET for port in ports}
    )
    yield private
    stack.down(private)


def test_up_twice_then_down_leaves_no_process(private_settings: StackSettings) -> None:
    # Given a stopped private stack
    paths = stack.stack_paths(private_settings)
    # When it is brought up twice
    first = stack.up(private_settings)
    pids = {name: stack.read_pid(paths, name) for name in ("kafka", "redis")}
    second = stack.up(private_settings)
    # Then the second call starts nothing and both answer
    assert (first, second) == (True, False)
    assert {name: stack.read_pid(paths, name) for name in pids} == pids
    assert stack.kafka_ready(private_settings) and stack.redis_ready(private_settings)
    # When it is brought down
    assert sorted(stack.down(private_settings)) == ["kafka", "redis"]
    # Then no process of ours is left and the ports are free
    assert all(pid is not None and not _alive(pid) for pid in pids.values())
    assert not any(stack.port_open(port) for port in _ports(private_settings))
    assert stack.status(private_settings) == {"redis": "stopped", "kafka": "stopped"}


def test_port_taken_by_a_stranger_is_a_one_line_error(private_settings: StackSettings) -> None:
    # Given something else listening on the private Redis port
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", private_settings.stack_redis_port))
        squatter.listen()
        # When the stack is brought up, Then the error names the port and the variable
        with pytest.raises(stack.StackError) as error:
            stack.up(private_settings)
    message = str(error.value)
    assert "\n" not in message
    assert str(private_settings.stack_redis_port) in message
    assert "PHONEBANK_STACK_REDIS_PORT" in message


def test_missing_tool_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a PATH without redis-server
    monkeypatch.setattr(shutil, "which", lambda name: None)
    # When it is required, Then the error says which package to install
    with pytest.raises(stack.StackError, match="apt-get install redis-server"):
        stack.require_tool("redis-server")


def test_a_cluster_id_beginning_with_a_dash_formats(
    private_settings: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a random cluster id that begins with "-" (1 in 64 of them: URL-safe base64)
    dashed = "-" + "A" * 21
    monkeypatch.setattr(stack, "new_cluster_id", lambda: dashed)
    paths = stack.stack_paths(private_settings)
    paths.kafka_data.mkdir(parents=True, exist_ok=True)
    paths.logs.mkdir(parents=True, exist_ok=True)
    config = stack.render_server_properties(private_settings, paths)
    # When the storage is formatted with it
    stack.format_storage(private_settings, paths, config)
    # Then Kafka's tool took it as the id, not as an unknown option
    assert f"cluster.id={dashed}" in (paths.kafka_data / "meta.properties").read_text()
