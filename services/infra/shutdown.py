"""Graceful shutdown: the one stop event that SIGTERM (Kubernetes) and SIGINT (Ctrl-C) set.

Long-running services wait on it and finish their current unit of work (a chunk, a
checkpoint, a request) before they return.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


def stop_on_signals(service: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT, for ``service`` to stop on (main thread only)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s: signal %d, finishing the current work, then stopping", service, signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop
