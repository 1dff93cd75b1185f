"""Redis protocol (RESP) encoding of commands that carry thousands of integers.

The assigner sends every number twice per chunk: as an argument of ``enqueue-4.lua`` and
as a bit offset of ``BITFIELD … SET u1 OFFSET 1``. Encoded one argument at a time
(hiredis's ``pack_command``) that costs ~130 ns per argument, more than Redis takes
to run the commands; here the repeated part of each argument group is laid out for all
values at once with numpy, leaving one pass over the bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

#: decimal digits of the largest int64
MAX_DIGITS = 19
#: ASCII code of "0"
ASCII_ZERO = ord("0")
#: RESP line end
CRLF = b"\r\n"
#: 10^1 … 10^18: a value with k digits has k - 1 of these at or below it
TENS = 10 ** np.arange(1, MAX_DIGITS, dtype=np.int64)
#: digits written per table lookup
GROUP_DIGITS = 4
#: values one group of digits spans (10^4)
GROUP_SPAN = 10**GROUP_DIGITS
#: the ASCII text of 0000 … 9999, one row each
GROUP_TEXT = np.frombuffer(
    b"".join(b"%04d" % value for value in range(GROUP_SPAN)), dtype=np.uint8
).reshape(GROUP_SPAN, GROUP_DIGITS)

Integers = npt.NDArray[np.int64]


def bulk(argument: str | bytes | int) -> bytes:
    """One argument as a RESP bulk string."""
    data = argument if isinstance(argument, bytes) else str(argument).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack_with_integers(
    head: Sequence[str | bytes | int],
    values: Integers,
    before: Sequence[str | bytes | int] = (),
    after: Sequence[str | bytes | int] = (),
) -> bytes:
    """The RESP array ``head…, (before…, value, after…) for each value``.

    ``values`` must be non-negative. Equal to ``hiredis.pack_command`` of the same
    arguments (tested), several times faster for long commands.
    """
    values = np.asarray(values, dtype=np.int64)
    if values.size and int(values.min()) < 0:
        raise ValueError("pack_with_integers takes non-negative values")
    group_size = len(before) + 1 + len(after)
    header = b"*%d\r\n" % (len(head) + group_size * len(values)) + b"".join(map(bulk, head))
    if not values.size:
        return header
    lead = np.frombuffer(b"".join(map(bulk, before)) + b"$", dtype=np.uint8)
    tail = np.frombuffer(CRLF + b"".join(map(bulk, after)), dtype=np.uint8)
    digits = np.searchsorted(TENS, values, side="right") + 1
    width = int(digits.max())
    # one row per value: lead | digit count (2 cells) | CRLF | digits (width cells) | tail;
    # the cells left of a number's first digit are masked out
    count_at = len(lead)
    digits_at = count_at + 2 + len(CRLF)
    rows = np.empty((len(values), digits_at + width + len(tail)), dtype=np.uint8)
    keep = np.ones(rows.shape, dtype=bool)
    rows[:, :count_at] = lead
    rows[:, count_at] = digits // 10 + ASCII_ZERO
    keep[:, count_at] = digits >= 10
    rows[:, count_at + 1] = digits % 10 + ASCII_ZERO
    rows[:, count_at + 2 : digits_at] = np.frombuffer(CRLF, dtype=np.uint8)
    rows[:, digits_at : digits_at + width] = _decimal_text(values, width)
    keep[:, digits_at : digits_at + width] = np.arange(width) >= (width - digits)[:, None]
    rows[:, digits_at + width :] = tail
    return header + rows[keep].tobytes()


def _decimal_text(values: Integers, width: int) -> npt.NDArray[np.uint8]:
    """The last ``width`` decimal digits of each value, zero-padded, as ASCII rows."""
    groups = -(-width // GROUP_DIGITS)
    text = np.empty((len(values), groups * GROUP_DIGITS), dtype=np.uint8)
    remaining = values
    for group in range(groups - 1, -1, -1):
        remaining, low = np.divmod(remaining, GROUP_SPAN)
        text[:, group * GROUP_DIGITS : (group + 1) * GROUP_DIGITS] = GROUP_TEXT[low]
    return text[:, groups * GROUP_DIGITS - width :]
