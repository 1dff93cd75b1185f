"""Progress of an ingest run: a redrawn status line on a terminal, log lines otherwise.

Shows lines done, numbers per second and, where the source size is known, the share
done and the time left (from bytes read on disk, so gzipped files estimate well too).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)

#: seconds between redraws of the terminal status line
REDRAW_SECONDS = 0.25
#: seconds between progress log lines when not on a terminal
LOG_SECONDS = 10.0


class Progress:
    """Reports one source at a time; ``update`` is cheap to call per block."""

    def __init__(self, out: TextIO = sys.stderr, interactive: bool | None = None) -> None:
        self.out = out
        self.interactive = out.isatty() if interactive is None else interactive
        self._every = REDRAW_SECONDS if self.interactive else LOG_SECONDS
        self._source = ""
        self._size = 0
        self._started = time.monotonic()
        self._shown = 0.0
        self._lines_at_start = 0

    def start(self, source: str, size: int, lines_done: int = 0) -> None:
        """A new source of ``size`` bytes on disk (0 if unknown), resumed after ``lines_done``."""
        self._source, self._size = source, size
        self._started = self._shown = time.monotonic()
        self._lines_at_start = lines_done

    def update(self, lines: int, raw_read: int) -> None:
        """``lines`` done so far in this source, ``raw_read`` bytes of it read."""
        now = time.monotonic()
        if now - self._shown < self._every:
            return
        self._shown = now
        self._show(self.status(lines, raw_read, now))

    def status(self, lines: int, raw_read: int, now: float) -> str:
        """The status text."""
        elapsed = max(now - self._started, 1e-9)
        rate = (lines - self._lines_at_start) / elapsed
        text = f"{self._source}: {lines:,} lines, {rate:,.0f}/s"
        if self._size and raw_read:
            share = min(raw_read / self._size, 1.0)
            left = elapsed * (1 - share) / share if share else 0.0
            text += f", {share:.0%}, ETA {_duration(left)}"
        return text

    def _show(self, text: str) -> None:
        if self.interactive:
            self.out.write(f"\r\x1b[K{text}")
            self.out.flush()
        else:
            log.info("%s", text)

    def finish(self, lines: int, raw_read: int) -> None:
        """The source is done: final line (and a newline on a terminal)."""
        text = self.status(lines, raw_read, time.monotonic())
        if self.interactive:
            self.out.write(f"\r\x1b[K{text}\n")
            self.out.flush()
        else:
            log.info("%s (done)", text)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"
