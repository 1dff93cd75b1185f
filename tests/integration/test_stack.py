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
from phonebank.settings import Settings

def _private_ports() -> dict[str, int]:
    """Ports of the private stack: free ones the kernel picks, so that no other stack on
    the machine (a session's 2K092/2K379…) can collide with them."""
    sockets = [socket.socket() for _ in range(3)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    names = ("stack_kafka_port", "stack_controller_port", "stack_redis_port")
    return dict(zip(names, ports, strict=True))


#: Ports of the private stack, away from the session stack's.
PRIVATE_PORTS = _private_ports()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not stack.reap_child(pid)


@pytest.fixture
def private_settings(local_stack: Settings, tmp_path: Path) -> Iterator[Settings]:
    root = tmp_path / "stack"
    root.mkdir()
    (root / "jars").symlink_to(stack.stack_paths(local_stack).jars)
    private = local_stack.model_copy(update={"stack_dir": root, **PRIVATE_PORTS})
    yield private
    stack.down(private)


def test_up_twice_then_down_leaves_no_process(private_settings: Settings) -> None:
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
    assert not any(stack.port_open(port) for port in PRIVATE_PORTS.values())
    assert stack.status(private_settings) == {"redis": "stopped", "kafka": "stopped"}


def test_port_taken_by_a_stranger_is_a_one_line_error(private_settings: Settings) -> None:
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
    assert str(private_settings.stack_redis_port) in message and "PHONEBANK_STACK_REDIS_PORT" in message


def test_missing_tool_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a PATH without redis-server
    monkeypatch.setattr(shutil, "which", lambda name: None)
    # When it is required, Then the error says which package to install
    with pytest.raises(stack.StackError, match="apt-get install redis-server"):
        stack.require_tool("redis-server")
