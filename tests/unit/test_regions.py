"""The region table: merged registry entries are built from the subjects they merge."""

from __future__ import annotations

from phonebank.domain.regions import COMBINED_CODES, REGIONS, Region, constituents


def test_merged_entries_are_their_subjects_together() -> None:
    """Given the four registry entries that merge two subjects,
    When they are read from the region table,
    Then each has both names, the zones of either, and is occupied if a part is."""
    assert REGIONS["RU-MOW_MOS"] == Region(
        "RU-MOW_MOS", "Moscow and Moscow Oblast", "Москва и Московская область", ("Europe/Moscow",)
    )
    crimea = REGIONS["UA-43_40"]
    assert (crimea.name, crimea.name_ru) == (
        "Crimea and Sevastopol (occupied)",
        "Республика Крым и Севастополь",
    )
    assert crimea.occupied and crimea.zones == REGIONS["UA-43"].zones
    assert REGIONS["RU-ARK_NEN"].name_ru == "Архангельская область и Ненецкий автономный округ"
    assert set(COMBINED_CODES.values()) == {"RU-MOW_MOS", "RU-SPE_LEN", "RU-ARK_NEN", "UA-43_40"}
    for parts, code in COMBINED_CODES.items():
        assert constituents(code) == parts | {code}
