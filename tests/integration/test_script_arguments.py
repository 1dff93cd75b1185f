"""Every script refuses every malformed argument before its first write (issue 11, item 2).

Each script is called directly, as a frontend in another language would, with a valid
argument list in which one argument is replaced by something malformed (wrong type,
empty, NaN, inf, negative, huge, an unknown name, a value that disagrees with another
argument), or with an argument missing or added. The reply must be ``{-10, name}`` and
a snapshot of every key of the test's namespace (``DUMP`` of each, sorted by key) must
be byte-identical before and after. The namespace holds a realistic region: numbers
ready and due, a live lease, a completed one, a do-not-call number, a volunteer's
reservations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzzing
from hypothesis import strategies as st

from phonebank.domain.calling_hours import to_ms
from phonebank.domain.clock import DAY_MS
from phonebank.domain.lease_types import BadArgumentError
from phonebank.domain.records import Outcome
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.client import LEASE_RETENTION_MS, LeaseClient
from phonebank.leases.keys import KeyScheme
from phonebank.leases.limits import reservation_of
from phonebank.leases.scripts import ReturnCode, Scripts, render_all
from phonebank.settings import Settings
from tests.integration.lease_helpers import (
    FIRST,
    MOSCOW_ONLY,
    fill,
    lease_client,
    local_instant,
    numbers_from,
    offset_to,
    scheme,
)

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

#: malformed calls tried per script (keeps the whole module well under a minute)
EXAMPLES_PER_SCRIPT = 40
REGION = "RU-MOW"
#: hex digits of ids made up by the test
HEX32 = "0123456789abcdef" * 2
#: text no script accepts as a decimal integer (and Lua's tonumber would take some of)
NOT_INTEGERS = [
    "",
    " ",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "1e3",
    "1E999",
    "0x10",
    " 5",
    "5 ",
    "1.5",
    "+5",
    "--5",
    "5-",
    "9" * 30,
    "-" + "9" * 30,
    "\x00",
    "١٢٣",
    "true",
]


@dataclass(frozen=True)
class Argument:
    """One ARGV position: its name in the script's refusal and how to break it."""

    name: str
    #: malformed values for this position
    bad: st.SearchStrategy[str]


def integer(name: str, low: int, high: int) -> Argument:
    """A decimal integer in ``[low, high]``: junk, or integers just or far outside."""
    outside = st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1)).map(str)
    floats = st.sampled_from([math.nan, math.inf, -math.inf, low + 0.5, -0.0]).map(repr)
    junk = st.text(max_size=20).filter(lambda text: not re.fullmatch(r"-?\d+", text))
    return Argument(name, st.one_of(st.sampled_from(NOT_INTEGERS), outside, floats, junk))


def text(name: str, valid: str, *wrong: str) -> Argument:
    """A formatted string: junk, near misses of ``valid``, and ``wrong`` (well-formed
    values that disagree with the call)."""
    near = [valid.upper(), valid + "\x00", valid[:-1], " " + valid, valid + "\n", valid * 3]
    junk = st.text(max_size=80).filter(lambda value: value != valid)
    fixed = [value for value in [*near, *wrong, "", "nan", "inf"] if value != valid]
    return Argument(name, st.one_of(st.sampled_from(fixed), junk))


EPOCH_MAX_MS = 4_102_444_800_000
OFFSET_MAX_MS = 631_152_000_000


def epoch(name: str) -> Argument:
    return integer(name, 0, EPOCH_MAX_MS)


OFFSET = integer("clock offset", -OFFSET_MAX_MS, OFFSET_MAX_MS)
RETENTION = integer("retention", 60_000, 7_776_000_000)
TTL = integer("lease time to live", 1000, 86_400_000)


@dataclass
class World:
    """The namespace the calls run against, and one valid argument list per script."""

    client: RedisClient
    scripts: Scripts
    prefix: str
    calls: dict[str, tuple[object, str | None, list[str], list[Argument]]]

    def snapshot(self) -> list[tuple[bytes, bytes | None, bool]]:
        keys = sorted(self.client.scan_iter(match=f"{self.prefix}:*", count=1000))
        return [(key, self.client.dump(key), self.client.pttl(key) > 0) for key in keys]


#: a relay lock owner id (32 hex digits) for the unlock script
HEX32_OWNER = "0123456789abcdef" * 2


