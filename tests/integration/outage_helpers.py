"""Helpers of the outage tests: a private redis-server to stop and start, and waiting for
a condition (a counter, an event) with a deadline instead of sleeping."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from phonebank.settings import Settings

#: the private Redis port (tools/wtenv.sh exports one per session; else a fixed one)
PRIVATE_REDIS_PORT = int(os.environ.get("PHONEBANK_PRIVATE_REDIS_PORT", "26479"))
#: seconds a condition may take to hold
DEADLINE_SECONDS = 60.0
#: seconds between two looks at a condition
LOOK_SECONDS = 0.01


def wait_until(condition: Callable[[], bool], what: str, seconds: float = DEADLINE_SECONDS) -> None:
    """Return once ``condition`` holds; a failed assertion naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(LOOK_SECONDS)


class PrivateRedis:
    """A redis-server of this test only, without persistence, that can be stopped and
    started again on the same port (an outage)."""

    def __init__(self, folder: Path, port: int = PRIVATE_REDIS_PORT) -> None:
        self.folder = folder
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def settings(self, base: Settings) -> Settings:
        """``base`` pointed at this server."""
        return base.model_copy(update={"redis_url": self.url, "redis_cluster": False})

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        probe = redis.Redis(port=self.port)
        wait_until(lambda: self._answers(probe), "the private redis-server")
        probe.close()

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a shutdown) and wait for it to end."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    @staticmethod
    def _answers(probe: redis.Redis) -> bool:
        try:
            return bool(probe.ping())
        except redis.ConnectionError:
            return False
