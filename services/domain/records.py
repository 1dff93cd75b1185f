"""Wire records: what travels through Kafka, as pydantic models with a compact JSON form.

Numbers travel as national significant numbers (10 digits, ``9161234567`` for
``+79161234567``): what the dedupe bitmaps index. Number chunks travel in the compact
binary form of :mod:`phonebank.domain.chunk_codec` (sorted, delta-coded, zstd; JSON
chunks of the first version still decode); outcome and do-not-call records as JSON.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from phonebank.domain import chunk_codec


def e164(national: int) -> str:
    """``9161234567`` → ``+79161234567``."""
    return f"+7{national}"


def masked(national: int) -> str:
    """A number fit for a log line: country, prefix and last two digits only."""
    text = str(national)
    return f"+7{text[:3]}*****{text[-2:]}"


class NumberChunk(BaseModel):
    """One Kafka record of ``phonebank.numbers``: numbers of ONE region from one source."""

    model_config = ConfigDict(frozen=True)

    campaign: str
    region: str
    source: str = Field(description="Source id: content hash of the file, or generator seed.")
    seq: int = Field(ge=0, description="Chunk sequence within the source.")
    numbers: list[int] = Field(description="National significant numbers, 10 digits.")

    def encode(self) -> bytes:
        """The record value (wire format version 2): the numbers go in sorted."""
        numbers = np.asarray(self.numbers, dtype=np.int64)
        return chunk_codec.encode(self.campaign, self.region, self.source, self.seq, numbers)

    @classmethod
    def decode(cls, value: bytes) -> NumberChunk:
        """Parse a record value of either version; raises ``ValueError`` on a bad one:
        :class:`~phonebank.domain.chunk_codec.ChunkFormatError`, or pydantic's
        ``ValidationError`` for bad JSON."""
        if not isinstance(value, bytes):  # a tombstone (None) or a foreign type
            raise chunk_codec.ChunkFormatError("number chunk record without a bytes value")
        if chunk_codec.is_json(value):
            return cls.model_validate_json(value)
        chunk = chunk_codec.decode(value)
        return cls.model_construct(
            campaign=chunk.campaign,
            region=chunk.region,
            source=chunk.source,
            seq=chunk.seq,
            numbers=chunk.numbers.tolist(),
        )


class Outcome(StrEnum):
    """What happened on a call (DESIGN.md, "Outcomes and retries")."""

    CONVERSATION = "conversation"
    REFUSED = "refused"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"
    WRONG_NUMBER = "wrong_number"
    NOT_IN_SERVICE = "not_in_service"
    DO_NOT_CALL = "do_not_call"
    SKIPPED = "skipped"
    #: The volunteer's channel could not place the call (messenger blocked, number not on
    #: it): not an attempt on the person; the number is due again later.
    UNREACHABLE_CHANNEL = "unreachable_channel"
    #: Not a volunteer's answer: the lease ran out (written by the reaper).
    EXPIRED = "expired"


#: Outcomes that count as having reached the callee.
REACHED = frozenset({Outcome.CONVERSATION, Outcome.REFUSED, Outcome.CALLBACK})


class OutcomeEvent(BaseModel):
    """One Kafka record of ``phonebank.outcomes``: one completed (or expired) lease."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(description="Unique id; consumers dedupe by it.")
    campaign: str
    region: str
    number: int = Field(description="National significant number.")
    outcome: Outcome
    attempt: int = Field(ge=0, description="Attempt number this lease was (1-based).")
    lease_id: str
    volunteer: str = Field(description="Keyed hash of the volunteer id, never the id itself.")
    guideline: str = Field(description="Guideline id@version given with the lease.")
    leased_at_ms: int = Field(description="Epoch milliseconds the lease was granted (Redis TIME).")
    completed_at_ms: int = Field(description="Epoch milliseconds of completion (Redis TIME).")
    late: bool = Field(False, description="Completed after the lease had expired.")
    next_state: str = Field(
        "",
        description="What the step did to the number: ready, due, done, retired, dnc, parked, "
        "or unchanged (a late answer that moved nothing); empty in events of older versions.",
    )

    def encode(self) -> bytes:
        """The record value."""
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, value: bytes) -> OutcomeEvent:
        """Parse a record value; raises ``pydantic.ValidationError`` on a bad one."""
        return cls.model_validate_json(value)


class DncRecord(BaseModel):
    """One record of ``phonebank.dnc`` (key: the number): an operator's do-not-call entry.

    Do-not-call answers given on a call travel as outcome events; this topic holds the
    ones added by ``phonebank dnc``, so that Redis can be rebuilt from Kafka alone.
    """

    model_config = ConfigDict(frozen=True)

    number: int = Field(description="National significant number.")
    region: str = Field(description="Region code, or 'unplaced'.")
    added_at_ms: int = Field(description="Epoch milliseconds it was added.")

    def encode(self) -> bytes:
        """The record value."""
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, value: bytes) -> DncRecord:
        """Parse a record value; raises ``pydantic.ValidationError`` on a bad one."""
        return cls.model_validate_json(value)