def build_world(settings: Settings, client: RedisClient) -> World:
    """A region with numbers ready and due, a live and a completed lease, a do-not-call
    number, and the volunteer's reservations; the valid calls that would change it."""
    at = local_instant(12)
    fill(settings, client, REGION, numbers_from(FIRST, 6))
    leases: LeaseClient = lease_client(settings, client, at, MOSCOW_ONLY)
    done = leases.acquire("bob")
    assert done is not None
    leases.complete(done.lease_id, done.token, Outcome.NO_ANSWER)
    live = leases.acquire("alice")
    assert live is not None
    keys: KeyScheme = scheme(settings)
    region = keys.region(REGION)
    client.sadd(region.dnc, str(FIRST + 5))
    client.set(region.relay_lock, HEX32_OWNER)
    offset = str(offset_to(at))
    start, end = to_ms(local_instant(9)), to_ms(local_instant(21))
    later_start, later_end = start + DAY_MS, end + DAY_MS
    volunteer = live.token.split(".")[0]
    other_token = f"{volunteer}.{'f' * 32}"
    new_id = f"{REGION}.{'e' * 32}"
    lost_id = f"{REGION}.{'d' * 32}"
    lease_id, token = live.lease_id, live.token
    person = keys.volunteer(volunteer)
    lease_arg = text("lease id", lease_id, f"RU-SAM.{lease_id[7:]}", f"{REGION}.{'a' * 32}")
    token_arg = text("token", token, token.split(".")[1], token + "0", "." + HEX32)
    retention = str(LEASE_RETENTION_MS)
    calls: dict[str, tuple[object, str | None, list[str], list[Argument]]] = {
        "acquire": (
            region,
            new_id,
            [
                new_id,
                other_token,
                volunteer,
                "900000",
                str(start),
                str(end),
                "calm-conversation@1",
                settings.campaign,
                REGION,
                offset,
            ],
            [
                text("lease id", new_id, f"RU-SAM.{'e' * 32}", lease_id),
                text("token", other_token, "b" * 32 + "." + HEX32),
                text("volunteer", volunteer, "c" * 32),
                TTL,
                epoch("window start"),
                epoch("window end"),
                text("guideline", "calm-conversation@1", "calm conversation@1", "x@", "@1"),
                text("campaign", settings.campaign, "other", "Default"),
                text("region", REGION, "RU-SAM", "ru-mow"),
                OFFSET,
            ],
        ),
        "complete": (
            region,
            lease_id,
            [
                lease_id,
                token,
                "do_not_call",
                "dnc",
                "0",
                "1",
                "0",
                retention,
                offset,
                "2",
                "14400000",
                "93600000",
                "2",
                str(start),
                str(end),
                str(later_start),
                str(later_end),
            ],
            [
                lease_arg,
                token_arg,
                text("outcome", "do_not_call", "expired", "DO_NOT_CALL", "conversation "),
                text("disposition", "dnc", "done", "retry", "requeue", "dnc dnc"),
                text("reached", "0", "1", "2", "-1"),
                integer("max attempts", 1, 1000),
                epoch("callback at"),
                RETENTION,
                OFFSET,
                integer("delay count", 0, 8),
                integer("retry delay", 0, 31_622_400_000),
                integer("retry delay", 0, 31_622_400_000),
                integer("window count", 0, 16),
                epoch("window start"),
                text("window end", str(end), str(start), str(start - 1), "0"),
                text("window start", str(later_start), str(start), str(end - 1)),
                epoch("window end"),
            ],
        ),
        # complete of a lease Redis lost, with the facts of its receipt after the schedule
        "complete+recovered": (
            region,
            lost_id,
            [
                lost_id,
                token,
                "conversation",
                "done",
                "1",
                "1",
                "0",
                retention,
                offset,
                "0",
                "0",
                str(live.national_number),
                str(live.attempt),
                str(live.leased_at_ms),
                volunteer,
                "calm-conversation@1",
                settings.campaign,
            ],
            [
                text("lease id", lost_id, f"RU-SAM.{'d' * 32}"),
                token_arg,
                text("outcome", "conversation", "expired", "Conversation"),
                text("disposition", "done", "dnc", "requeue"),
                text("reached", "1", "0", "01"),
                integer("max attempts", 1, 1000),
                epoch("callback at"),
                RETENTION,
                OFFSET,
                integer("delay count", 0, 8),
                integer("window count", 0, 16),
                text("number", str(live.national_number), "0" + str(FIRST)[1:], "-1"),
                integer("attempt", 1, 1000),
                epoch("leased at"),
                text("volunteer", volunteer, "c" * 32),
                text("guideline", "calm-conversation@1", "calm conversation@1", "@1"),
                text("campaign", settings.campaign, "other", "Default"),
            ],
        ),
        "renew": (
            region,
            lease_id,
            [lease_id, token, "900000", str(end), offset],
            [lease_arg, token_arg, TTL, epoch("window end"), OFFSET],
        ),
        "release": (
            region,
            lease_id,
            [lease_id, token, retention, offset],
            [lease_arg, token_arg, RETENTION, OFFSET],
        ),
        "reap": (
            region,
            lease_id,
            [lease_id, "3", retention, offset],
            [lease_arg, integer("max expiries", 1, 1000), RETENTION, OFFSET],
        ),
        "reserve": (
            person,
            None,
            [reservation_of(other_token), "900000", "1", "30", "3600000", offset],
            [
                text("reservation", reservation_of(other_token), volunteer.upper()),
                TTL,
                integer("concurrent leases", 1, 1000),
                integer("hourly leases", 1, 100_000),
                integer("rolling hour", 1000, 86_400_000),
                OFFSET,
            ],
        ),
        "unreserve": (
            person,
            None,
            [reservation_of(token)],
            [text("reservation", reservation_of(token), reservation_of(token).upper())],
        ),
        "ban": (
            region,
            lease_id,
            [str(live.national_number), lease_id, retention, "1"],
            [
                text("number", str(live.national_number), "0" + str(FIRST)[1:], "-1"),
                lease_arg,
                RETENTION,
                text("seen", "1", "2", "-1", "true"),
            ],
        ),
        "unlock": (
            region,
            None,
            [HEX32_OWNER],
            [text("owner", HEX32_OWNER, HEX32_OWNER.upper(), HEX32_OWNER[:-1], HEX32_OWNER + "0")],
        ),
        "ratelimit": (
            {"window": scheme(settings).rate_window("token", HEX32)},
            None,
            ["120", "60000", offset],
            [
                integer("limit", 1, 1_000_000_000),
                integer("window length", 1000, 86_400_000),
                OFFSET,
            ],
        ),
        "enqueue": (
            region,
            None,
            ["ab" * 12, str(FIRST + 10), str(FIRST + 11)],
            [
                text("batch id", "ab" * 12, "ab" * 16, "AB" * 12),
                text("number", str(FIRST + 10), "0" + str(FIRST)[1:], str(FIRST)[:-1], "-1"),
                text("number", str(FIRST + 11), str(FIRST) + "0", "9.161e9", "nan"),
            ],
        ),
    }
    return World(client, Scripts(client), settings.key_prefix, calls)


@pytest.fixture
def world(settings: Settings, redis_client: RedisClient) -> World:
    built = build_world(settings, redis_client)
    # the snapshot sees the region's keys and the volunteer's (on every Cluster master)
    keys = {key for key, _, _ in built.snapshot()}
    region = scheme(settings).region(REGION)
    assert {region.ready.encode(), region.holders.encode(), region.outcomes.encode()} <= keys
    assert any(b":vol:" in key for key in keys)
    return built


def refused_names(world: World, operation: str) -> set[bytes]:
    names = {argument.name for argument in world.calls[operation][3]}
    return {name.encode() for name in names | {"argument count", "lease key", "region", "windows"}}


#: arguments of complete's recovered lease (after the schedule)
RECOVERED_FIELDS = 6
#: the script of a call that is not named after it
SCRIPT_OF = {"complete+recovered": "complete"}


def call(world: World, operation: str, args: Sequence[str]) -> list[Any]:
    holder, lease_id, _, _ = world.calls[operation]
    script = SCRIPT_OF.get(operation, operation)
    return world.scripts.run(script, holder, list(args), lease_id=lease_id)


def assert_refused_unchanged(world: World, operation: str, args: Sequence[str]) -> bytes:
    """The call answers ``{-10, name}`` and leaves every key as it was; the name."""
    before = world.snapshot()
    reply = call(world, operation, args)
    assert reply[0] == ReturnCode.BAD_ARGUMENT, (operation, args, reply)
    assert len(reply) == 2 and reply[1] in refused_names(world, operation), reply
    assert world.snapshot() == before, (operation, args)
    return bytes(reply[1])


OPERATIONS = [
    "acquire",
    "complete",
    "complete+recovered",
    "renew",
    "release",
    "reap",
    "reserve",
    "unreserve",
    "ban",
    "unlock",
    "ratelimit",
    "enqueue",
]


