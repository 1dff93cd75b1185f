"""One chaos scenario's campaign: its namespace, its processes, its volunteers.

A :class:`Campaign` owns a fresh namespace on the chaos suite's private stack (its own
topics and Redis key prefix, small queues, short leases, every hour a calling hour),
runs ``phonebank assigner`` ×N, ``reporter`` and ``gateway`` as real processes, and a
crew of simulated volunteers calling through the gateway's HTTP API, some of whom
abandon a lease now and then. Faults act on it from :mod:`tests.chaos.faults`; at the
end :meth:`Campaign.settle` waits, on events read from Redis and Kafka, until nothing is
in flight, and :meth:`Campaign.audit` runs ``phonebank audit --json``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from contextlib import ExitStack
from http import HTTPStatus
from pathlib import Path
from typing import Any

from phonebank.local.demo import ANYTIME_WINDOW, DEMO_RATE_LIMIT, free_port, volunteer_token
from phonebank.local.demo_services import phonebank, stop_process, wait_ready
from phonebank.local.gateway_client import Answer, GatewayClient, GatewayUnavailableError
from phonebank.local.simulated_volunteers import Tally, Volunteer
from phonebank.settings import Settings, child_env, namespaced

#: numbers each scenario generates from the shared registry and ingests
SCENARIO_NUMBERS = 6_000
#: partitions of each scenario's numbers topic (three assigners share them)
SCENARIO_PARTITIONS = 12
#: ready numbers per region an assigner fills up to: small, so backpressure pauses often
QUEUE_HIGH = 40
#: ready numbers per region below which it refills
QUEUE_LOW = 10
#: seconds a lease lives: the shortest the settings allow, so abandoned leases expire fast
LEASE_TTL_SECONDS = 10
#: milliseconds of the assigners' Kafka session: a stopped assigner is evicted this fast
SESSION_TIMEOUT_MS = 6_000
#: assigner processes of a scenario
ASSIGNERS = 3
#: simulated volunteers calling through the gateway
VOLUNTEERS = 24
#: time compression of the volunteers' calls (a 45 s call takes 0.15 s)
SPEED = 300.0
#: share of leases a volunteer abandons (never completes) before taking the next
ABANDON_SHARE = 0.05
#: seconds a volunteer keeps retrying an answer through an outage before giving up
PATIENCE_SECONDS = 180.0
#: seconds between two probes while waiting for an event of the system
PROBE_SECONDS = 0.25


class AbandoningVolunteer(Volunteer):
    """A simulated volunteer who now and then walks away from a number without an answer
    (the lease expires and the reaper returns the number), and who can be told to vanish
    while holding a lease."""

    def __init__(self, *args: Any, vanish: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.vanish = vanish

    def call_once(self) -> None:
        if self.vanish.is_set() or self.rng.random() < ABANDON_SHARE:
            answer = self.client.acquire()
            if answer.status in {HTTPStatus.CREATED, HTTPStatus.OK}:
                self.tally.count("leases")
                self.tally.count("abandoned")
            if self.vanish.is_set():
                self.halt.set()
            else:
                self.halt.wait(LEASE_TTL_SECONDS)
            return
        super().call_once()


class ChaosTally(Tally):
    """The demo's tally plus the leases the volunteers walked away from, and the answers
    the gateway refused to record (a complete answered neither 200 nor a 5xx retried)."""

    abandoned: int = 0
    refused_completes: int = 0


class CountingClient(GatewayClient):
    """A volunteer's gateway client that counts the completes the gateway refused."""

    def __init__(self, host: str, port: int, token: str, tally: ChaosTally) -> None:
        super().__init__(host, port, token)
        self.tally = tally

    def complete(
        self, lease: dict[str, Any], outcome: str, callback_at: str | None = None
    ) -> Answer:
        """Like the volunteer page: an answer is retried until the gateway takes it or
        refuses it (through outages), never dropped after a few tries."""
        deadline = time.monotonic() + PATIENCE_SECONDS
        while True:
            try:
                answer = super().complete(lease, outcome, callback_at)
                break
            except GatewayUnavailableError:
                if time.monotonic() > deadline:
                    raise
        if answer.status != HTTPStatus.OK:
            self.tally.count("refused_completes")
        return answer


def scenario_settings(base: Settings, namespace: str) -> Settings:
    """A fresh namespace with small queues, short leases, every hour a calling hour."""
    update: dict[str, Any] = {
        "numbers_partitions": SCENARIO_PARTITIONS,
        "queue_high_watermark": QUEUE_HIGH,
        "queue_low_watermark": QUEUE_LOW,
        "lease_ttl_seconds": LEASE_TTL_SECONDS,
        "kafka_session_timeout_ms": SESSION_TIMEOUT_MS,
        "reporter_port": free_port(),
        "gateway_port": free_port(),
        "ingest_metrics_port": 0,
        "gateway_rate_per_token": DEMO_RATE_LIMIT,
        "gateway_rate_per_address": DEMO_RATE_LIMIT,
        "volunteer_max_per_hour": 100_000,
        "calling_window_start": ANYTIME_WINDOW[0],
        "calling_window_end": ANYTIME_WINDOW[1],
    }
    return namespaced(base, namespace, **update)


