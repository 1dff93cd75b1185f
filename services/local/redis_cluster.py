"""The local Redis Cluster of ``phonebank stack up --redis-cluster``: 3 masters, 3 replicas.

Six OS ``redis-server --cluster-enabled yes`` processes on loopback, client ports
``stack_redis_cluster_port`` … +5 and bus ports ``stack_redis_cluster_bus_port`` … +5,
each with the shipped ``deploy/local/redis.conf`` (AOF everysec, noeviction) and its data
under ``<stack_dir>/redis-cluster/<port>/``. The first start joins them with
``redis-cli --cluster create … --cluster-replicas 1 --cluster-yes``; later starts find
the cluster in each node's ``nodes.conf``. Readiness: every node says
``cluster_state:ok`` and every master has a replica. ``stack down`` stops the nodes
with the rest of the stack (they are ordinary pid files of the stack folder).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import redis

from phonebank.local.stack import (
    DEPLOY_LOCAL,
    PROBE_INTERVAL_SECONDS,
    READY_TIMEOUT_SECONDS,
    Paths,
    StackError,
    check_port_free,
    read_pid,
    redis_answers,
    require_tool,
    spawn,
    stack_paths,
    stop_process,
)
from phonebank.local.stack_settings import StackSettings
from phonebank.settings import Settings

#: redis-server processes of the local cluster: 3 masters, each with 1 replica
NODES = 6
#: replicas per master (``redis-cli --cluster create --cluster-replicas``)
REPLICAS_PER_MASTER = 1
#: milliseconds a master may be unreachable before its replica takes over
NODE_TIMEOUT_MS = 2000
#: hash slots of a Redis Cluster
SLOTS = 16384
#: seconds ``redis-cli --cluster create`` may take
CREATE_TIMEOUT_SECONDS = 60.0


def node_ports(settings: StackSettings) -> list[int]:
    """The client port of every node."""
    return [settings.stack_redis_cluster_port + index for index in range(NODES)]


def process_name(port: int) -> str:
    """The stack's name for the node on ``port`` (its pid and log file)."""
    return f"redis-cluster-{port}"


def seeds_url(settings: StackSettings) -> str:
    """``PHONEBANK_REDIS_URL`` for the local cluster: every node as a seed."""
    return ",".join(f"redis://127.0.0.1:{port}" for port in node_ports(settings))


def cluster_settings(settings: Settings, stack: StackSettings) -> Settings:
    """``settings`` pointed at the local cluster of ``stack``."""
    return settings.model_copy(update={"redis_url": seeds_url(stack), "redis_cluster": True})


def _node(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, decode_responses=True)


def start_node(settings: StackSettings, paths: Paths, index: int) -> None:
    """Start one node unless it runs already."""
    port = node_ports(settings)[index]
    name = process_name(port)
    if read_pid(paths, name) is not None:
        return
    check_port_free(port, "Redis Cluster", "PHONEBANK_STACK_REDIS_CLUSTER_PORT")
    bus = settings.stack_redis_cluster_bus_port + index
    check_port_free(bus, "Redis Cluster bus", "PHONEBANK_STACK_REDIS_CLUSTER_BUS_PORT")
    data = paths.root / "redis-cluster" / str(port)
    data.mkdir(parents=True, exist_ok=True)
    options = {
        "port": port,
        "cluster-port": bus,
        "dir": data,
        "cluster-enabled": "yes",
        "cluster-config-file": "nodes.conf",
        "cluster-node-timeout": NODE_TIMEOUT_MS,
        "daemonize": "no",
    }
    flags = [part for key, value in options.items() for part in (f"--{key}", str(value))]
    spawn(paths, name, [require_tool("redis-server"), str(DEPLOY_LOCAL / "redis.conf"), *flags])


