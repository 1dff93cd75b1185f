"""The Lua script loader: reads ``lua/<operation>-<numkeys>.lua``, inlines includes, registers.

A line ``--- @include "includes/<name>.lua"`` is replaced by that file's text (once per
script, BullMQ style). The rendered text is what runs on Redis; other clients (a Node.js
or Go frontend) can take it from :func:`render_all` or from
``python -m phonebank.leases.scripts OUTPUT_FOLDER``.

Each script's header lists its KEYS by name (``1 ready LIST …``); the names are
attributes of the key scheme (:class:`~phonebank.leases.keys.RegionKeys`,
:class:`~phonebank.leases.keys.VolunteerKeys`), so a caller passes the key holder and the
KEYS list is built from the header, in its order (:func:`resolve_keys`): the order is
written once, in the script. Return codes shared by the scripts are mirrored in
:class:`ReturnCode` (a test keeps it equal to ``lua/includes/codes.lua``).

Scripts are called with ``EVALSHA``. A Redis user that may not ``SCRIPT LOAD`` (the
gateway's, ``deploy/redis/users.acl``) relies on a trusted one having loaded them:
:func:`load_all` loads every script on every master; the assigner runs it at start,
and any client allowed to load runs it again on the first ``NOSCRIPT`` (a Redis restart
empties the script cache). A client not allowed
raises :class:`ScriptsNotLoadedError` (a ``RedisError``: the gateway answers 503).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import hiredis
import redis

from phonebank.infra.loop_bridge import blocking
from phonebank.infra.redis_client import RedisClient, primaries
from phonebank.leases.resp import Integers, pack_with_integers
from phonebank.leases.transport import Transport, transport_for

#: Folder of the scripts shipped with the package.
LUA_FOLDER = Path(__file__).with_name("lua")
#: ``acquire-9.lua`` → operation ``acquire``, 9 keys.
SCRIPT_NAME = re.compile(r"^(?P<operation>[a-z]+)-(?P<numkeys>\d+)\.lua$")
#: ``--- @include "includes/time.lua"``
INCLUDE_LINE = re.compile(r'^---\s*@include\s+"(?P<path>[^"]+)"\s*$')
#: the KEYS block of a script header: from the ``KEYS`` line to the ``ARGV`` line
KEYS_BLOCK = re.compile(r"^\s*KEYS\s*$(?P<block>.*?)^\s*ARGV\b", re.MULTILINE | re.DOTALL)
#: one entry of a KEYS block, ``1 ready LIST`` (several entries may share a line)
KEY_ENTRY = re.compile(
    r"(?<!\S)(?P<index>\d+)\s+(?P<name>[a-z_]+)\s+(?:LIST|ZSET|HASH|SET|STREAM|STRING)\b"
)

#: what a caller passes for a script's KEYS: an object whose attributes are named as the
#: header's keys (a key needing the lease id, ``lease``, is a method taking it), or a
#: mapping of name to key
KeyHolder = object | Mapping[str, str]

#: one command as Redis protocol bytes (hiredis's encoder; its stub types the command
#: as a one-element tuple, though it takes any length)
pack_command = cast(Callable[[tuple[str | int | bytes, ...]], bytes], hiredis.pack_command)


class ReturnCode(IntEnum):
    """The first element of every script reply (``lua/includes/codes.lua``)."""

    OK = 0
    RECORDED_LATE = 1
    ALREADY_RECORDED = 2
    NOT_FOUND = -1
    NOT_HOLDER = -2
    EXPIRED = -3
    ALREADY_COMPLETED = -4
    RELEASED = -5
    EMPTY = -6
    CLOSED = -7
    CONCURRENT_LIMIT = -8
    HOURLY_LIMIT = -9
    BAD_ARGUMENT = -10
    NOT_DUE = -11
    DO_NOT_CALL = -12
    RATE_LIMITED = -13


#: the argument name acquire-9 answers with BAD_ARGUMENT for a lease id already used
LEASE_ID_IN_USE = "lease id in use"


def refused_argument(reply: Sequence[Any]) -> str | None:
    """The argument a ``{-10 BAD_ARGUMENT, name}`` reply names, or None for other replies."""
    if not reply or reply[0] != ReturnCode.BAD_ARGUMENT:
        return None
    name = reply[1] if len(reply) > 1 else b"?"
    return name.decode() if isinstance(name, bytes) else str(name)


class ScriptError(RuntimeError):
    """A script file is malformed, or was called with the wrong number of keys."""


class ScriptsNotLoadedError(redis.exceptions.RedisError):
    """A script is not in Redis's cache and this client's user may not load it."""


def load_all(client: RedisClient) -> int:
    """``SCRIPT LOAD`` every script (the gateway's rate limit too) on every master; the
    number of scripts. Raises :class:`ScriptsNotLoadedError` if the user may not."""
    texts = [source.text.encode() for source in render_all().values()]
    try:
        for node in primaries(client):
            pipe = node.pipeline(transaction=False)
            for text in texts:
                pipe.script_load(text)
            pipe.execute()
    except redis.exceptions.NoPermissionError as refusal:
        raise ScriptsNotLoadedError(
            f"the lease scripts are not loaded and this Redis user may not load them "
            f"({refusal}); a trusted service (the assigner) loads them"
        ) from None
    return len(texts)


def render(path: Path) -> str:
    """The text of one script with every include inlined (each include at most once)."""
    seen: set[Path] = set()
    return _render(path, seen)


def _render(path: Path, seen: set[Path]) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        include = INCLUDE_LINE.match(line)
        if include is None:
            lines.append(line)
            continue
        target = (LUA_FOLDER / include["path"]).resolve()
        if target.parent != (LUA_FOLDER / "includes").resolve() or not target.is_file():
            raise ScriptError(f"{path.name}: include {include['path']!r} not found")
        if target not in seen:
            seen.add(target)
            lines.append(_render(target, seen))
    return "\n".join(lines) + "\n"


def header_key_names(text: str, script: str) -> tuple[str, ...]:
    """The KEYS of a script's header by name, in KEYS order (entries numbered 1..n)."""
    block = KEYS_BLOCK.search(text)
    if block is None:
        raise ScriptError(f"{script}: the header has no KEYS … ARGV block")
    entries = [(int(m["index"]), m["name"]) for m in KEY_ENTRY.finditer(block["block"])]
    entries.sort()
    if [index for index, _ in entries] != list(range(1, len(entries) + 1)):
        raise ScriptError(f"{script}: KEYS must be numbered 1..n, got {entries}")
    return tuple(name for _, name in entries)


@dataclass(frozen=True)
class ScriptSource:
    """One operation's rendered script, with its KEYS names from the header."""

    operation: str
    numkeys: int
    text: str
    key_names: tuple[str, ...]

    def keys(self, holder: KeyHolder, lease_id: str | None = None) -> list[str]:
        """The KEYS list of a call: each header name looked up on ``holder``."""
        keys = []
        for name in self.key_names:
            try:
                value = holder[name] if isinstance(holder, Mapping) else getattr(holder, name)
            except (KeyError, AttributeError):
                raise ScriptError(f"{self.operation}: no key {name!r} on {holder!r}") from None
            if callable(value):
                if lease_id is None:
                    raise ScriptError(f"{self.operation}: key {name!r} needs the lease id")
                value = value(lease_id)
            keys.append(str(value))
        return keys


@lru_cache(maxsize=4)
def render_all(folder: Path = LUA_FOLDER) -> dict[str, ScriptSource]:
    """Every operation in ``folder``, by operation name."""
    sources: dict[str, ScriptSource] = {}
    for path in sorted(folder.glob("*.lua")):
        match = SCRIPT_NAME.match(path.name)
        if match is None:
            raise ScriptError(f"{path.name}: script names are <operation>-<numkeys>.lua")
        operation, numkeys = match["operation"], int(match["numkeys"])
        names = header_key_names(path.read_text(encoding="utf-8"), path.name)
        if len(names) != numkeys:
            raise ScriptError(f"{path.name}: the header lists {len(names)} KEYS, not {numkeys}")
        sources[operation] = ScriptSource(operation, numkeys, render(path), names)
    return sources


class Scripts:
    """The scripts registered with one redis-py client (EVALSHA, EVAL on NOSCRIPT)."""

    def __init__(self, client: RedisClient, transport: Transport | None = None) -> None:
        self._client = client
        #: how batches on ``client`` reach Redis (default: :func:`transport_for` it)
        self.transport = transport or transport_for(client)
        self._sources = render_all()
        self._registered = {
            name: client.register_script(source.text) for name, source in self._sources.items()
        }

    def source(self, operation: str) -> ScriptSource:
        """The rendered source of ``operation``."""
        return self._sources[operation]

    def sha(self, operation: str) -> str:
        """The SHA1 Redis knows ``operation`` by."""
        return str(self._registered[operation].sha)

    def pipeline(self, client: RedisClient) -> ScriptPipeline:
        """A one-round-trip batch of script calls and commands on ``client``."""
        transport = self.transport if client is self._client else transport_for(client)
        return ScriptPipeline(self, transport)

    def run(
        self,
        operation: str,
        keys: KeyHolder,
        args: Sequence[str | int | bytes],
        *,
        lease_id: str | None = None,
    ) -> list[Any]:
        """Run ``operation`` with the KEYS of ``keys`` and ``args`` (one round trip;
        batches of calls go through :meth:`pipeline`)."""
        return self._run_resolved(operation, self._sources[operation].keys(keys, lease_id), args)

    def _run_resolved(
        self, operation: str, keys: list[str], args: Sequence[str | int | bytes]
    ) -> list[Any]:
        script = self._registered[operation]
        try:
            reply = self._client.evalsha(script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            load_all(self._client)
            reply = self._client.evalsha(script.sha, len(keys), *keys, *args)
        return reply  # type: ignore[no-any-return]


class ScriptPipeline:
    """Script calls and plain commands sent in ONE round trip (no transaction).

    The batch is written on one pooled connection (on a Redis Cluster, one per master,
    grouped by slot: :mod:`phonebank.leases.transport`) and its replies read back in
    order, through redis-py's connection API (``send_packed_command``/``read_response``)
    rather than its ``Pipeline`` object, whose per-command bookkeeping cost more client
    CPU than the round trip itself on the lease path (``benchmarks/leases.py``). Each command is
    encoded when queued (hiredis; long runs of integers by :mod:`phonebank.leases.resp`).
    Replies are raw RESP values (integers, not booleans). Unlike redis-py's script
    pipelining this sends no ``SCRIPT EXISTS`` first: a call refused with NOSCRIPT
    (after a Redis restart) is replayed alone, which loads it. A connection error is
    raised, never retried: a script that may have run once must not run twice unasked.
    """

    def __init__(self, scripts: Scripts, transport: Transport) -> None:
        self._scripts = scripts
        self._transport = transport
        self._packed: list[bytes] = []
        #: per command, the key that routes it to its Cluster slot (None: any node)
        self._routes: list[str | None] = []
        #: per command, the script call to replay on NOSCRIPT (None: not a script)
        self._calls: list[tuple[str, list[str], Sequence[str | int | bytes]] | None] = []

    def script(
        self,
        operation: str,
        holder: KeyHolder,
        args: Sequence[str | int | bytes],
        integers: Integers | None = None,
        *,
        lease_id: str | None = None,
    ) -> None:
        """Queue a script call with the KEYS of ``holder`` (``lease_id`` for a script
        whose KEYS name the lease hash); ``integers`` (non-negative), if given, follow
        ``args``."""
        source = self._scripts.source(operation)
        keys = source.keys(holder, lease_id)
        head = ("EVALSHA", self._scripts.sha(operation), source.numkeys, *keys, *args)
        self._routes.append(keys[0] if keys else None)
        if integers is None:
            self._packed.append(pack_command(head))
            self._calls.append((operation, keys, args))
        else:
            self._packed.append(pack_with_integers(head, integers))
            self._calls.append((operation, keys, [*args, *integers.tolist()]))

    def _command(self, *command: str | int | bytes) -> None:
        self._packed.append(pack_command(command))
        self._calls.append(None)
        self._routes.append(str(command[1]) if len(command) > 1 else None)

    def ping(self) -> None:
        """Queue a PING (the bare round trip, for comparison in benchmarks/leases.py)."""
        self._command("PING")

    def sadd(self, key: str, member: str) -> None:
        """Queue a SADD."""
        self._command("SADD", key, member)

    def sismember(self, key: str, member: str) -> None:
        """Queue a SISMEMBER (reply: 1 or 0)."""
        self._command("SISMEMBER", key, member)

    def llen(self, key: str) -> None:
        """Queue an LLEN."""
        self._command("LLEN", key)

    def set_bits(self, key: str, offsets: Integers) -> None:
        """Queue one ``BITFIELD key SET u1 offset 1 …`` over every offset (reply: each
        bit's value before, in order)."""
        self._packed.append(pack_with_integers(("BITFIELD", key), offsets, ("SET", "u1"), (1,)))
        self._calls.append(None)
        self._routes.append(key)

    def zcount(self, key: str, low: str | int, high: str | int) -> None:
        """Queue a ZCOUNT."""
        self._command("ZCOUNT", key, low, high)

    def hmget(self, key: str, *fields: str) -> None:
        """Queue an HMGET (reply: one value or None per field)."""
        self._command("HMGET", key, *fields)

    def hgetall(self, key: str) -> None:
        """Queue an HGETALL (reply: the flat field, value, … list of RESP2)."""
        self._command("HGETALL", key)

    def hset(self, key: str, field: str, value: str) -> None:
        """Queue an HSET of one field."""
        self._command("HSET", key, field, value)

    def hdel(self, key: str, field: str) -> None:
        """Queue an HDEL of one field."""
        self._command("HDEL", key, field)

    def hincrby(self, key: str, field: str, amount: int) -> None:
        """Queue an HINCRBY."""
        self._command("HINCRBY", key, field, amount)

    def zrem(self, key: str, member: str) -> None:
        """Queue a ZREM."""
        self._command("ZREM", key, member)

    def zadd_existing(self, key: str, member: str, score: int) -> None:
        """Queue a ZADD XX (update the score of a member that is there)."""
        self._command("ZADD", key, "XX", score, member)

    def pexpire(self, key: str, milliseconds: int) -> None:
        """Queue a PEXPIRE."""
        self._command("PEXPIRE", key, milliseconds)

    def execute(self) -> list[Any]:
        """Send everything; replies in order. Errors other than NOSCRIPT are raised."""
        if not self._packed:
            return []
        replies = self._round_trip()
        for index, (reply, call) in enumerate(zip(replies, self._calls, strict=True)):
            if isinstance(reply, redis.exceptions.NoScriptError) and call is not None:
                # replayed alone with redis-py (which loads it): off the loop if on it
                replies[index] = blocking(self._scripts._run_resolved, *call)
            elif isinstance(reply, Exception):
                raise reply
        return replies

    def _round_trip(self) -> list[Any]:
        """Send the batch, one reply per command (an error reply kept as its exception)."""
        return self._transport.round_trip(self._packed, self._routes)


def main(argv: list[str] | None = None) -> int:
    """Write every rendered script into a folder, for clients in other languages."""
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m phonebank.leases.scripts OUTPUT_FOLDER", file=sys.stderr)
        return 2
    output = Path(arguments[0])
    output.mkdir(parents=True, exist_ok=True)
    for source in render_all().values():
        (output / f"{source.operation}-{source.numkeys}.lua").write_text(source.text, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