def mutation(world: World, operation: str) -> st.SearchStrategy[tuple[list[str], str]]:
    """A valid argument list with one argument broken (and that argument's name), or
    with one argument missing or one too many."""
    _, _, valid, arguments = world.calls[operation]

    def replaced(index: int) -> st.SearchStrategy[tuple[list[str], str]]:
        return arguments[index].bad.map(
            lambda bad: ([*valid[:index], bad, *valid[index + 1 :]], arguments[index].name)
        )

    one_broken = st.integers(0, len(valid) - 1).flatmap(replaced)

    def missing(cut: int) -> tuple[list[str], str]:
        return (valid[:cut], "")

    if operation == "enqueue":
        # one number fewer is still a valid batch: only "no numbers" is short; one more
        # argument is one more number
        shortened = st.just((valid[:1], "argument count"))
        junk = st.sampled_from(["", "nan", "x", "1" * 11])
        extra = junk.map(lambda more: ([*valid, more], "number"))
    else:
        # without all of its recovered lease, a complete is a plain (valid) complete
        plain = len(valid) - RECOVERED_FIELDS if operation == "complete+recovered" else -1
        shortened = st.integers(0, len(valid) - 1).filter(lambda cut: cut != plain).map(missing)
        extra = st.text(max_size=10).map(lambda more: ([*valid, more], "argument count"))
    return st.one_of(one_broken, shortened, extra)


#: what a lease id that is well-formed but not this call's is refused as
LEASE_ID_MISMATCH = {b"lease id", b"region", b"lease key"}


def named(refused: bytes, name: str) -> bool:
    """Whether the refusal names the argument broken (a well-formed lease id of another
    region or lease is refused by the check it fails)."""
    if name == "lease id":
        return refused in LEASE_ID_MISMATCH
    if name == "token":  # a well-formed token of another volunteer than acquire's
        return refused in {b"token", b"volunteer"}
    return refused == name.encode()


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_malformed_call_is_refused_and_changes_nothing(world: World, operation: str) -> None:
    """Given a region in use, When a script is called with one argument malformed (or
    one missing, or one too many), Then it answers -10 with a name and no key changes."""

    @fuzzing(
        max_examples=EXAMPLES_PER_SCRIPT,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(case=mutation(world, operation))
    def check(case: tuple[list[str], str]) -> None:
        args, name = case
        refused = assert_refused_unchanged(world, operation, args)
        if name and not operation.startswith("complete"):
            assert named(refused, name), (args, refused)

    check()


@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_argument_is_named_when_it_alone_is_wrong(world: World, operation: str) -> None:
    """Given a valid call, When each argument in turn is NaN, inf, -inf, empty and huge,
    Then the refusal names that argument and nothing changes."""
    _, _, valid, arguments = world.calls[operation]
    for index, argument in enumerate(arguments):
        for bad in ("nan", "inf", "-inf", "", "9" * 40):
            args = [*valid[:index], bad, *valid[index + 1 :]]
            refused = assert_refused_unchanged(world, operation, args)
            if not operation.startswith("complete") or index < 9:
                assert named(refused, argument.name), (operation, index, bad, refused)


def test_the_valid_calls_do_run(world: World) -> None:
    """Given the same region, When each valid argument list is sent, Then no script
    refuses it (so the refusals above are about the one broken argument)."""
    for operation in OPERATIONS:
        reply = call(world, operation, world.calls[operation][2])
        assert reply[0] != ReturnCode.BAD_ARGUMENT, (operation, reply)


def test_the_client_raises_the_refused_argument_by_name(
    settings: Settings, redis_client: RedisClient
) -> None:
    """Given a live lease, When the client renews it with a clock offset no script
    accepts, Then it raises BadArgumentError naming the offset, and the lease is kept."""
    fill(settings, redis_client, REGION, numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    lease = leases.acquire("alice")
    assert lease is not None
    keys = scheme(settings).region(REGION)
    before = redis_client.hgetall(keys.lease(lease.lease_id))
    leases.clock_offset_ms = OFFSET_MAX_MS + 1
    with pytest.raises(BadArgumentError) as refused:
        leases.renew(lease.lease_id, lease.token)
    assert refused.value.argument == "clock offset" and refused.value.operation == "renew"
    assert redis_client.hgetall(keys.lease(lease.lease_id)) == before


def test_every_script_is_covered() -> None:
    """Given the shipped scripts, Then each one is called malformed above."""
    assert {SCRIPT_OF.get(operation, operation) for operation in OPERATIONS} == set(render_all())
