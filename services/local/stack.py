"""The local stack: a real Kafka 4.x broker (KRaft) and a real redis-server on loopback.

Owns ``phonebank stack up | down | status | logs``. Everything lives under one folder
(``settings.stack_dir``): the broker's jars, data, logs and pid files. Readiness is
decided by a Kafka admin call and a Redis PING, never by log text.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from phonebank.local.stack_settings import StackSettings

#: Folder of the shipped pom.xml, server.properties template, log4j2 and redis configs.
DEPLOY_LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "local"
#: seconds to wait for both services to answer after starting them
READY_TIMEOUT_SECONDS = 90.0
#: seconds between readiness probes
PROBE_INTERVAL_SECONDS = 0.25
#: seconds a stopping process gets after SIGTERM before SIGKILL
STOP_TIMEOUT_SECONDS = 30.0

#: What to install when a tool is missing.
INSTALL_HINTS = {
    "java": "install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)",
    "mvn": "install Maven (apt-get install maven)",
    "redis-server": "install Redis (apt-get install redis-server)",
    "redis-cli": "install Redis (apt-get install redis-server redis-tools)",
}


#: the processes of the stack without options, in the order ``down`` stops them
SERVICES = ("kafka", "redis")


class StackError(RuntimeError):
    """The local stack cannot start or stop; the message says what to install or change."""


@dataclass(frozen=True)
class Paths:
    """Where the stack keeps its state."""

    root: Path

    @property
    def jars(self) -> Path:
        return self.root / "jars"

    @property
    def kafka_data(self) -> Path:
        return self.root / "kafka-data"

    @property
    def redis_data(self) -> Path:
        return self.root / "redis-data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def pid(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def stack_paths(settings: StackSettings) -> Paths:
    """The stack folder, made absolute."""
    return Paths(settings.stack_dir.resolve())


def require_tool(name: str) -> str:
    """The path of ``name`` or a one-line error saying what to install."""
    found = shutil.which(name)
    if not found:
        raise StackError(f"{name} not found: {INSTALL_HINTS[name]}")
    return found


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def read_pid(paths: Paths, name: str) -> int | None:
    """The pid of our process ``name`` if it is alive, else None (and drop a stale file)."""
    pid_file = paths.pid(name)
    try:
        pid = int(pid_file.read_text().strip())
        if reap_child(pid):
            raise ProcessLookupError(pid)
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pid_file.unlink(missing_ok=True)
        return None
    return pid


def reap_child(pid: int) -> bool:
    """Collect ``pid`` if it is an exited child of this process (no zombie stays 'alive')."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return reaped == pid


def redis_ready(settings: StackSettings) -> bool:
    """A Redis PING on the stack's port."""
    return redis_answers(settings.stack_redis_port)


def redis_answers(port: int) -> bool:
    """Whether a redis-server on loopback ``port`` answers PING."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def kafka_ready(settings: StackSettings) -> bool:
    """A Kafka admin call (describe cluster) on the stack's port."""
    if not port_open(settings.stack_kafka_port):
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=f"127.0.0.1:{settings.stack_kafka_port}",
            request_timeout_ms=3000,
            client_id="phonebank-stack-probe",
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        return bool(admin.describe_cluster().get("brokers"))
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        admin.close()


def fetch_jars(paths: Paths) -> None:
    """Copy the broker's jars from Maven (cached: a second run downloads nothing)."""
    pom = DEPLOY_LOCAL / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    stamp = paths.jars / ".pom-sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return
    mvn = require_tool("mvn")
    if paths.jars.exists():
        shutil.rmtree(paths.jars)
    paths.jars.mkdir(parents=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={paths.jars}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise StackError("mvn could not fetch the Kafka jars: " + " | ".join(tail))
    stamp.write_text(digest)


def render_server_properties(settings: StackSettings, paths: Paths) -> Path:
    """Write the broker config from the shipped template."""
    text = (DEPLOY_LOCAL / "server.properties.template").read_text()
    for name, value in {
        "KAFKA_PORT": str(settings.stack_kafka_port),
        "CONTROLLER_PORT": str(settings.stack_controller_port),
        "DATA_DIR": str(paths.kafka_data),
    }.items():
        text = text.replace(f"@{name}@", value)
    target = paths.root / "server.properties"
    target.write_text(text)
    return target


def java_command(
    settings: StackSettings,
    paths: Paths,
    main: str,
    *args: str,
    heap_mb: int | None = None,
    jvm_options: Sequence[str] = (),
) -> list[str]:
    """A ``java -cp 'jars/*' MAIN ARGS`` command line with the stack's heap (or
    ``heap_mb``), logging and any further ``jvm_options``."""
    heap_mb = heap_mb or settings.stack_kafka_heap_mb
    return [
        require_tool("java"),
        f"-Xmx{heap_mb}m",
        f"-Xms{heap_mb // 2}m",
        "-XX:+UseG1GC",
        *jvm_options,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={DEPLOY_LOCAL / 'log4j2.yaml'}",
        f"-Dkafka.logs.dir={paths.logs}",
        "-cp",
        f"{paths.jars}/*",
        main,
        *args,
    ]


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 (it may begin with ``-``)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def cluster_id_argument(cluster_id: str) -> str:
    """StorageTool's cluster-id option in one word: an id that begins with ``-`` passed
    as a separate word is read as an option and the format fails (1 id in 64)."""
    return f"--cluster-id={cluster_id}"


def format_storage(settings: StackSettings, paths: Paths, config: Path) -> None:
    """Format the KRaft storage once (``StorageTool format --standalone``)."""
    if (paths.kafka_data / "meta.properties").exists():
        return
    command = java_command(
        settings,
        paths,
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        cluster_id_argument(new_cluster_id()),
        "-c",
        str(config),
    )
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError("kafka storage format failed: " + result.stderr.strip()[-300:])


def spawn(paths: Paths, name: str, command: list[str]) -> None:
    """Start ``command`` detached, logging to ``logs/NAME.log``, pid in ``NAME.pid``."""
    with paths.log(name).open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=paths.root,
        )
    paths.pid(name).write_text(str(process.pid))


