"""The local three-broker Kafka of ``phonebank stack up --kafka-brokers 3``: a KRaft quorum.

Three ``kafka.Kafka`` JVMs from the stack's jars (the single broker's), each a broker and
a voter of a static controller quorum (KRaft combined mode), on loopback: broker ports
``stack_kafka_cluster_port`` … +2, controller ports ``stack_kafka_cluster_controller_port``
… +2, heap ``stack_kafka_cluster_heap_mb`` each, config and data under
``<stack_dir>/kafka-cluster/<node id>/``. Every node is formatted once with one shared
cluster id (``kafka-cluster/cluster.id``). The shipped template
(``deploy/local/server-cluster.properties.template``) replicates everything 3 times
with ``min.insync.replicas=2``: one node may die and acknowledged writes survive.
Readiness: every broker's port accepts connections and an admin call sees all three
registered and unfenced. ``stack down`` stops the
nodes with the rest of the stack (ordinary pid files of the stack folder).

Also the fault tests' handles: :func:`kill_broker` (SIGKILL, no clean shutdown),
:func:`start_broker` and :func:`fully_replicated`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from phonebank.local.stack import (
    DEPLOY_LOCAL,
    PROBE_INTERVAL_SECONDS,
    READY_TIMEOUT_SECONDS,
    Paths,
    StackError,
    check_port_free,
    cluster_id_argument,
    fetch_jars,
    java_command,
    new_cluster_id,
    port_open,
    read_pid,
    require_tool,
    spawn,
    stack_paths,
    stop_process,
)
from phonebank.local.stack_settings import StackSettings
from phonebank.settings import Settings

#: brokers of the local cluster, each also a controller (node ids 1 … BROKERS)
BROKERS = 3
#: milliseconds an admin probe waits for an answer
PROBE_TIMEOUT_MS = 3000
#: JVM options of each broker: three JVMs share two cores with everything else, so the
#: quick client compiler only (a broker restarted by a fault test is back ~30% sooner
#: under load) and one GC thread each
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:ParallelGCThreads=1", "-XX:ConcGCThreads=1")


def node_ids() -> list[int]:
    """The node id of every broker."""
    return list(range(1, BROKERS + 1))


def broker_port(settings: StackSettings, node: int) -> int:
    """The client (PLAINTEXT) port of broker ``node``."""
    return settings.stack_kafka_cluster_port + node - 1


def controller_port(settings: StackSettings, node: int) -> int:
    """The KRaft controller port of node ``node``."""
    return settings.stack_kafka_cluster_controller_port + node - 1


def process_name(node: int) -> str:
    """The stack's name for broker ``node`` (its pid and log file)."""
    return f"kafka-broker-{node}"


def bootstrap_servers(settings: StackSettings) -> str:
    """``PHONEBANK_KAFKA_BOOTSTRAP_SERVERS`` for the local cluster: every broker."""
    return ",".join(f"127.0.0.1:{broker_port(settings, node)}" for node in node_ids())


def cluster_settings(settings: Settings, stack: StackSettings) -> Settings:
    """``settings`` pointed at the local three-broker Kafka of ``stack``."""
    return settings.model_copy(update={"kafka_bootstrap_servers": bootstrap_servers(stack)})


def node_dir(paths: Paths, node: int) -> Path:
    """Config and data folder of node ``node``."""
    return paths.root / "kafka-cluster" / str(node)


def render_config(settings: StackSettings, paths: Paths, node: int) -> Path:
    """Write node ``node``'s server.properties from the shipped template."""
    voters = ",".join(
        f"{other}@127.0.0.1:{controller_port(settings, other)}" for other in node_ids()
    )
    text = (DEPLOY_LOCAL / "server-cluster.properties.template").read_text()
    for name, value in {
        "NODE_ID": str(node),
        "VOTERS": voters,
        "KAFKA_PORT": str(broker_port(settings, node)),
        "CONTROLLER_PORT": str(controller_port(settings, node)),
        "DATA_DIR": str(node_dir(paths, node) / "data"),
    }.items():
        text = text.replace(f"@{name}@", value)
    target = node_dir(paths, node) / "server.properties"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def cluster_id(paths: Paths) -> str:
    """The cluster id all three nodes are formatted with (made once, then kept)."""
    stored = paths.root / "kafka-cluster" / "cluster.id"
    if not stored.exists():
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_text(new_cluster_id())
    return stored.read_text().strip()


def format_node(settings: StackSettings, paths: Paths, node: int, config: Path) -> None:
    """Format node ``node``'s storage once (static quorum: no ``--standalone``)."""
    if (node_dir(paths, node) / "data" / "meta.properties").exists():
        return
    command = java_command(
        settings,
        paths,
        "kafka.tools.StorageTool",
        "format",
        cluster_id_argument(cluster_id(paths)),
        "-c",
        str(config),
        heap_mb=settings.stack_kafka_cluster_heap_mb,
        jvm_options=JVM_OPTIONS,
    )
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"kafka node {node} storage format failed: {result.stderr[-300:]}")


def start_broker(settings: StackSettings, node: int) -> bool:
    """Start broker ``node`` unless it runs already; True if it started."""
    paths = stack_paths(settings)
    if read_pid(paths, process_name(node)) is not None:
        return False
    for port, variable in (
        (broker_port(settings, node), "PHONEBANK_STACK_KAFKA_CLUSTER_PORT"),
        (controller_port(settings, node), "PHONEBANK_STACK_KAFKA_CLUSTER_CONTROLLER_PORT"),
    ):
        check_port_free(port, "the Kafka cluster", variable)
    require_tool("java")
    config = render_config(settings, paths, node)
    format_node(settings, paths, node, config)
    heap = settings.stack_kafka_cluster_heap_mb
    command = java_command(
        settings, paths, "kafka.Kafka", str(config), heap_mb=heap, jvm_options=JVM_OPTIONS
    )
    spawn(paths, process_name(node), command)
    return True


