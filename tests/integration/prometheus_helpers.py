"""A real Prometheus for tests: scrape given targets every second, answer instant queries.

Runs the ``prometheus`` binary (Debian package ``prometheus``, installed by the CI
bootstrap) with a throw-away TSDB under ``tmp_path``; the test is skipped where it is
not installed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

#: seconds between two scrapes (and rule evaluations)
SCRAPE_INTERVAL_SECONDS = 1
#: seconds Prometheus may take to start answering
START_TIMEOUT_SECONDS = 30.0
#: seconds one HTTP request to Prometheus may take
REQUEST_TIMEOUT_SECONDS = 5.0
#: seconds between two polls of a condition
POLL_SECONDS = 0.2

#: one series of a query's answer: its labels (sorted pairs, ``__name__`` dropped) → value
Series = dict[tuple[tuple[str, str], ...], float]


def free_port() -> int:
    """A TCP port nobody listens on now (the OS's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Prometheus:
    """A running Prometheus at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _get(self, path: str, **params: str) -> object:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(
            f"{self.url}{path}?{query}", timeout=REQUEST_TIMEOUT_SECONDS
        ) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> Series:
        """The instant value of ``expr`` now, one entry per series (a scalar: one, no labels)."""
        data = self._get("/api/v1/query", query=expr)
        assert isinstance(data, dict)
        if data["resultType"] == "scalar":
            return {(): float(data["result"][1])}
        return {
            tuple(sorted((k, v) for k, v in row["metric"].items() if k != "__name__")): float(
                row["value"][1]
            )
            for row in data["result"]
        }

    def scraped_since(self, jobs: Sequence[str], since_s: float) -> bool:
        """Whether every target of ``jobs`` is up and was last scraped after ``since_s``."""
        data = self._get("/api/v1/targets", state="active")
        assert isinstance(data, dict)
        targets = [t for t in data["activeTargets"] if t["labels"]["job"] in jobs]
        if not targets:
            return False
        for target in targets:
            scraped = target.get("lastScrape", "")
            if target["health"] != "up" or not scraped.startswith("20"):
                return False
            if _rfc3339_seconds(scraped) <= since_s:
                return False
        return True


def _rfc3339_seconds(stamp: str) -> float:
    """Unix seconds of Prometheus' ``lastScrape`` (RFC 3339, nanoseconds, ``Z``)."""
    head, _, rest = stamp.partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6] or "0"
    base = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    return float(base.timestamp() + int(fraction) / 10 ** len(fraction))


@contextmanager
def running_prometheus(
    tmp_path: Path, jobs: Mapping[str, Sequence[int]], rules: Path | None = None
) -> Iterator[Prometheus]:
    """Prometheus scraping ``job → ports`` on 127.0.0.1 every second (and evaluating
    ``rules`` as often), until the block ends."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (Debian package prometheus; .ci/run installs it)")
    config: dict[str, object] = {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
            "scrape_timeout": f"{SCRAPE_INTERVAL_SECONDS}s",
            "evaluation_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
        },
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [{"targets": [f"127.0.0.1:{port}" for port in ports]}],
            }
            for job, ports in jobs.items()
        ],
    }
    if rules is not None:
        config["rule_files"] = [str(rules)]
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, process)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait_ready(server: Prometheus, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        assert process.poll() is None, "prometheus exited"
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, "prometheus did not start"
        time.sleep(POLL_SECONDS)
