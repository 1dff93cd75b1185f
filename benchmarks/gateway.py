"""Gateway benchmark: N concurrent volunteers doing acquire → complete over keep-alive HTTP,
and in the same run the same cycles through the lease client directly.

The benchmark queues numbers in every campaign region under a throwaway key prefix,
starts ``phonebank gateway`` as its own process on a free port (the rate limits lifted
for the simulated volunteers, as ``phonebank demo`` does: they all call from 127.0.0.1
and have no think time; calling hours open all day), then runs two phases of
``--seconds`` each:

1. direct: N threads, each a volunteer, acquire → complete with the lease client on
   Redis (the same library the gateway uses);
2. http: N volunteers on one asyncio loop (aiohttp, one keep-alive connection each),
   ``POST /api/v1/leases`` → ``POST /api/v1/leases/{id}/complete``, no think time.

It prints the cycles/s of both and their ratio (target: HTTP ≥ 40% of direct), acquire
and complete p99 over HTTP (target ≤ 100 ms), requests without an answer (timeouts and
broken connections; target 0), leases granted that no client received (Redis's
``leased`` counters minus the acquires answered; target 0) and the gateway's RSS after
the run (target ≤ 150 MB), then one JSON line. Usage::

    python benchmarks/gateway.py --redis-url redis://127.0.0.1:16379/0 --volunteers 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis

from phonebank.domain.records import Outcome
from phonebank.gateway.tokens import mint
from phonebank.infra.http import LISTEN_BACKLOG
from phonebank.leases.client import GIL_SWITCH_INTERVAL_SECONDS, LeaseClient, campaign_region_zones
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import enqueue_chunk
from phonebank.local.demo import ANYTIME_WINDOW, DEMO_RATE_LIMIT, free_port
from phonebank.local.demo_services import phonebank
from phonebank.settings import Settings, child_env, load_settings

#: first national number queued
FIRST_NUMBER = 9_160_000_000
#: numbers per enqueue call while filling the queues
QUEUE_BATCH = 5000
#: cycles one simulated volunteer id runs before the next takes over (under the hourly cap)
CYCLES_PER_VOLUNTEER = 500
#: the hourly cap per volunteer during the benchmark
MAX_PER_HOUR = 1000
SECOND_MS = 1000
BYTES_PER_MB = 1024 * 1024
#: seconds one HTTP request may take before it counts as "without an answer"
REQUEST_TIMEOUT_SECONDS = 10.0
#: seconds the gateway may take to answer /readyz after its start
START_TIMEOUT_SECONDS = 30.0
#: seconds between two /readyz probes while the gateway starts
READY_POLL_SECONDS = 0.1
#: seconds of unmeasured cycles before each phase (connections opened, scripts cached)
WARM_UP_SECONDS = 1.0
#: bytes of the throwaway volunteer secret
SECRET_BYTES = 32
#: the targets of issue 10
TARGETS = {"ratio": 0.40, "p99_ms": 100.0, "rss_mb": 150.0}


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``samples`` (milliseconds), 0 when empty."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Tally:
    """Latencies and counts of one phase (merged from every volunteer)."""

    acquire_ms: list[float] = field(default_factory=list)
    complete_ms: list[float] = field(default_factory=list)
    cycles: int = 0
    #: acquires whose answer (a lease) reached the volunteer
    leases_received: int = 0
    #: requests that timed out or lost their connection
    unanswered: int = 0
    #: answers other than the expected 201/200 (by status)
    unexpected: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def merge(self, other: Tally) -> None:
        with self.lock:
            self.acquire_ms += other.acquire_ms
            self.complete_ms += other.complete_ms
            self.cycles += other.cycles
            self.leases_received += other.leases_received
            self.unanswered += other.unanswered
            for status, count in other.unexpected.items():
                self.unexpected[status] = self.unexpected.get(status, 0) + count

    def latency(self, name: str) -> dict[str, float]:
        values = self.acquire_ms if name == "acquire" else self.complete_ms
        return {
            "p50_ms": round(percentile(values, 0.50), 2),
            "p99_ms": round(percentile(values, 0.99), 2),
        }


def bench_settings(redis_url: str) -> Settings:
    """A throwaway prefix, limits lifted, calling hours all day, a throwaway secret."""
    prefix = f"gwbench{uuid.uuid4().hex[:8]}"
    return load_settings(
        redis_url=redis_url,
        key_prefix=prefix,
        volunteer_max_per_hour=MAX_PER_HOUR,
        volunteer_secret=secrets.token_urlsafe(SECRET_BYTES),
        gateway_rate_per_token=DEMO_RATE_LIMIT,
        gateway_rate_per_address=DEMO_RATE_LIMIT,
        calling_window_start=ANYTIME_WINDOW[0],
        calling_window_end=ANYTIME_WINDOW[1],
        gateway_port=free_port(),
        bind_address="127.0.0.1",
    )


def fill(client: redis.Redis, settings: Settings, numbers: int) -> KeyScheme:
    """Queue ``numbers`` spread over every campaign region."""
    keys = KeyScheme(settings.key_prefix, settings.campaign)
    regions = list(campaign_region_zones(settings))
    share = numbers // len(regions)
    for index, region in enumerate(regions):
        first = FIRST_NUMBER + index * share
        for start in range(first, first + share, QUEUE_BATCH):
            enqueue_chunk(
                client, keys, region, range(start, min(start + QUEUE_BATCH, first + share))
            )
    return keys


def leased_in_redis(client: redis.Redis, keys: KeyScheme, settings: Settings) -> int:
    """Leases Redis granted, summed over the regions (the ``leased`` counters)."""
    pipe = client.pipeline(transaction=False)
    regions = list(campaign_region_zones(settings))
    for region in regions:
        pipe.hget(keys.region(region).counters, "leased")
    return sum(int(value or 0) for value in pipe.execute())


# --- direct: the lease client in threads ------------------------------------------------


def direct_volunteer(leases: LeaseClient, name: str, stop: threading.Event, total: Tally) -> None:
    """acquire → complete through the lease client until ``stop``."""
    local = Tally()
    while not stop.is_set():
        started = time.perf_counter()
        lease = leases.acquire(f"{name}-{local.cycles // CYCLES_PER_VOLUNTEER}")
        acquired = time.perf_counter()
        if lease is None:
            break
        local.leases_received += 1
        leases.complete(lease.lease_id, lease.token, Outcome.CONVERSATION)
        local.acquire_ms.append((acquired - started) * SECOND_MS)
        local.complete_ms.append((time.perf_counter() - acquired) * SECOND_MS)
        local.cycles += 1
    total.merge(local)


def run_direct(
    leases: LeaseClient, volunteers: int, seconds: float, label: str
) -> tuple[Tally, float]:
    """``volunteers`` threads for ``seconds``; the tally and the elapsed time."""
    stop, total = threading.Event(), Tally()
    threads = [
        threading.Thread(
            target=direct_volunteer, args=(leases, f"direct-{label}-{index}", stop, total)
        )
        for index in range(volunteers)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return total, time.perf_counter() - started


# --- http: aiohttp volunteers on one loop -----------------------------------------------


@dataclass
class HttpVolunteer:
    """One volunteer's keep-alive session with the gateway."""

    base: str
    settings: Settings
    name: str
    session: aiohttp.ClientSession
    tally: Tally = field(default_factory=Tally)

    def headers(self) -> dict[str, str]:
        volunteer = f"{self.name}-{self.tally.cycles // CYCLES_PER_VOLUNTEER}"
        secret = self.settings.volunteer_secret.get_secret_value()
        token = mint(secret, volunteer, self.settings.campaign, 3600)
        return {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        """One POST; its JSON body if 200/201, None otherwise (counted)."""
        try:
            async with self.session.post(self.base + path, json=body, headers=headers) as answer:
                data = await answer.json(content_type=None)
                if answer.status in (200, 201):
                    return data
                self.tally.unexpected[answer.status] = (
                    self.tally.unexpected.get(answer.status, 0) + 1
                )
        except (TimeoutError, aiohttp.ClientError):
            self.tally.unanswered += 1
        return None

    async def cycle(self, headers: dict[str, str]) -> bool:
        """One acquire → complete; False when no lease came back."""
        started = time.perf_counter()
        lease = await self.post("/api/v1/leases", {"languages": ["ru"]}, headers)
        acquired = time.perf_counter()
        if lease is None:
            return False
        self.tally.leases_received += 1
        path = f"/api/v1/leases/{lease['lease_id']}/complete"
        lease_headers = {**headers, "X-Lease-Token": lease["lease_token"]}
        done = await self.post(path, {"outcome": Outcome.CONVERSATION.value}, lease_headers)
        self.tally.acquire_ms.append((acquired - started) * SECOND_MS)
        self.tally.complete_ms.append((time.perf_counter() - acquired) * SECOND_MS)
        self.tally.cycles += done is not None
        return done is not None

    async def run(self, stop: asyncio.Event) -> None:
        headers = self.headers()
        while not stop.is_set():
            if self.tally.cycles % CYCLES_PER_VOLUNTEER == 0:
                headers = self.headers()
            if not await self.cycle(headers):
                await asyncio.sleep(0.01)


async def run_http(
    base: str, settings: Settings, volunteers: int, seconds: float, label: str
) -> tuple[Tally, float]:
    """``volunteers`` keep-alive sessions for ``seconds``; the tally and the elapsed time."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    connector = aiohttp.TCPConnector(limit=volunteers, limit_per_host=volunteers)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        crowd = [
            HttpVolunteer(base, settings, f"http-{label}-{index}", session)
            for index in range(volunteers)
        ]
        stop = asyncio.Event()
        started = time.perf_counter()
        tasks = [asyncio.create_task(volunteer.run(stop)) for volunteer in crowd]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    total = Tally()
    for volunteer in crowd:
        total.merge(volunteer.tally)
    return total, elapsed


# --- the gateway process ----------------------------------------------------------------


def http_ready(base: str) -> bool:
    """Whether the gateway answers /readyz with 200."""

    async def probe() -> bool:
        async with aiohttp.ClientSession() as session, session.get(base + "/readyz") as answer:
            return answer.status == 200

    with suppress(aiohttp.ClientError, OSError):
        return asyncio.run(probe())
    return False


def granian(settings: Settings) -> list[str]:
    """The same ASGI app under granian (one worker, uvloop, the same backlog)."""
    options = ["--interface", "asgi", "--factory", "--workers", "1", "--loop", "uvloop"]
    options += ["--host", "127.0.0.1", "--port", str(settings.gateway_port)]
    options += ["--backlog", str(LISTEN_BACKLOG), "--no-ws"]
    return [sys.executable, "-m", "granian", *options, "phonebank.gateway.cli:asgi_app"]


@contextmanager
def gateway_process(
    settings: Settings, server: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``phonebank gateway`` (``--server``'s HTTP server) until the block ends."""
    env = child_env(settings)
    command = phonebank("gateway") if server == "uvicorn" else granian(settings)
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{settings.gateway_port}"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not http_ready(base):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start; see {log}")
            time.sleep(READY_POLL_SECONDS)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=START_TIMEOUT_SECONDS)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children so far (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    total = (int(fields[11]) + int(fields[12])) / ticks
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += sum(cpu_seconds(int(child)) for child in (task / "children").read_text().split())
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` and its children (granian's worker), MB."""
    total = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1]) * 1024 / BYTES_PER_MB
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += sum(rss_mb(int(child)) for child in (task / "children").read_text().split())
    return total


def figures_of(args: argparse.Namespace, phases: dict[str, Any]) -> dict[str, Any]:
    """The JSON line: both rates, the ratio, latencies, losses, RSS and the verdicts."""
    direct, direct_s = phases["direct"]
    http, http_s = phases["http"]
    direct_rate, http_rate = direct.cycles / direct_s, http.cycles / http_s
    acquire, complete = http.latency("acquire"), http.latency("complete")
    figures = {
        "benchmark": "gateway",
        "server": args.server,
        "volunteers": args.volunteers,
        "seconds_per_phase": args.seconds,
        "direct_cycles_per_s": round(direct_rate, 1),
        "http_cycles_per_s": round(http_rate, 1),
        "ratio": round(http_rate / direct_rate, 3) if direct_rate else 0.0,
        "http_acquire": acquire,
        "http_complete": complete,
        "direct_acquire": direct.latency("acquire"),
        "direct_complete": direct.latency("complete"),
        "requests_without_answer": http.unanswered,
        "unexpected_statuses": {str(k): v for k, v in sorted(http.unexpected.items())},
        "leases_granted_unanswered": phases["granted"]
        - direct.leases_received
        - http.leases_received,
        "gateway_rss_mb": round(phases["rss_mb"], 1),
        # the gateway's CPU per HTTP cycle (two requests): what bounds the HTTP rate
        "gateway_cpu_ms_per_cycle": round(
            phases["gateway_cpu_s"] * SECOND_MS / max(1, http.cycles), 2
        ),
        "gateway_cpu_cores": round(phases["gateway_cpu_s"] / http_s, 2),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }
    figures["targets_met"] = (
        figures["ratio"] >= TARGETS["ratio"]
        and max(acquire["p99_ms"], complete["p99_ms"]) <= TARGETS["p99_ms"]
        and figures["requests_without_answer"] == 0
        and figures["leases_granted_unanswered"] == 0
        and figures["gateway_rss_mb"] <= TARGETS["rss_mb"]
    )
    return figures


def measure(args: argparse.Namespace, settings: Settings, client: redis.Redis) -> dict[str, Any]:
    """Both phases against a gateway process; the raw results."""
    leases = LeaseClient(settings, client)
    base = f"http://127.0.0.1:{settings.gateway_port}"
    log = Path(args.log)
    with gateway_process(settings, args.server, log) as process:
        run_direct(leases, args.volunteers, WARM_UP_SECONDS, "warm")
        asyncio.run(run_http(base, settings, args.volunteers, WARM_UP_SECONDS, "warm"))
        keys = KeyScheme(settings.key_prefix, settings.campaign)
        before = leased_in_redis(client, keys, settings)
        direct = run_direct(leases, args.volunteers, args.seconds, "run")
        cpu_before = cpu_seconds(process.pid)
        http = asyncio.run(run_http(base, settings, args.volunteers, args.seconds, "run"))
        gateway_cpu = cpu_seconds(process.pid) - cpu_before
        granted = leased_in_redis(client, keys, settings) - before
        memory = rss_mb(process.pid)
    return {
        "direct": direct,
        "http": http,
        "granted": granted,
        "rss_mb": memory,
        "gateway_cpu_s": gateway_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:16379/0")
    parser.add_argument("--volunteers", type=int, default=200, help="concurrent volunteers")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument("--numbers", type=int, default=400_000, help="numbers queued")
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument("--log", default="/tmp/phonebank-gateway-bench.log", help="gateway log")
    args = parser.parse_args()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    settings = bench_settings(args.redis_url)
    client = redis.Redis.from_url(args.redis_url, max_connections=args.volunteers * 2 + 8)
    fill(client, settings, args.numbers)
    try:
        figures = figures_of(args, measure(args, settings, client))
    finally:
        for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
            client.unlink(key)
    print(
        f"direct {figures['direct_cycles_per_s']:8.1f} cycles/s   "
        f"http {figures['http_cycles_per_s']:8.1f} cycles/s   "
        f"ratio {figures['ratio']:.3f} (target >= {TARGETS['ratio']})"
    )
    print(
        f"http acquire {figures['http_acquire']}  complete {figures['http_complete']} "
        f"(p99 target <= {TARGETS['p99_ms']} ms)"
    )
    print(
        f"without an answer {figures['requests_without_answer']}   granted, never received "
        f"{figures['leases_granted_unanswered']}   gateway RSS {figures['gateway_rss_mb']} MB "
        f"(pid {os.getpid()} measured the gateway child)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
