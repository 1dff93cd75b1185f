"""The script loader and the facts Lua and Python share, each with one source.

The KEYS of a call come from the script's header by name; the return codes and the
limits the scripts enforce are mirrored in Python and must stay equal.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from phonebank.domain.clock import SECOND_MS
from phonebank.domain.records import REACHED, Outcome
from phonebank.domain.retry_policy import (
    ALLOWED_DISPOSITIONS,
    MAX_ATTEMPTS,
    MAX_RETRY_DELAY_MS,
    MAX_RETRY_DELAYS,
    RetryPolicy,
)
from phonebank.leases import protocol_doc, scripts
from phonebank.leases.client import LEASE_RETENTION_MS, SCHEDULE_WINDOWS
from phonebank.leases.dnc import BANNED_LEASE_RETENTION_MS
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import ENQUEUE_BATCH
from phonebank.leases.scripts import ReturnCode, ScriptError, header_key_names, render_all
from phonebank.settings import Settings

#: ``local NAME = -10`` in a Lua file
LUA_CONSTANT = re.compile(r"^local (?P<name>[A-Z_]+) = (?P<value>-?\d+)\s*$", re.MULTILINE)
#: ``local MIN_X, MAX_X = 1, 2`` in a Lua file
LUA_PAIR = re.compile(
    r"^local (?P<low>[A-Z_]+), (?P<high>[A-Z_]+) = (?P<a>-?\d+), (?P<b>-?\d+)\s*$", re.MULTILINE
)
#: ``  do_not_call = 'dnc',`` in the outcome table of includes/outcomes.lua
LUA_OUTCOME = re.compile(r"^  (?P<outcome>[a-z_]+) = '(?P<dispositions>[a-z ]+)',$", re.MULTILINE)
#: the set of reached outcomes in includes/outcomes.lua
LUA_REACHED = re.compile(r"^local REACHED_OUTCOMES = \{(?P<body>[^}]*)\}$", re.MULTILINE)
#: scripts whose KEYS are a volunteer's, not a region's
VOLUNTEER_SCRIPTS = {"reserve", "unreserve"}


def lua_constants(path: Path) -> dict[str, int]:
    return {m["name"]: int(m["value"]) for m in LUA_CONSTANT.finditer(path.read_text())}


def lua_pairs(path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for m in LUA_PAIR.finditer(path.read_text()):
        found[m["low"]], found[m["high"]] = int(m["a"]), int(m["b"])
    return found


def test_return_codes_are_the_same_in_lua_and_python() -> None:
    lua = lua_constants(scripts.LUA_FOLDER / "includes" / "codes.lua")
    assert lua == {code.name: code.value for code in ReturnCode}


@pytest.mark.parametrize(
    ("script", "constant", "python"),
    [
        ("includes/outcome.lua", "MAX_WINDOWS", SCHEDULE_WINDOWS),
        ("includes/outcome.lua", "MAX_RETRY_DELAYS", MAX_RETRY_DELAYS),
        ("enqueue-4.lua", "MAX_NUMBERS", ENQUEUE_BATCH),
        ("complete-11.lua", "MAX_ATTEMPTS", MAX_ATTEMPTS),
        ("includes/outcome.lua", "MAX_RETRY_DELAY_MS", MAX_RETRY_DELAY_MS),
    ],
)
def test_limits_mirrored_in_python_equal_the_scripts(
    script: str, constant: str, python: int
) -> None:
    assert lua_constants(scripts.LUA_FOLDER / script)[constant] == python


def test_the_outcome_table_is_the_same_in_lua_and_python() -> None:
    # Given the outcome table the complete script checks its arguments against
    text = (scripts.LUA_FOLDER / "includes" / "outcomes.lua").read_text()
    lua = {m["outcome"]: set(m["dispositions"].split()) for m in LUA_OUTCOME.finditer(text)}
    reached = LUA_REACHED.search(text)
    assert reached is not None
    # Then it allows exactly the dispositions the domain allows, for the same outcomes
    python = {o.value: {d.value for d in allowed} for o, allowed in ALLOWED_DISPOSITIONS.items()}
    assert lua == python
    assert set(re.findall(r"(\w+) = true", reached["body"])) == {o.value for o in REACHED}
    # And every outcome a volunteer can report has a row, and the default policy fits it
    assert set(python) == {o.value for o in Outcome} - {Outcome.EXPIRED.value}
    for outcome, rule in RetryPolicy().rules.items():
        assert rule.disposition in ALLOWED_DISPOSITIONS[outcome], outcome


def test_the_client_sends_values_inside_the_scripts_bounds() -> None:
    # Given the bounds the scripts check (args.lua, acquire-9.lua, renew-2.lua)
    bounds = lua_pairs(scripts.LUA_FOLDER / "includes" / "args.lua")
    ttl = lua_pairs(scripts.LUA_FOLDER / "acquire-9.lua")
    assert ttl == lua_pairs(scripts.LUA_FOLDER / "renew-2.lua")
    # Then the retention and every lease time to live the settings allow are inside them
    assert bounds["MIN_RETENTION_MS"] <= LEASE_RETENTION_MS <= bounds["MAX_RETENTION_MS"]
    assert BANNED_LEASE_RETENTION_MS == LEASE_RETENTION_MS
    field = Settings.model_fields["lease_ttl_seconds"]
    limits = {type(m).__name__: m for m in field.metadata}
    low, high = limits["Ge"].ge * SECOND_MS, limits["Le"].le * SECOND_MS
    assert ttl["MIN_TTL_MS"] <= low and high <= ttl["MAX_TTL_MS"]


def test_every_header_names_keys_the_key_scheme_has() -> None:
    # Given the key scheme of one region and one volunteer, and one rate-limit window
    keys = KeyScheme("pb", "default")
    region, volunteer = keys.region("RU-MOW"), keys.volunteer("v" * 32)
    window = {"window": keys.rate_window("token", "0" * 32)}
    for operation, source in render_all().items():
        holder = volunteer if operation in VOLUNTEER_SCRIPTS else region
        # When the KEYS of a call are built from the header
        built = source.keys(window if operation == "ratelimit" else holder, "RU-MOW." + "0" * 32)
        # Then there are as many as the file name says, all in one Cluster slot
        assert len(built) == source.numkeys, operation
        if operation == "ratelimit":
            continue  # one key: one slot, no hash tag needed
        tags = {re.search(r"\{[^}]*\}", key)[0] for key in built}  # type: ignore[index]
        assert len(tags) == 1, (operation, tags)


def test_both_header_styles_give_the_keys_in_order() -> None:
    one_a_line = "--[[\n  KEYS\n    1 ready  LIST  x\n    2 due    ZSET  y\n  ARGV\n]]"
    several = "--[[\n  KEYS\n    1 ready LIST   2 due ZSET\n    3 dnc SET\n  ARGV\n]]"
    assert header_key_names(one_a_line, "a") == ("ready", "due")
    assert header_key_names(several, "b") == ("ready", "due", "dnc")


def test_a_gap_in_the_keys_numbering_is_refused() -> None:
    with pytest.raises(ScriptError, match="numbered"):
        header_key_names("KEYS\n 1 ready LIST\n 3 due ZSET\nARGV", "gap.lua")


def test_a_key_the_holder_lacks_is_named() -> None:
    source = render_all()["renew"]
    with pytest.raises(ScriptError, match="no key 'leases'"):
        source.keys({"lease": "x"})
    with pytest.raises(ScriptError, match="needs the lease id"):
        source.keys(KeyScheme("pb", "default").region("RU-MOW"))


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


HEADER = "--[[\n  KEYS\n    1 ready LIST\n  ARGV\n    1 x\n]]\n"


def test_a_bad_file_name_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "Acquire.lua", HEADER)
    with pytest.raises(ScriptError, match=re.escape("<operation>-<numkeys>.lua")):
        render_all(tmp_path)


def test_a_file_name_that_disagrees_with_the_header_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "peek-2.lua", HEADER)
    with pytest.raises(ScriptError, match="lists 1 KEYS, not 2"):
        render_all(tmp_path)


def test_a_missing_include_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "peek-1.lua", HEADER + '--- @include "includes/nope.lua"\n')
    with pytest.raises(ScriptError, match=re.escape("include 'includes/nope.lua' not found")):
        render_all(tmp_path)


def test_includes_are_inlined_once() -> None:
    for source in render_all().values():
        assert "@include" not in source.text
        assert source.text.count("local BAD_ARGUMENT = -10") == 1


def test_the_protocol_document_shows_the_current_headers() -> None:
    # Given the document, When its generated part is made again from the scripts
    document = (Path(__file__).resolve().parents[2] / "docs" / "lease-protocol.md").read_text()
    # Then nothing changes (else: make docs)
    assert protocol_doc.rewrite(document) == document, "stale script tables: make docs"
    assert "| `complete-11` | `ready` LIST · `due` ZSET" in document
