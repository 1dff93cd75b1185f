"""The local three-broker Kafka's configuration: ports, voters, replication (no JVM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonebank.cli import build_parser
from phonebank.local import kafka_cluster
from phonebank.local.stack import stack_paths
from phonebank.local.stack_settings import load_stack_settings


def properties(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_each_node_is_a_broker_and_a_voter_of_the_same_quorum(tmp_path: Path) -> None:
    """Given the default stack ports and a stack folder,
    When node 2's config is rendered,
    Then it listens on 19102 (controller 19112), votes in a quorum of 1@19111, 2@19112,
    3@19113, keeps its data in its own folder and replicates everything 3 times with 2
    in sync; the bootstrap list names the three brokers."""
    settings = load_stack_settings(stack_dir=tmp_path)
    config = properties(kafka_cluster.render_config(settings, stack_paths(settings), 2))
    assert config["node.id"] == "2"
    assert config["process.roles"] == "broker,controller"
    assert config["controller.quorum.voters"] == (
        "1@127.0.0.1:19111,2@127.0.0.1:19112,3@127.0.0.1:19113"
    )
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19102,CONTROLLER://127.0.0.1:19112"
    assert config["log.dirs"] == str(tmp_path.resolve() / "kafka-cluster" / "2" / "data")
    assert config["default.replication.factor"] == config["offsets.topic.replication.factor"]
    assert (config["default.replication.factor"], config["min.insync.replicas"]) == ("3", "2")
    assert "@" not in config["advertised.listeners"]
    assert kafka_cluster.bootstrap_servers(settings) == (
        "127.0.0.1:19101,127.0.0.1:19102,127.0.0.1:19103"
    )


def test_stack_up_takes_one_or_three_brokers() -> None:
    """Given the command line, Then --kafka-brokers takes 1 (the default) or 3, not 2."""
    parser = build_parser()
    assert parser.parse_args(["stack", "up"]).kafka_brokers == 1
    assert parser.parse_args(["stack", "up", "--kafka-brokers", "3"]).kafka_brokers == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["stack", "up", "--kafka-brokers", "2"])
