"""The lease client: acquire, renew, complete and release, each an atomic Lua call.

The volunteer's limits live in the volunteer's own Cluster slot (``{v:…}``), the
number in the region's (``{r:…}``), and no script may touch two slots. So acquire is
two atomic steps sent in one round trip: ``reserve`` takes one slot of both limits on
the volunteer's keys (refusing atomically when either is used up) and ``acquire`` leases
a number on the region's keys. If the reservation was refused, a lease granted
meanwhile is released at once; if no region yields a number, ``unreserve`` gives the
slot back (docs/lease-protocol.md, "Volunteer limits"). A client
that dies in between leaves a reservation that frees itself at its deadline (one lease
time to live). complete / release end the reservation; renew extends it.

Time inside every script is Redis ``TIME`` plus ``clock_offset_ms`` (0 in production;
tests move the clock with it). The client's own clock only picks which calling window
to pass; the script refuses a lease outside it by Redis time.

Every granted number is checked against the do-not-call list (one set per number
prefix, which no region script can read) before it is shown; a listed one's lease is
taken out unseen and the region tried again (:mod:`phonebank.leases.dnc`). Every lease
comes with a signed receipt (:mod:`phonebank.domain.lease_receipt`): a complete that
carries it is recorded, late, even if Redis lost the lease meanwhile.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from phonebank.domain import lease_receipt
from phonebank.domain.calling_calendar import CallingCalendar
from phonebank.domain.calling_hours import (
    CallingPolicy,
    Interval,
    effective_zones,
    from_ms,
    to_ms,
)
from phonebank.domain.clock import DAY_MS, HOUR_MS, SECOND_MS, now_ms
from phonebank.domain.guidelines import Guideline, GuidelineLibrary, load_guidelines
from phonebank.domain.lease_receipt import ReceiptFacts
from phonebank.domain.lease_types import (
    LEASE_ID_FORMAT,
    TOKEN_FORMAT,
    AlreadyCompletedError,
    BadArgumentError,
    Completion,
    CompletionStatus,
    IdempotencyKeyUsedError,
    Lease,
    LeaseExpiredError,
    NotLeaseHolderError,
    NumberDoNotCallError,
    OutsideCallingHoursError,
    Preferences,
    VolunteerLimitReachedError,
    lease_id_for,
    split_lease_id,
)
from phonebank.domain.records import Outcome
from phonebank.domain.regions import REGIONS, select_regions
from phonebank.domain.retry_policy import Disposition, RetryPolicy
from phonebank.infra.loop_bridge import blocking
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.replies import reply_text
from phonebank.leases import dnc
from phonebank.leases.keys import KeyScheme, RegionKeys, dnc_list_key
from phonebank.leases.limits import (
    VolunteerLimits,
    idempotent_ids,
    new_token,
    reservation_of,
    token_owner,
    volunteer_hash,
)
from phonebank.leases.metrics import LeaseMetrics, timed
from phonebank.leases.open_leases import OpenLease, OpenLeases
from phonebank.leases.region_choice import RegionChooser
from phonebank.leases.scripts import (
    LEASE_ID_IN_USE,
    ReturnCode,
    ScriptPipeline,
    Scripts,
    refused_argument,
)
from phonebank.leases.transport import Transport
from phonebank.settings import Settings, require_volunteer_secret

#: seconds: the GIL switch interval a process serving volunteers from many threads sets
#: (``sys.setswitchinterval``). CPython's default, 5 ms, is also how long a thread whose
#: Redis reply has arrived may wait for the GIL: it sets the tail of lease latency.
GIL_SWITCH_INTERVAL_SECONDS = 0.0005

#: distinct volunteer preferences whose guideline choice is cached (then forgotten at once)
GUIDE_CACHE_ENTRIES = 1024
#: regions one acquire tries before answering "nothing to call"
MAX_REGION_TRIES = 4
#: acquires retried in a region whose granted number was on the do-not-call list
MAX_SCREENED_RETRIES = 3


class Screened:
    """What ``_lease`` answers for a granted number found on the do-not-call list."""


#: the one :class:`Screened` answer
SCREENED = Screened()
#: milliseconds an ended lease hash is kept to match late and repeated answers (7 days)
LEASE_RETENTION_MS = 7 * 24 * HOUR_MS
#: most calling windows passed to complete (``MAX_WINDOWS`` of ``lua/includes/outcome.lua``)
SCHEDULE_WINDOWS = 16
#: windows passed beyond the days the longest retry delay spans (today's and a spare)
SCHEDULE_SPARE_WINDOWS = 2
#: milliseconds of client clock skew tolerated when choosing the windows of a schedule
SCHEDULE_SKEW_MS = HOUR_MS

_REFUSALS: dict[int, type[Exception]] = {
    ReturnCode.NOT_FOUND: NotLeaseHolderError,
    ReturnCode.NOT_HOLDER: NotLeaseHolderError,
    ReturnCode.RELEASED: NotLeaseHolderError,
    ReturnCode.EXPIRED: LeaseExpiredError,
    ReturnCode.ALREADY_COMPLETED: AlreadyCompletedError,
    ReturnCode.DO_NOT_CALL: NumberDoNotCallError,
}
_LIMITS = {
    ReturnCode.CONCURRENT_LIMIT: "too many leases open at once",
    ReturnCode.HOURLY_LIMIT: "hourly lease quota used up",
}
#: the fields of acquire-9's grant reply (a 6th, 1, marks a retry's existing lease)
_GRANT_REPLY = ("code", "number", "attempt", "deadline_ms", "now_ms")
_COMPLETION_STATUS = {
    ReturnCode.OK: CompletionStatus.RECORDED,
    ReturnCode.RECORDED_LATE: CompletionStatus.RECORDED_LATE,
    ReturnCode.ALREADY_RECORDED: CompletionStatus.ALREADY_RECORDED,
}


def campaign_region_zones(settings: Settings) -> dict[str, tuple[str, ...]]:
    """The zones of every region the campaign calls (``regions_include``/``_exclude``)."""
    chosen = select_regions(settings.regions_include, settings.regions_exclude)
    return {code: REGIONS[code].zones for code in sorted(chosen)}


def _refuse(operation: str, reply: Sequence[Any], lease_id: str) -> NoReturn:
    code = int(reply[0])
    argument = refused_argument(reply)
    if argument is not None:
        raise BadArgumentError(operation, argument)
    error = _REFUSALS.get(code)
    if error is None:
        raise RuntimeError(f"unexpected reply {code} for lease {lease_id}")
    raise error(f"lease {lease_id}: {ReturnCode(code).name.lower().replace('_', ' ')}")


class LeaseClient:
    """Leases numbers to volunteers; safe to share between threads."""

    def __init__(
        self,
        settings: Settings,
        client: RedisClient,
        region_zones: Mapping[str, Sequence[str]] | None = None,
        *,
        guidelines: GuidelineLibrary | None = None,
        retry_policy: RetryPolicy | None = None,
        clock_offset_ms: int = 0,
        rng: random.Random | None = None,
        metrics: LeaseMetrics | None = None,
        transport: Transport | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        #: latency and grant counters, when the process serving volunteers exposes them
        self.metrics = metrics
        self._keys = KeyScheme(settings.key_prefix, settings.campaign)
        zones_by_region = campaign_region_zones(settings) if region_zones is None else region_zones
        self._region_zones = {region: tuple(zones) for region, zones in zones_by_region.items()}
        self._guidelines = guidelines or load_guidelines()
        self._policy = retry_policy or RetryPolicy()
        self._calling = CallingPolicy.from_settings(settings)
        #: every campaign region's calling windows, computed ahead
        self.calendar = CallingCalendar(self._region_zones, self._calling)
        #: the guideline per allowed region, by volunteer preferences (bounded; see _guides)
        self._guides_by_preferences: dict[Preferences, dict[str, Guideline]] = {}
        #: the last open set, guides, and the open regions among them (see _open_among)
        self._open_cache: (
            tuple[Mapping[str, Interval], Mapping[str, Guideline], Mapping[str, Interval]] | None
        ) = None
        #: every call goes through it (the gateway's: awaited on its event loop)
        self._scripts = Scripts(client, transport)
        self._secret = require_volunteer_secret(settings)
        self._ttl_ms = settings.lease_ttl_seconds * SECOND_MS
        #: the volunteers' records of leases that may be open (lost answers are found)
        self.open_leases = OpenLeases(client, self._keys, self._scripts, self._ttl_ms)
        #: test-only milliseconds added to Redis TIME inside the scripts (0 in production)
        self.clock_offset_ms = clock_offset_ms
        self._limits = VolunteerLimits(
            self._keys, settings.volunteer_max_leases, settings.volunteer_max_per_hour, self._ttl_ms
        )
        self.chooser = RegionChooser(client, self._keys, self._region_zones, rng, self._scripts)

    def now_ms(self) -> int:
        """The client's estimate of script time: its clock plus the offset."""
        return now_ms(self.clock_offset_ms)

    # --- acquire -----------------------------------------------------------------------

    @timed("acquire")
    def acquire(
        self,
        volunteer: str,
        preferences: Preferences | None = None,
        idempotency_key: str | None = None,
    ) -> Lease | None:
        """Lease one number to ``volunteer``, or ``None`` when no open region has one.

        With an ``idempotency_key`` the lease id and token derive from it: a retry with
        the same key answers the lease the first call got (``existing`` set)."""
        person = volunteer_hash(self._secret, volunteer)
        if idempotency_key is None:
            token, suffix = new_token(person), None
        else:
            token, suffix = idempotent_ids(self._secret, person, idempotency_key)
            held = [lease for lease in self.open_leases_of(volunteer) if lease.token == token]
            if held:
                return held[0]
        lease = self._acquire(token, suffix, preferences)
        if lease is not None and not lease.existing and self.metrics is not None:
            self.metrics.granted.labels(lease.region).inc()
        return lease

    def open_leases_of(self, volunteer: str, preferences: Preferences | None = None) -> list[Lease]:
        """The volunteer's live leases, most recently granted first (``existing`` set)."""
        person = volunteer_hash(self._secret, volunteer)
        found = self.open_leases.find(person, self._region_zones.__contains__, self.now_ms())
        languages = (preferences or Preferences()).languages
        return [self._reopened(lease, languages) for lease in found]

    def _reopened(self, held: OpenLease, languages: Sequence[str]) -> Lease:
        translations = self._guidelines.translations(held.guideline)
        language = next((code for code in languages if code in translations), None)
        if language is None:
            language = "ru" if "ru" in translations else next(iter(sorted(translations)), "")
        zone = effective_zones(self._region_zones[held.region])[0]
        receipt = self._receipt(
            held.lease_id,
            held.token,
            number=held.national_number,
            attempt=held.attempt,
            at_ms=held.leased_at_ms,
            guide=held.guideline,
        )
        return Lease(
            receipt=receipt,
            lease_id=held.lease_id,
            token=held.token,
            national_number=held.national_number,
            region=held.region,
            zone=zone,
            callee_local_time=from_ms(self.now_ms(), zone),
            guideline=held.guideline,
            guideline_language=language,
            leased_at_ms=held.leased_at_ms,
            deadline_ms=held.deadline_ms,
            attempt=held.attempt,
            existing=True,
        )

    def _acquire(
        self, token: str, suffix: str | None, preferences: Preferences | None
    ) -> Lease | None:
        now = self.now_ms()
        guides = self._guides(preferences or Preferences())
        open_now = self._open_among(guides, now)
        if not open_now:
            opening = self.calendar.next_opening(guides, now)
            raise OutsideCallingHoursError("no region you may call is open now", opening)
        ordered = self.chooser.pick(open_now, now, MAX_REGION_TRIES)
        if not ordered:
            return None
        # One round trip: reserve on the volunteer's slot, record the lease as possibly
        # open there, acquire in the first region.
        batch = self._scripts.pipeline(self._client)
        self._limits.reserve(batch, token, self.clock_offset_ms)
        first = self._queue_acquire(
            batch, ordered[0], open_now[ordered[0]], guides, token, suffix=suffix
        )
        replies = batch.execute()
        reserved, acquired = replies[0], replies[-1]
        if reserved[0] != ReturnCode.OK:
            kept = self._undo(first, guides[ordered[0]], acquired, token)
            if kept is not None:
                return kept
            self._refuse_reservation(reserved)
        lease = self._lease(first, guides[ordered[0]], token, acquired)
        # a number found on the do-not-call list was taken out unseen: the same region
        # is tried again (at most MAX_SCREENED_RETRIES times per acquire)
        tries = [ordered[0]] * MAX_SCREENED_RETRIES if lease is SCREENED else []
        tries += ordered[1:]
        for region in tries:
            if isinstance(lease, Lease) or acquired[0] == ReturnCode.BAD_ARGUMENT:
                break
            batch = self._scripts.pipeline(self._client)
            lease_id = self._queue_acquire(
                batch, region, open_now[region], guides, token, suffix=suffix
            )
            acquired = batch.execute()[-1]
            lease = self._lease(lease_id, guides[region], token, acquired)
        if not isinstance(lease, Lease):
            self._give_back(token, acquired)
            return None
        return lease

    @staticmethod
    def _refuse_reservation(reserved: Sequence[Any]) -> NoReturn:
        argument = refused_argument(reserved)
        if argument is not None:
            raise BadArgumentError("reserve", argument)
        code = ReturnCode(int(reserved[0]))
        raise VolunteerLimitReachedError(
            _LIMITS[code], int(reserved[1]), concurrent=code == ReturnCode.CONCURRENT_LIMIT
        )

    def _give_back(self, token: str, acquired: Sequence[Any]) -> None:
        """No region leased a number: free the reservation and the open-lease record;
        an acquire refused for its arguments raises (the reservation freed first)."""
        batch = self._scripts.pipeline(self._client)
        self._limits.unreserve(batch, token)
        self.open_leases.forget(batch, token)
        batch.execute()
        argument = refused_argument(acquired)
        if argument == LEASE_ID_IN_USE:
            raise IdempotencyKeyUsedError("the idempotency key's lease has ended")
        if argument is not None:
            raise BadArgumentError("acquire", argument)

    def _open_among(self, guides: Mapping[str, Guideline], now: int) -> Mapping[str, Interval]:
        """The regions of ``guides`` open at ``now``: the same object while neither the
        open set nor ``guides`` changes (the chooser keeps its draw table per object)."""
        open_now = self.calendar.open_now(now)
        cached = self._open_cache
        if cached is not None and cached[0] is open_now and cached[1] is guides:
            return cached[2]
        allowed = {region: window for region, window in open_now.items() if region in guides}
        self._open_cache = (open_now, guides, allowed)
        return allowed

    def _guides(self, preferences: Preferences) -> dict[str, Guideline]:
        """The guideline of every campaign region ``preferences`` allow (regions with
        none in the volunteer's languages are left out), cached per preferences."""
        guides = self._guides_by_preferences.get(preferences)
        if guides is None:
            guides = {}
            for region in self._region_zones:
                guide = self._guidelines.pick(region, preferences.languages)
                if preferences.allows(region) and guide is not None:
                    guides[region] = guide
            if len(self._guides_by_preferences) >= GUIDE_CACHE_ENTRIES:
                self._guides_by_preferences.clear()
            self._guides_by_preferences[preferences] = guides
        return guides

    def _queue_acquire(
        self,
        batch: ScriptPipeline,
        region: str,
        window: Interval,
        guides: Mapping[str, Guideline],
        token: str,
        *,
        suffix: str | None,
    ) -> str:
        keys = self._keys.region(region)
        lease_id = lease_id_for(region, suffix or uuid.uuid4().hex)
        self.open_leases.record(batch, token, lease_id)
        batch.script(
            "acquire",
            keys,
            [
                lease_id,
                token,
                token_owner(token) or "",
                self._ttl_ms,
                window.start_ms,
                window.end_ms,
                guides[region].ref,
                self._settings.campaign,
                region,
                self.clock_offset_ms,
            ],
            lease_id=lease_id,
        )
        return lease_id

    def _undo(
        self, lease_id: str, guide: Guideline, acquired: list[Any], token: str
    ) -> Lease | None:
        """The volunteer was over a limit but the region granted a lease: give it back,
        unless it is the lease a retried acquire already held (then keep and answer it)."""
        if acquired[0] != ReturnCode.OK:
            batch = self._scripts.pipeline(self._client)
            self.open_leases.forget(batch, token)
            batch.execute()
            return None
        if len(acquired) > len(_GRANT_REPLY):
            kept = self._lease(lease_id, guide, token, acquired)
            return kept if isinstance(kept, Lease) else None
        self.release(lease_id, token)
        return None

    def _lease(
        self, lease_id: str, guide: Guideline, token: str, reply: list[Any]
    ) -> Lease | Screened | None:
        """The lease an acquire reply granted; None when it granted none; SCREENED when
        the number was on the do-not-call list (its lease was taken out, unseen)."""
        region, _ = split_lease_id(lease_id)
        if reply[0] == ReturnCode.EMPTY:
            self.chooser.mark_drained(region)
        if reply[0] != ReturnCode.OK:
            return None
        _, number, attempt, deadline_ms, now_ms = reply[: len(_GRANT_REPLY)]
        existing = len(reply) > len(_GRANT_REPLY)
        if self._listed(region, int(number), lease_id, seen=existing):
            # a retried acquire's lease may have been shown: it ends, and is not retried
            return None if existing else SCREENED
        zone = effective_zones(self._region_zones[region])[0]
        return Lease(
            receipt=self._receipt(
                lease_id,
                token,
                number=int(number),
                attempt=int(attempt),
                at_ms=int(now_ms),
                guide=guide.ref,
            ),
            lease_id=lease_id,
            token=token,
            national_number=int(number),
            region=region,
            zone=zone,
            callee_local_time=from_ms(int(now_ms), zone),
            guideline=guide.ref,
            guideline_language=guide.language,
            leased_at_ms=int(now_ms),
            deadline_ms=int(deadline_ms),
            attempt=int(attempt),
            existing=existing,
        )

    def _receipt(
        self, lease_id: str, token: str, *, number: int, attempt: int, at_ms: int, guide: str
    ) -> str:
        """The signed receipt of a lease (see :mod:`phonebank.domain.lease_receipt`)."""
        facts = ReceiptFacts(
            lease_id=lease_id,
            national_number=number,
            attempt=attempt,
            leased_at_ms=at_ms,
            guideline=guide,
            campaign=self._settings.campaign,
            volunteer=token_owner(token) or "",
            reservation=reservation_of(token),
        )
        return lease_receipt.issue(self._secret, facts)

    def _recovered(self, lease_id: str, token: str, receipt: str | None) -> list[str | int]:
        """The recovered-lease arguments of complete for a receipt of this lease and
        token (none without a receipt); NotLeaseHolderError for a receipt that is not."""
        if receipt is None:
            return []
        facts = lease_receipt.verify(self._secret, receipt)
        if (
            facts is None
            or facts.lease_id != lease_id
            or facts.reservation != reservation_of(token)
            or facts.campaign != self._settings.campaign
        ):
            raise NotLeaseHolderError(f"lease {lease_id}: the receipt is not this lease's")
        return [
            facts.national_number,
            facts.attempt,
            facts.leased_at_ms,
            facts.volunteer,
            facts.guideline,
            facts.campaign,
        ]

    def _listed(self, region: str, number: int, lease_id: str, *, seen: bool) -> bool:
        """Whether a granted number is on the do-not-call list (the one list, by number
        prefix, that no region script can read); if so its lease is ended (deleted when
        it was never ``seen``). The check is sent on the lease client's own transport (one
        packed command on a pooled connection), not redis-py's command path."""
        check = self._scripts.pipeline(self._client)
        check.sismember(dnc_list_key(self._settings.key_prefix, number), str(number))
        if not int(check.execute()[0]):
            return False
        batch = self._scripts.pipeline(self._client)
        dnc.queue_ban(batch, self._keys, region, number, lease_id, seen=seen)
        batch.execute()
        return True

    # --- renew, complete, release --------------------------------------------------------

    def _region_keys(self, lease_id: str, token: str) -> tuple[str, RegionKeys]:
        """The lease's region and keys; a lease id or token no script would accept is
        nobody's lease (the caller's input, refused before any call)."""
        if not LEASE_ID_FORMAT.match(lease_id) or not TOKEN_FORMAT.match(token):
            raise NotLeaseHolderError(f"lease {lease_id!r}: malformed lease id or token")
        region, _ = split_lease_id(lease_id)
        if region not in self._region_zones:
            raise NotLeaseHolderError(f"lease {lease_id}: unknown region")
        return region, self._keys.region(region)

    def hold_off(self, number: int) -> None:
        """Put ``number`` on the do-not-call list without ending any lease: a do_not_call
        answer whose journal write failed may still reach Kafka (a timed-out send can land
        later), so no one else is given the number while its holder retries the answer."""
        batch = self._scripts.pipeline(self._client)
        batch.sadd(dnc_list_key(self._settings.key_prefix, number), str(number))
        batch.execute()

    def number_of(self, lease_id: str, token: str, receipt: str | None = None) -> int | None:
        """The number of the lease ``lease_id`` if ``token`` is its token (any state; or,
        once Redis lost the lease, as its ``receipt`` says), else None: what a
        do_not_call answer must make durable before the lease is completed."""
        _, keys = self._region_keys(lease_id, token)
        batch = self._scripts.pipeline(self._client)
        batch.hmget(keys.lease(lease_id), "token", "number")
        held, number = batch.execute()[0]
        if held is None and receipt is not None:
            return int(self._recovered(lease_id, token, receipt)[0])
        if held is None or number is None or reply_text(held) != token:
            return None
        return int(number)

    @timed("renew")
    def renew(self, lease_id: str, token: str) -> int:
        """Restart the lease's countdown; returns the new deadline (epoch ms)."""
        region, keys = self._region_keys(lease_id, token)
        now = self.now_ms()
        window = self.calendar.window_at(region, now)
        window_end = window.end_ms if window is not None else 0
        batch = self._scripts.pipeline(self._client)
        batch.script(
            "renew",
            keys,
            [lease_id, token, self._ttl_ms, window_end, self.clock_offset_ms],
            lease_id=lease_id,
        )
        self._limits.extend(batch, token, min(now + self._ttl_ms, window_end))
        reply = batch.execute()[0]
        if reply[0] != ReturnCode.OK:
            _refuse("renew", reply, lease_id)
        return int(reply[1])

    @timed("complete")
    def complete(
        self,
        lease_id: str,
        token: str,
        outcome: Outcome,
        callback_at: dt.datetime | None = None,
        receipt: str | None = None,
    ) -> Completion:
        """Record the outcome of the call (``callback_at``: aware datetime, for callbacks).
        With the lease's ``receipt`` it is recorded (late) even if Redis lost the lease."""
        region, keys = self._region_keys(lease_id, token)
        recovered = self._recovered(lease_id, token, receipt)
        rule = self._policy.rule(Outcome(outcome))
        callback_ms = to_ms(callback_at) if callback_at is not None else 0
        anchor = max(self.now_ms(), callback_ms) - SCHEDULE_SKEW_MS
        longest = max(rule.retry_delays_ms, default=0)
        wanted = min(SCHEDULE_WINDOWS, -(-longest // DAY_MS) + SCHEDULE_SPARE_WINDOWS)
        windows = self.calendar.upcoming(region, anchor, wanted)
        schedule: list[str | int] = [len(rule.retry_delays_ms), *rule.retry_delays_ms, len(windows)]
        for window in windows:
            schedule.extend(window)
        batch = self._scripts.pipeline(self._client)
        batch.script(
            "complete",
            keys,
            [
                lease_id,
                token,
                Outcome(outcome).value,
                *rule.script_args(),
                callback_ms,
                LEASE_RETENTION_MS,
                self.clock_offset_ms,
                *schedule,
                *recovered,
            ],
            lease_id=lease_id,
        )
        self._limits.end(batch, token)
        self.open_leases.forget(batch, token)
        reply = batch.execute()[0]
        if rule.disposition is Disposition.DO_NOT_CALL and len(reply) > 4:
            # the one list (by prefix), and any other lease of the number ends (redis-py
            # commands: in a worker thread when on the gateway's loop)
            blocking(
                dnc.add_numbers,
                self._client,
                self._settings.key_prefix,
                [int(reply[4])],
                lambda _: None,
                campaign=self._settings.campaign,
            )
        status = _COMPLETION_STATUS.get(ReturnCode(int(reply[0])))
        if status is None:
            _refuse("complete", reply, lease_id)
        return Completion(status, reply_text(reply[1]), reply_text(reply[3]))

    @timed("release")
    def release(self, lease_id: str, token: str) -> None:
        """Give the number back, uncalled: front of the queue, no attempt counted."""
        _, keys = self._region_keys(lease_id, token)
        batch = self._scripts.pipeline(self._client)
        batch.script(
            "release",
            keys,
            [lease_id, token, LEASE_RETENTION_MS, self.clock_offset_ms],
            lease_id=lease_id,
        )
        self._limits.end(batch, token)
        self.open_leases.forget(batch, token)
        reply = batch.execute()[0]
        if reply[0] != ReturnCode.OK:
            _refuse("release", reply, lease_id)
