"""The Redis key scheme: every key phonebank writes is named here and nowhere else.

Keys of one region carry the hash tag ``{r:REGION}``, so every Lua script that works on
one region touches one Redis Cluster slot. The do-not-call set is keyed by region too
(a number's region never changes) but not by campaign: do-not-call is global.

The reporter's keys share one hash tag per campaign, ``{rep:CAMPAIGN}``, so that a
``PFCOUNT`` over many time buckets touches one Redis Cluster slot.

Keys of one volunteer carry the hash tag ``{v:VOLUNTEER}`` (the keyed hash of the
volunteer id, never the id): the volunteer-limit scripts touch that slot only.

Numbers are stored as national significant numbers (10 digits, as decimal strings).
A number queued in a region is in exactly one of: the ready list, the due set, the
holders hash (leased), the parked set, or counted in ``counters`` as done, retired or
do-not-call (see docs/lease-protocol.md, "Conservation").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

#: Digits of the national-number prefix that selects a dedupe bitmap (916 of 9161234567).
DEDUPE_PREFIX_DIGITS = 3
#: Bits in one dedupe bitmap: one per possible 7-digit subscriber number (1.25 MB).
DEDUPE_BITS_PER_PREFIX = 10**7


def region_tag(region: str) -> str:
    """The hash tag shared by every key of ``region``."""
    return f"{{r:{region}}}"


def volunteer_tag(volunteer_hash: str) -> str:
    """The hash tag shared by every key of one volunteer (by keyed hash)."""
    return f"{{v:{volunteer_hash}}}"


def dnc_key(prefix: str, region: str) -> str:
    """SET of do-not-call national numbers of ``region`` (the scripts' screen, in the
    region's slot): global, not per campaign."""
    return f"{prefix}:dnc:{region_tag(region)}"


#: Digits of the national-number prefix that selects a shard of the do-not-call list.
DNC_PREFIX_DIGITS = 3


def dnc_list_key(prefix: str, number: int | str) -> str:
    """SET of the do-not-call list holding ``number``: one shard per 3-digit prefix
    (``{d:916}``), whatever region a plan gives the number. Global, not per campaign."""
    return f"{prefix}:dnc:{{d:{str(number)[:DNC_PREFIX_DIGITS]}}}"


@dataclass(frozen=True)
class RegionKeys:
    """The keys of one region of one campaign (one Cluster slot)."""

    prefix: str
    campaign: str
    region: str

    def _key(self, name: str) -> str:
        return f"{self.prefix}:c:{self.campaign}:{region_tag(self.region)}:{name}"

    @cached_property
    def ready(self) -> str:
        """LIST of national numbers waiting to be leased; the head (left) is leased first."""
        return self._key("ready")

    @cached_property
    def due(self) -> str:
        """ZSET national number → epoch milliseconds when a retry or callback is due."""
        return self._key("due")

    @cached_property
    def leases(self) -> str:
        """ZSET live lease id → deadline (epoch milliseconds)."""
        return self._key("leases")

    def lease(self, lease_id: str) -> str:
        """HASH of one lease: number, token, volunteer hash, attempt, times, state, outcome."""
        return self._key(f"lease:{lease_id}")

    @cached_property
    def holders(self) -> str:
        """HASH national number → id of the live lease holding it (exclusivity)."""
        return self._key("holders")

    @cached_property
    def attempts(self) -> str:
        """HASH national number → completed attempts so far (numbers still in play)."""
        return self._key("attempts")

    @cached_property
    def expiries(self) -> str:
        """HASH national number → leases of it that expired (numbers still in play)."""
        return self._key("expiries")

    @cached_property
    def chunks(self) -> str:
        """SET of the ids of the number chunks already queued here (idempotent enqueue)."""
        return self._key("chunks")

    @cached_property
    def parked(self) -> str:
        """SET of numbers parked after too many lease expiries."""
        return self._key("parked")

    @cached_property
    def outcomes(self) -> str:
        """STREAM of outcome events, relayed to Kafka ``phonebank.outcomes``."""
        return self._key("outcomes")

    @cached_property
    def relay_lock(self) -> str:
        """STRING: owner id of the relay moving this region's outcome stream now."""
        return f"{self.outcomes}:relay-lock"

    @cached_property
    def counters(self) -> str:
        """HASH of per-region counters: see :data:`REGION_COUNTERS` for the fields."""
        return self._key("counters")

    @cached_property
    def dnc(self) -> str:
        """SET of do-not-call national numbers of this region, for every campaign."""
        return dnc_key(self.prefix, self.region)


#: Fields of :attr:`RegionKeys.counters` (all integer counts).
REGION_COUNTERS = {
    "enqueued": "numbers offered to the region's queue (queued plus skipped as do-not-call)",
    "done": "numbers finished: reached, refused, or out of attempts",
    "retired": "numbers found bad (wrong number, not in service)",
    "dnc": "numbers taken out of the queue because they are do-not-call",
    "attempted": "distinct numbers with at least one counted attempt (coverage)",
    "reached": "outcomes that reached the callee (conversation, refused, callback)",
    "leased": "leases granted",
    "expired": "leases that expired",
    "late": "outcomes recorded after their lease had expired or been released",
    "dropped_duplicates": "queue entries dropped because the number was already leased",
}


@dataclass(frozen=True)
class VolunteerKeys:
    """The keys of one volunteer of one campaign (one Cluster slot, not the region's)."""

    prefix: str
    campaign: str
    volunteer_hash: str

    def _key(self, name: str) -> str:
        return f"{self.prefix}:c:{self.campaign}:vol:{volunteer_tag(self.volunteer_hash)}:{name}"

    @property
    def live(self) -> str:
        """ZSET reservation id → deadline (epoch ms) of the volunteer's open leases."""
        return self._key("live")

    @property
    def hourly(self) -> str:
        """ZSET reservation id → grant time (epoch ms) over the last rolling hour."""
        return self._key("hourly")

    @property
    def open(self) -> str:
        """HASH lease token → lease id of the leases that may be open (written before the
        grant, so a lease whose answer was lost is found again; stale entries are dropped
        by whoever reads them)."""
        return self._key("open")


@dataclass(frozen=True)
class KeyScheme:
    """All keys of one campaign under one prefix."""

    prefix: str
    campaign: str

    #: region code → its keys, built once (their names are cached on them)
    _regions: dict[str, RegionKeys] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def region(self, region: str) -> RegionKeys:
        """The keys of one region."""
        keys = self._regions.get(region)
        if keys is None:
            keys = self._regions.setdefault(region, RegionKeys(self.prefix, self.campaign, region))
        return keys

    def volunteer(self, volunteer_hash: str) -> VolunteerKeys:
        """The keys of one volunteer, by keyed hash of the volunteer id."""
        return VolunteerKeys(self.prefix, self.campaign, volunteer_hash)

    @property
    def banned(self) -> str:
        """SET of banned volunteer hashes (all campaigns of the prefix)."""
        return f"{self.prefix}:banned"

    def rate_window(self, scope: str, caller_digest: str) -> str:
        """HASH of one caller's sliding-window request counter (``ratelimit-1.lua``): the
        gateway's limits per token, per address and of failed authentications; the
        caller is a digest, never the token or the address itself."""
        return f"{self.prefix}:limits:{scope}:{caller_digest}"

    def seen(self, national_prefix: str) -> str:
        """BITMAP of numbers already accepted by the assigner, one bit per subscriber number."""
        return f"{self.prefix}:c:{self.campaign}:seen:{{p:{national_prefix}}}"

    @property
    def ingested(self) -> str:
        """HASH region → numbers accepted by ingest and stored in Kafka (the reporter's
        coverage denominator; a number in two source files counts twice)."""
        return f"{self.prefix}:c:{self.campaign}:ingested"

    @property
    def queued(self) -> str:
        """HASH region → distinct numbers the assigner has queued (exact, after dedupe)."""
        return f"{self.prefix}:c:{self.campaign}:queued"

    @property
    def regions(self) -> str:
        """SET of the region codes that have ever had numbers queued."""
        return f"{self.prefix}:c:{self.campaign}:regions"


@dataclass(frozen=True)
class ReporterKeys:
    """The keys the reporter reads and writes for one campaign."""

    prefix: str
    campaign: str

    def _key(self, name: str) -> str:
        return f"{self.prefix}:c:{self.campaign}:report:{{rep:{self.campaign}}}:{name}"

    @property
    def checkpoint(self) -> str:
        """STRING: zlib-compressed JSON of the aggregate state and its Kafka offsets."""
        return self._key("checkpoint")

    @property
    def checkpoint_numbers(self) -> str:
        """HASH: segment id → the per-number states of that segment (written in one
        MULTI with :attr:`checkpoint`)."""
        return self._key("checkpoint:numbers")

    def volunteers_minute(self, minute: int) -> str:
        """HYPERLOGLOG of volunteer hashes with an outcome in one epoch minute."""
        return self._key(f"vol:m:{minute}")

    def volunteers_hour(self, hour: int) -> str:
        """HYPERLOGLOG of volunteer hashes with an outcome in one epoch hour."""
        return self._key(f"vol:h:{hour}")
