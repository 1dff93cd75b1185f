"""The demo's background services: ``phonebank assigner``, ``reporter`` and ``gateway``.

Each runs as its own process with the demo's settings in its environment (the demo's
namespace, ports and its throwaway volunteer secret), logs into the demo's folder, and
is stopped (SIGTERM, then SIGKILL) when the demo ends. :func:`start_services` returns
once the reporter and the gateway answer ``/readyz``.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from http import HTTPStatus
from pathlib import Path

from phonebank.settings import Settings, child_env

#: seconds the demo waits for a background service to answer
SERVICE_TIMEOUT_SECONDS = 120.0
#: seconds an HTTP request to a service may take
HTTP_TIMEOUT_SECONDS = 10.0
#: seconds between two readiness checks
READY_POLL_SECONDS = 0.25
#: the processes the demo runs in the background, in start order
SERVICES = ("assigner", "reporter", "gateway")


def phonebank(*args: str) -> list[str]:
    """A ``phonebank`` command line run by this interpreter."""
    return [sys.executable, "-m", "phonebank.cli", *args]


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """Status and body of ``GET http://127.0.0.1:PORT/PATH``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_SECONDS)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait, SIGKILL as a last resort."""
    process.terminate()
    try:
        process.wait(timeout=SERVICE_TIMEOUT_SECONDS / 4)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_services(settings: Settings, folder: Path, exits: ExitStack) -> None:
    """Start every background service; return once the reporter and gateway are ready."""
    env = child_env(settings)
    processes = {}
    for name in SERVICES:
        log = (folder / f"{name}.log").open("wb")
        exits.callback(log.close)
        process = subprocess.Popen(phonebank(name), env=env, stdout=log, stderr=subprocess.STDOUT)
        exits.callback(stop_process, process)
        processes[name] = process
    for name, port in (("reporter", settings.reporter_port), ("gateway", settings.gateway_port)):
        wait_ready(name, port, processes[name], folder)


def wait_ready(name: str, port: int, process: subprocess.Popen[bytes], folder: Path) -> None:
    """Wait for ``/readyz`` to answer 200; RuntimeError naming the log if it never does."""
    deadline = time.monotonic() + SERVICE_TIMEOUT_SECONDS
    while True:
        with suppress(OSError):
            if http_get(port, "/readyz")[0] == HTTPStatus.OK:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the {name} did not become ready; see {folder}/{name}.log")
        time.sleep(READY_POLL_SECONDS)
