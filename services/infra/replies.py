"""Redis replies as text, whether or not the client decodes responses."""

from __future__ import annotations

from typing import Any


def reply_text(value: Any) -> str:
    """A reply element as ``str``: bytes are decoded (UTF-8), anything else is ``str()``."""
    return value.decode() if isinstance(value, bytes) else str(value)
