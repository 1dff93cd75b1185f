"""The Redis key scheme: every key phonebank writes is named here and nowhere else.

Keys of one region carry the hash tag ``{r:REGION}``, so every Lua script that works on
one region touches one Redis Cluster slot. The do-not-call set is keyed by region too
(a number's region never changes) but not by campaign: do-not-call is global.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Digits of the national-number prefix that selects a dedupe bitmap (916 of 9161234567).
DEDUPE_PREFIX_DIGITS = 3
#: Bits in one dedupe bitmap: one per possible 7-digit subscriber number (1.25 MB).
DEDUPE_BITS_PER_PREFIX = 10**7


def region_tag(region: str) -> str:
    """The hash tag shared by every key of ``region``."""
    return f"{{r:{region}}}"


@dataclass(frozen=True)
class RegionKeys:
    """The keys of one region of one campaign (one Cluster slot)."""

    prefix: str
    campaign: str
    region: str

    def _key(self, name: str) -> str:
        return f"{self.prefix}:c:{self.campaign}:{region_tag(self.region)}:{name}"

    @property
    def ready(self) -> str:
        """LIST of national numbers waiting for their first (or a released) call."""
        return self._key("ready")

    @property
    def due(self) -> str:
        """ZSET national number → epoch seconds when a retry or callback becomes due."""
        return self._key("due")

    @property
    def leases(self) -> str:
        """ZSET lease id → deadline (epoch milliseconds)."""
        return self._key("leases")

    def lease(self, lease_id: str) -> str:
        """HASH of one lease: number, token, volunteer, attempt, deadline …"""
        return self._key(f"lease:{lease_id}")

    @property
    def numbers(self) -> str:
        """HASH national number → state record (attempts, expiries, last outcome)."""
        return self._key("numbers")

    @property
    def parked(self) -> str:
        """SET of numbers parked after too many lease expiries."""
        return self._key("parked")

    @property
    def outcomes(self) -> str:
        """STREAM of outcome events, relayed to Kafka ``phonebank.outcomes``."""
        return self._key("outcomes")

    @property
    def counters(self) -> str:
        """HASH of per-region counters (enqueued, leased, expired, …)."""
        return self._key("counters")

    @property
    def dnc(self) -> str:
        """SET of do-not-call national numbers of this region, for every campaign."""
        return f"{self.prefix}:dnc:{region_tag(self.region)}"


@dataclass(frozen=True)
class KeyScheme:
    """All keys of one campaign under one prefix."""

    prefix: str
    campaign: str

    def region(self, region: str) -> RegionKeys:
        """The keys of one region."""
        return RegionKeys(self.prefix, self.campaign, region)

    def seen(self, national_prefix: str) -> str:
        """BITMAP of numbers already accepted by the assigner, one bit per subscriber number."""
        return f"{self.prefix}:c:{self.campaign}:seen:{{p:{national_prefix}}}"

    def volunteer(self, volunteer: str) -> str:
        """HASH of one volunteer's live lease ids and hourly counter (own slot)."""
        return f"{self.prefix}:c:{self.campaign}:vol:{{v:{volunteer}}}"

    @property
    def regions(self) -> str:
        """SET of the region codes that have ever had numbers queued."""
        return f"{self.prefix}:c:{self.campaign}:regions"

    @property
    def clock_offset(self) -> str:
        """STRING: test-only milliseconds added to Redis TIME by the scripts."""
        return f"{self.prefix}:clock-offset"
