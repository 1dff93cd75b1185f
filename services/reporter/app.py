"""Running a reporter: the consumer loop plus its HTTP server, in a thread or in the foreground.

- :func:`run_reporter` blocks until ``stop`` is set (what ``phonebank reporter`` runs);
- :class:`Reporter` runs one in background threads (what the demo and the tests use):
  ``Reporter(settings, port=0).start()``, then ``.url``, ``.wait_ready()``, ``.report()``,
  ``.stop()``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client.registry import Collector

from phonebank.reporter.consumer import ReporterService
from phonebank.reporter.lag import LagCollector, LagMonitor
from phonebank.reporter.redis_state import RedisStateCollector
from phonebank.reporter.server import ReporterServer, serve
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: seconds :meth:`Reporter.stop` waits for the consumer thread to checkpoint and close
STOP_TIMEOUT_SECONDS = 30.0


def run_reporter(
    settings: Settings, stop: threading.Event, *, port: int | None = None, rebuild: bool = False
) -> int:
    """Serve HTTP and consume outcomes until ``stop`` is set; return an exit code (0)."""
    service = ReporterService(settings, rebuild=rebuild)
    lag = LagMonitor(settings).start()
    server = serve(
        service.status,
        settings.reporter_port if port is None else port,
        settings.bind_address,
        collectors(service, lag),
    )
    try:
        service.run(stop)
    finally:
        server.stop()
        lag.stop()
    return 0


def collectors(service: ReporterService, lag: LagMonitor) -> tuple[Collector, ...]:
    """The reporter's figures besides the report: shared Redis state and Kafka lag."""
    return (RedisStateCollector(service.redis, service.settings), LagCollector(lag))


class Reporter:
    """A reporter running in background threads of this process."""

    def __init__(
        self,
        settings: Settings,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        rebuild: bool = False,
    ) -> None:
        self.service = ReporterService(settings, rebuild=rebuild)
        self.lag = LagMonitor(settings)
        self._port = settings.reporter_port if port is None else port
        self._host = host
        self._stop = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._consume, name="reporter-consumer", daemon=True)
        self._server: ReporterServer | None = None

    def _consume(self) -> None:
        try:
            self.service.run(self._stop)
        except BaseException as exc:
            self._failed = exc
            log.exception("reporter consumer stopped")
            raise

    def start(self) -> Reporter:
        """Start the HTTP server and the consumer thread."""
        self._server = serve(
            self.service.status, self._port, self._host, collectors(self.service, self.lag)
        )
        self.lag.start()
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Base URL of the HTTP server, e.g. ``http://127.0.0.1:9102``."""
        if self._server is None:
            raise RuntimeError("reporter not started")
        return f"http://{self._host or '127.0.0.1'}:{self._server.port}"

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the consumer has loaded its state and is reading; False on timeout."""
        ready = self.service.status.ready_event.wait(timeout)
        if not ready and self._failed is not None:
            raise RuntimeError("reporter failed to start") from self._failed
        return ready

    def applied(self) -> int:
        """Events counted so far (new ones, duplicates excluded)."""
        return self.service.status.aggregator.applied

    def report(self) -> dict[str, Any]:
        """The current ``/report.json`` document, without HTTP."""
        return self.service.status.report()

    def stop(self) -> None:
        """Checkpoint, stop consuming and stop serving."""
        self._stop.set()
        self._thread.join(STOP_TIMEOUT_SECONDS)
        if self._server is not None:
            self._server.stop()
        self.lag.stop()