class Campaign:
    """The processes and volunteers of one scenario (a context manager: all stop at exit)."""

    def __init__(self, settings: Settings, folder: Path, numbers_file: Path) -> None:
        self.settings = settings
        self.folder = folder
        self.numbers_file = numbers_file
        self.assigners: list[subprocess.Popen[bytes]] = []
        self.services: dict[str, subprocess.Popen[bytes]] = {}
        self.tally = ChaosTally()
        self.stop_calling = threading.Event()
        self.vanish = threading.Event()
        self.crew: list[AbandoningVolunteer] = []
        self._exits = ExitStack()
        #: Redis loss only: events still in the streams when Redis was lost, and the
        #: completes refused before it (those after it are the loss the README states)
        self.unrelayed_at_loss = 0
        self.refused_before_loss: int | None = None

    def __enter__(self) -> Campaign:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_volunteers()
        self._exits.close()

    # --- processes --------------------------------------------------------------------

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """A ``phonebank`` command of this campaign, to completion."""
        return subprocess.run(
            phonebank(*args), env=child_env(self.settings), capture_output=True, check=check
        )

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> Any:
        """Start ``phonebank ARGS…`` in the background, logging to ``name.log``."""
        log = (self.folder / f"{name}.log").open("ab")
        self._exits.callback(log.close)
        process = subprocess.Popen(
            phonebank(*args),
            env=env or child_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._exits.callback(stop_process, process)
        return process

    def ingest(self) -> None:
        """``phonebank ingest`` of the scenario's file (again: the same chunk ids)."""
        self.run("ingest", str(self.numbers_file), "--rejects", str(self.folder / "rejects.tsv"))

    def start_assigner(self) -> subprocess.Popen[bytes]:
        """One more ``phonebank assigner`` with a metrics port of its own."""
        env = child_env(self.settings)
        env["PHONEBANK_ASSIGNER_METRICS_PORT"] = str(free_port())
        process: subprocess.Popen[bytes] = self.spawn(
            f"assigner-{len(self.assigners)}", "assigner", env=env
        )
        self.assigners.append(process)
        return process

    def start(self, assigners: int = ASSIGNERS) -> None:
        """The assigners, the reporter and the gateway; returns once the last two are ready."""
        for _ in range(assigners):
            self.start_assigner()
        for name in ("reporter", "gateway"):
            self.services[name] = self.spawn(name, name)
        wait_ready("reporter", self.settings.reporter_port, self.services["reporter"], self.folder)
        wait_ready("gateway", self.settings.gateway_port, self.services["gateway"], self.folder)

    def signal_assigner(self, index: int, signum: signal.Signals) -> None:
        """Send ``signum`` to assigner ``index`` (and collect it when that killed it)."""
        process = self.assigners[index]
        process.send_signal(signum)
        if signum == signal.SIGKILL:
            process.wait()

    def stop_assigners(self) -> None:
        """SIGTERM every assigner and wait for each to leave (relay and reaper stop)."""
        for process in self.assigners:
            if process.poll() is None:
                stop_process(process)

    def restart_reporter(self) -> None:
        """Stop the reporter and start a fresh one; returns once it is ready."""
        stop_process(self.services["reporter"])
        self.services["reporter"] = self.spawn("reporter", "reporter")
        wait_ready("reporter", self.settings.reporter_port, self.services["reporter"], self.folder)

    def live_assigners(self) -> int:
        """Assigner processes still running."""
        return sum(process.poll() is None for process in self.assigners)

    # --- volunteers ---------------------------------------------------------------------

    def start_volunteers(self, count: int = VOLUNTEERS) -> None:
        """The crew, calling through the gateway until :meth:`stop_volunteers`."""
        for i in range(count):
            token = volunteer_token(self.settings, f"chaos-{i}")
            client = CountingClient("127.0.0.1", self.settings.gateway_port, token, self.tally)
            volunteer = AbandoningVolunteer(
                f"chaos-{i}",
                client,
                speed=SPEED,
                tally=self.tally,
                stop=self.stop_calling,
                seed=i,
                vanish=self.vanish,
            )
            volunteer.start()
            self.crew.append(volunteer)

    def stop_volunteers(self) -> None:
        """Stop the crew after the calls in progress (each completes or walks away)."""
        self.stop_calling.set()
        for volunteer in self.crew:
            volunteer.join()

    def vanish_all(self) -> None:
        """Every volunteer takes one more number and disappears with it."""
        self.vanish.set()
        for volunteer in self.crew:
            volunteer.join()

    # --- the end ------------------------------------------------------------------------

    def audit(self) -> dict[str, Any]:
        """``phonebank audit --json`` of this namespace."""
        result = self.run("audit", "--json", check=False)
        if result.returncode not in {0, 1}:
            raise RuntimeError(f"audit failed: {result.stderr.decode()[-2000:]}")
        (self.folder / "audit.json").write_bytes(result.stdout)
        report: dict[str, Any] = json.loads(result.stdout)
        return report


def wait_for(what: str, condition: Any, timeout_seconds: float) -> None:
    """Probe ``condition()`` until true; AssertionError naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_seconds:.0f} s waiting for {what}")
        time.sleep(PROBE_SECONDS)