def _wait(
    settings: StackSettings, paths: Paths, what: str, check: Callable[[StackSettings], bool]
) -> None:
    """Wait until ``check`` holds; a node that exits meanwhile is an error."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not check(settings):
        for port in node_ports(settings):
            if read_pid(paths, process_name(port)) is None:
                log = paths.log(process_name(port))
                raise StackError(f"Redis Cluster node {port} exited; see {log}")
        if time.monotonic() > deadline:
            raise StackError(f"Redis Cluster: {what} after {READY_TIMEOUT_SECONDS:.0f}s")
        time.sleep(PROBE_INTERVAL_SECONDS)


def nodes_answer(settings: StackSettings) -> bool:
    """Every node answers PING."""
    return all(redis_answers(port) for port in node_ports(settings))


def cluster_info(port: int) -> dict[str, str]:
    """``CLUSTER INFO`` of one node (empty when it does not answer)."""
    client = _node(port)
    try:
        info = client.cluster("INFO")  # parsed into a dict by redis-py
    except redis.RedisError:
        return {}
    finally:
        client.close()
    return {str(key): str(value) for key, value in dict(info).items()}


def masters_with_replicas(port: int) -> int:
    """Masters that hold slots and have at least one connected replica, seen from ``port``."""
    client = _node(port)
    try:
        shards = client.cluster("SLOTS")
    except redis.RedisError:
        return 0
    finally:
        client.close()
    return len({tuple(shard[2][:2]) for shard in shards if len(shard) > 2 + REPLICAS_PER_MASTER})


def cluster_ready(settings: StackSettings) -> bool:
    """Every node says ``cluster_state:ok`` with all slots assigned, and 3 masters each
    have a replica."""
    masters = NODES // (1 + REPLICAS_PER_MASTER)
    for port in node_ports(settings):
        info = cluster_info(port)
        if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
            return False
    return masters_with_replicas(node_ports(settings)[0]) == masters


def formed(settings: StackSettings) -> bool:
    """Whether the nodes already know each other (a cluster was created before)."""
    return cluster_info(node_ports(settings)[0]).get("cluster_known_nodes") == str(NODES)


def create(settings: StackSettings) -> None:
    """``redis-cli --cluster create`` over the six nodes, one replica per master."""
    addresses = [f"127.0.0.1:{port}" for port in node_ports(settings)]
    result = subprocess.run(
        [
            require_tool("redis-cli"),
            "--cluster",
            "create",
            *addresses,
            "--cluster-replicas",
            str(REPLICAS_PER_MASTER),
            "--cluster-yes",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=CREATE_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-2:]
        raise StackError("redis-cli --cluster create failed: " + " | ".join(tail))


def up(settings: StackSettings) -> bool:
    """Start the nodes that are not running, form the cluster once, wait until ready.
    Returns True if any node started."""
    paths = stack_paths(settings)
    paths.logs.mkdir(parents=True, exist_ok=True)
    names = [process_name(port) for port in node_ports(settings)]
    running = [read_pid(paths, name) is not None for name in names]
    for index in range(NODES):
        start_node(settings, paths, index)
    _wait(settings, paths, "a node does not answer PING", nodes_answer)
    if not formed(settings):
        create(settings)
    _wait(settings, paths, "cluster_state is not ok", cluster_ready)
    return not all(running)


def down(settings: StackSettings) -> list[str]:
    """Stop every node of the local cluster; returns the names that were running."""
    paths = stack_paths(settings)
    return [name for name in map(process_name, node_ports(settings)) if stop_process(paths, name)]


def status(settings: StackSettings) -> dict[str, str]:
    """``redis-cluster-PORT → 'ready (pid N)' | 'starting (pid N)' | 'stopped'``."""
    paths = stack_paths(settings)
    report = {}
    for port in node_ports(settings):
        pid = read_pid(paths, process_name(port))
        ok = cluster_info(port).get("cluster_state") == "ok"
        state = "stopped" if pid is None else f"{'ready' if ok else 'starting'} (pid {pid})"
        report[process_name(port)] = state
    return report
