"""The script loader and the facts Lua and Python share, each with one source.

The KEYS of a call come from the script's header by name; the return codes and the
limits the scripts enforce are mirrored in Python and must stay equal.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from phonebank.domain.retry_policy import MAX_RETRY_DELAYS
from phonebank.leases import scripts
from phonebank.leases.client import SCHEDULE_WINDOWS
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import ENQUEUE_BATCH
from phonebank.leases.scripts import ReturnCode, ScriptError, header_key_names, render_all

#: ``local NAME = -10`` in a Lua file
LUA_CONSTANT = re.compile(r"^local (?P<name>[A-Z_]+) = (?P<value>-?\d+)\s*$", re.MULTILINE)
#: scripts whose KEYS are a volunteer's, not a region's
VOLUNTEER_SCRIPTS = {"reserve", "unreserve"}


def lua_constants(path: Path) -> dict[str, int]:
    return {m["name"]: int(m["value"]) for m in LUA_CONSTANT.finditer(path.read_text())}


def test_return_codes_are_the_same_in_lua_and_python() -> None:
    lua = lua_constants(scripts.LUA_FOLDER / "includes" / "codes.lua")
    assert lua == {code.name: code.value for code in ReturnCode}


@pytest.mark.parametrize(
    ("script", "constant", "python"),
    [
        ("includes/outcome.lua", "MAX_WINDOWS", SCHEDULE_WINDOWS),
        ("includes/outcome.lua", "MAX_RETRY_DELAYS", MAX_RETRY_DELAYS),
        ("enqueue-4.lua", "MAX_NUMBERS", ENQUEUE_BATCH),
    ],
)
def test_limits_mirrored_in_python_equal_the_scripts(
    script: str, constant: str, python: int
) -> None:
    assert lua_constants(scripts.LUA_FOLDER / script)[constant] == python


def test_every_header_names_keys_the_key_scheme_has() -> None:
    # Given the key scheme of one region and one volunteer
    keys = KeyScheme("pb", "default")
    region, volunteer = keys.region("RU-MOW"), keys.volunteer("v" * 32)
    for operation, source in render_all().items():
        holder = volunteer if operation in VOLUNTEER_SCRIPTS else region
        # When the KEYS of a call are built from the header
        built = source.keys(holder, lease_id="RU-MOW." + "0" * 32)
        # Then there are as many as the file name says, all in one Cluster slot
        assert len(built) == source.numkeys, operation
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