def check_port_free(port: int, what: str, variable: str) -> None:
    """A one-line error when something that is not ours holds ``port``."""
    if port_open(port):
        raise StackError(
            f"port {port} for {what} is taken by another process: stop it or set {variable}"
        )


def start_redis(settings: StackSettings, paths: Paths) -> None:
    """Start our redis-server unless it runs already."""
    if read_pid(paths, "redis") is not None:
        return
    check_port_free(settings.stack_redis_port, "Redis", "PHONEBANK_STACK_REDIS_PORT")
    server = require_tool("redis-server")
    paths.redis_data.mkdir(parents=True, exist_ok=True)
    spawn(
        paths,
        "redis",
        [
            server,
            str(DEPLOY_LOCAL / "redis.conf"),
            "--port",
            str(settings.stack_redis_port),
            "--dir",
            str(paths.redis_data),
            "--daemonize",
            "no",
        ],
    )


def start_kafka(settings: StackSettings, paths: Paths) -> None:
    """Start our Kafka broker unless it runs already."""
    if read_pid(paths, "kafka") is not None:
        return
    for port, variable in (
        (settings.stack_kafka_port, "PHONEBANK_STACK_KAFKA_PORT"),
        (settings.stack_controller_port, "PHONEBANK_STACK_CONTROLLER_PORT"),
    ):
        check_port_free(port, "Kafka", variable)
    require_tool("java")
    fetch_jars(paths)
    config = render_server_properties(settings, paths)
    format_storage(settings, paths, config)
    spawn(paths, "kafka", java_command(settings, paths, "kafka.Kafka", str(config)))


def wait_ready(settings: StackSettings, paths: Paths) -> None:
    """Wait until Redis answers PING and Kafka answers an admin call."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    pending = {"redis": redis_ready, "kafka": kafka_ready}
    while pending:
        for name, probe in list(pending.items()):
            if read_pid(paths, name) is None:
                raise StackError(f"{name} exited while starting; see {paths.log(name)}")
            if probe(settings):
                del pending[name]
        if pending and time.monotonic() > deadline:
            raise StackError(
                f"{', '.join(pending)} not ready after "
                f"{READY_TIMEOUT_SECONDS:.0f}s; see {paths.logs}"
            )
        if pending:
            time.sleep(PROBE_INTERVAL_SECONDS)


def up(settings: StackSettings) -> bool:
    """Start what is not running and wait until ready. Returns True if anything started."""
    paths = stack_paths(settings)
    paths.logs.mkdir(parents=True, exist_ok=True)
    running = {name: read_pid(paths, name) is not None for name in ("redis", "kafka")}
    start_redis(settings, paths)
    start_kafka(settings, paths)
    wait_ready(settings, paths)
    return not all(running.values())


def stop_process(paths: Paths, name: str) -> bool:
    """SIGTERM our process ``name``, SIGKILL it after a grace period. True if one ran."""
    pid = read_pid(paths, name)
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline and read_pid(paths, name) is not None:
        time.sleep(PROBE_INTERVAL_SECONDS)
    if read_pid(paths, name) is not None:
        os.killpg(pid, signal.SIGKILL)
        while read_pid(paths, name) is not None:
            time.sleep(PROBE_INTERVAL_SECONDS)
    paths.pid(name).unlink(missing_ok=True)
    return True


def down(settings: StackSettings) -> list[str]:
    """Stop our processes (with any other the stack folder has a pid file of, such as
    the Redis Cluster nodes); returns the names that were running."""
    paths = stack_paths(settings)
    others = sorted(pid.stem for pid in paths.root.glob("*.pid") if pid.stem not in SERVICES)
    return [name for name in (*SERVICES, *others) if stop_process(paths, name)]


def status(settings: StackSettings) -> dict[str, str]:
    """``name → 'ready (pid N)' | 'starting (pid N)' | 'stopped'`` for each service."""
    paths = stack_paths(settings)
    probes = {"redis": redis_ready, "kafka": kafka_ready}
    report = {}
    for name, probe in probes.items():
        pid = read_pid(paths, name)
        if pid is None:
            report[name] = "stopped"
        else:
            report[name] = f"{'ready' if probe(settings) else 'starting'} (pid {pid})"
    return report


def log_tail(settings: StackSettings, name: str, lines: int) -> str:
    """The last ``lines`` lines of a service's log."""
    log = stack_paths(settings).log(name)
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