def kill_broker(settings: StackSettings, node: int) -> None:
    """SIGKILL broker ``node`` (no clean shutdown) and wait until it is gone."""
    paths = stack_paths(settings)
    pid = read_pid(paths, process_name(node))
    if pid is None:
        raise StackError(f"{process_name(node)} is not running")
    os.killpg(pid, signal.SIGKILL)
    wait_until(f"{process_name(node)} to exit", lambda: read_pid(paths, process_name(node)) is None)
    paths.pid(process_name(node)).unlink(missing_ok=True)


def _admin(settings: StackSettings) -> KafkaAdminClient | None:
    """An admin client on the brokers that accept connections, or None."""
    servers = [
        f"127.0.0.1:{broker_port(settings, node)}"
        for node in node_ids()
        if port_open(broker_port(settings, node))
    ]
    if not servers:
        return None
    try:
        return KafkaAdminClient(
            bootstrap_servers=servers,
            request_timeout_ms=PROBE_TIMEOUT_MS,
            client_id="phonebank-stack-probe",
        )
    except (KafkaError, OSError, ValueError):
        return None


def _ask(settings: StackSettings, question: Callable[[KafkaAdminClient], Any]) -> Any:
    """``question(admin)``, or None when no broker answers."""
    admin = _admin(settings)
    if admin is None:
        return None
    try:
        return question(admin)
    except (KafkaError, OSError, ValueError):
        return None
    finally:
        admin.close()


def registered_brokers(settings: StackSettings) -> set[int]:
    """Node ids of the unfenced brokers the cluster metadata lists (empty when none
    answers)."""
    cluster = _ask(settings, lambda admin: admin.describe_cluster())
    brokers = (cluster or {}).get("brokers", ())
    return {int(broker["broker_id"]) for broker in brokers if not broker.get("is_fenced")}


def cluster_ready(settings: StackSettings) -> bool:
    """Every broker accepts connections (a broker opens its port once it has caught up
    with the cluster metadata) and is registered unfenced (a broker just restarted may
    still be listed from before it died: the open port tells them apart)."""
    if not all(port_open(broker_port(settings, node)) for node in node_ids()):
        return False
    return registered_brokers(settings) == set(node_ids())


def existing_topics(settings: StackSettings) -> set[str]:
    """The topics of the cluster (empty when no broker answers)."""
    return set(_ask(settings, lambda admin: admin.list_topics()) or ())


def partitions_of(settings: StackSettings, topics: Sequence[str]) -> list[dict[str, Any]]:
    """The partition metadata (``leader_id``, ``isr_nodes`` …) of ``topics``."""
    described = _ask(settings, lambda admin: admin.describe_topics(list(topics))) or []
    return [partition for topic in described for partition in topic.get("partitions", ())]


def fully_replicated(settings: StackSettings, topics: Sequence[str]) -> bool:
    """Every partition of ``topics`` has all its replicas in sync and a leader."""
    partitions = partitions_of(settings, topics)
    return bool(partitions) and all(
        p["leader_id"] >= 0 and len(p["isr_nodes"]) == len(p["replica_nodes"]) for p in partitions
    )


def leader_of(settings: StackSettings, topic: str, partition: int) -> int:
    """The node id leading ``topic``/``partition``."""
    for described in _ask(settings, lambda admin: admin.describe_topics([topic])) or []:
        for meta in described.get("partitions", ()):
            if meta["partition_index"] == partition and meta["leader_id"] >= 0:
                return int(meta["leader_id"])
    raise StackError(f"{topic}/{partition} has no leader")


def wait_until(what: str, check: Callable[[], bool]) -> None:
    """Probe ``check`` until it holds; a :class:`StackError` after the ready timeout."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise StackError(f"Kafka cluster: waited {READY_TIMEOUT_SECONDS:.0f}s for {what}")
        time.sleep(PROBE_INTERVAL_SECONDS)


def wait_ready(settings: StackSettings) -> None:
    """Wait until all three brokers are registered; a node that exits is an error."""
    paths = stack_paths(settings)

    def ready() -> bool:
        for node in node_ids():
            if read_pid(paths, process_name(node)) is None:
                log = paths.log(process_name(node))
                raise StackError(f"Kafka broker {node} exited while starting; see {log}")
        return cluster_ready(settings)

    wait_until("all three brokers to register", ready)


def up(settings: StackSettings) -> bool:
    """Start the brokers that are not running, wait until all are registered.
    Returns True if any started."""
    paths = stack_paths(settings)
    paths.logs.mkdir(parents=True, exist_ok=True)
    fetch_jars(paths)
    started = [start_broker(settings, node) for node in node_ids()]
    wait_ready(settings)
    return any(started)


def down(settings: StackSettings) -> list[str]:
    """Stop every broker of the local cluster; returns the names that were running."""
    paths = stack_paths(settings)
    return [name for name in map(process_name, node_ids()) if stop_process(paths, name)]


def status(settings: StackSettings) -> dict[str, str]:
    """``kafka-broker-N → 'ready (pid N)' | 'starting (pid N)' | 'stopped'``."""
    paths = stack_paths(settings)
    registered = registered_brokers(settings)
    report = {}
    for node in node_ids():
        pid = read_pid(paths, process_name(node))
        state = "ready" if node in registered else "starting"
        report[process_name(node)] = "stopped" if pid is None else f"{state} (pid {pid})"
    return report
