"""The numbering plan: registry loading, lookups, the region table and name resolver."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from phonebank.domain.numbering import NumberingPlan, NumberingPlanError
from phonebank.domain.region_names import region_code
from phonebank.domain.regions import REGIONS, UnknownRegionError, select_regions

HEADER = "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН"


def write_registry(path: Path, lines: list[str], encoding: str = "utf-8-sig") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_fixture_places_numbers_in_their_regions() -> None:
    # Given the shipped fixture
    plan = NumberingPlan.default()
    # When single numbers are looked up, Then each lands in its range's region
    assert plan.region_of(9161234567) == "RU-MOW_MOS"
    assert plan.region_of(9490001122) == "UA-14"
    assert plan.region_of(9142005000) == "RU-SA"
    assert plan.region_of(9950000000) == "RU-ALL"
    assert plan.region_of(9010000000) == "RU-KRS"  # "-" resolved by the territory column
    assert plan.region_of(9010055555) == "RU-UNK"  # "-" with no territory
    assert plan.region_of(9142215000) == "RU-KAM"  # "Корякский округ|Камчатский край"
    assert plan.region_of(9001234567) is None


def test_fixture_covers_occupied_and_multi_zone_regions() -> None:
    # Given the shipped fixture's regions
    regions = [REGIONS[code] for code in NumberingPlan.default().regions()]
    # Then it has occupied territories and regions with several zones
    assert any(region.occupied for region in regions)
    assert any(len(region.zones) > 1 and not region.code.startswith("RU-ALL") for region in regions)


def test_seven_column_file_without_bom_and_header_loads(tmp_path: Path) -> None:
    # Given a registry with 7 columns (no territory), no BOM and no header
    path = write_registry(
        tmp_path / "abc.csv",
        [
            "495;1000000;1999999;1000000;ПАО X;г. Москва;7700000000",
            "812;0000000;0999999;1000000;ПАО X;г. Санкт-Петербург;7700000000",
        ],
        encoding="utf-8",
    )
    # When it is loaded
    plan = NumberingPlan.load([path])
    # Then its ranges classify, and it is authoritative for leading digits 4 and 8
    assert plan.region_of(4951234567) == "RU-MOW"
    assert plan.region_of(8120000000) == "RU-SPE"
    assert plan.region_of(4991234567) is None
    assert plan.registry_leading_digits == {4, 8}


def test_cp1251_registry_loads(tmp_path: Path) -> None:
    # Given an older registry file in cp1251
    path = write_registry(
        tmp_path / "old.csv",
        [
            HEADER,
            "900;0000000;0099999;100000;ООО X;Тверская обл.;Тверская область;1",
        ],
        encoding="cp1251",
    )
    # When loaded, Then the Russian spelling still resolves
    assert NumberingPlan.load([path]).region_of(9000000001) == "RU-TVE"


def test_repeated_files_merge_and_overlaps_are_refused(tmp_path: Path) -> None:
    # Given a registry, and another whose range overlaps it
    first = write_registry(
        tmp_path / "a.csv",
        [HEADER, "900;0000000;0099999;100000;X;Тверская обл.;Тверская область;1"],
    )
    clash = write_registry(
        tmp_path / "b.csv", [HEADER, "900;0050000;0199999;150000;X;Омская обл.;Омская область;1"]
    )
    # When the same file is given twice, Then it loads once
    assert len(NumberingPlan.load([first, first]).registry.starts) == 1
    # When overlapping files are given, Then the load fails naming the place
    with pytest.raises(NumberingPlanError, match="overlapping"):
        NumberingPlan.load([first, clash])


@pytest.mark.parametrize(
    "row",
    [
        "9x0;0000000;0099999;1;X;Тверская обл.;Тверская область;1",
        "900;0099999;0000000;1;X;Тверская обл.;Тверская область;1",
        "900;00000000;0099999;1;X;Тверская обл.;Тверская область;1",
        "900;0000000;0099999",
    ],
)
def test_malformed_rows_fail_with_file_and_line(tmp_path: Path, row: str) -> None:
    # Given a registry with one malformed row
    path = write_registry(tmp_path / "bad.csv", [HEADER, row])
    # When loaded, Then the error names the file and line
    with pytest.raises(NumberingPlanError, match=r"bad\.csv:2"):
        NumberingPlan.load([path])


def test_unknown_spelling_is_filed_as_unknown_region(tmp_path: Path) -> None:
    # Given a range whose region spelling nobody knows
    path = write_registry(
        tmp_path / "new.csv", [HEADER, "900;0000000;0099999;100000;X;Марсианская обл.;Марс;1"]
    )
    # When loaded, Then it is filed under RU-UNK (window safe for every zone)
    assert NumberingPlan.load([path]).region_of(9000000000) == "RU-UNK"


def test_landlines_fall_back_to_libphonenumber_geocoding() -> None:
    # Given a plan of mobile ranges only
    plan = NumberingPlan.default()
    # When landlines are looked up, Then libphonenumber's area codes place them
    assert plan.region_of(3832123456) == "RU-NVS"  # Novosibirsk 383
    assert plan.region_of(8612123456) == "RU-KDA"  # Krasnodar 861
    assert plan.region_of(3652123456) == "UA-43"  # Crimea 365x
    assert plan.region_of(3362123456) is None  # Baikonur: not a Russian region


@pytest.mark.parametrize(
    ("spelling", "territory", "code"),
    [
        ("Ханты - Мансийский - Югра АО", "", "RU-KHM"),
        ("Ханты-Мансийский Автономный округ - Югра АО", "", "RU-KHM"),
        ("Республика Саха /Якутия/", "", "RU-SA"),
        ("Кемеровская область - Кузбасс обл.", "", "RU-KEM"),
        ("Ямало-Ненецкий АО", "", "RU-YAN"),
        ("Ненецкий АО", "", "RU-NEN"),
        ("Московская область * Москва|Московская область * Москва", "", "RU-MOW_MOS"),
        ("г. Норильск|Красноярский край", "", "RU-KYA"),
        ("Республика Крым * г. Севастополь", "", "UA-43_40"),
        ("Луга́нская Наро́дная Респу́блика", "", "UA-09"),
        ("-", "Город Санкт-Петербург, Ленинградская область", "RU-SPE_LEN"),
        ("-", "", "RU-UNK"),
        ("Тверская обл. * Омская обл.", "", None),
    ],
)
def test_registry_spellings_resolve(spelling: str, territory: str, code: str | None) -> None:
    assert region_code(spelling, territory) == code


def test_every_region_has_names_and_valid_zones() -> None:
    # Given the region table, Then every zone is a real IANA zone, names are present
    for code, region in REGIONS.items():
        assert region.code == code
        assert region.name and region.name_ru
        assert region.zones
        for zone in region.zones:
            ZoneInfo(zone)
    assert REGIONS["RU-SA"].zone is None
    assert REGIONS["RU-KGD"].zone == "Europe/Kaliningrad"
    assert (
        sum(
            1
            for r in REGIONS.values()
            if r.code.startswith("RU-") and "_" not in r.code and r.code not in {"RU-ALL", "RU-UNK"}
        )
        == 83
    )


def test_region_selection_follows_constituents_and_exclusion_wins() -> None:
    # Given include/exclude lists, Then combined regions follow their constituents
    assert select_regions(["RU-MOW"], []) == {"RU-MOW", "RU-MOW_MOS"}
    assert "UA-43_40" not in select_regions([], ["UA-40"])
    chosen = select_regions(["occupied"], ["UA-14"])
    assert chosen == {"UA-43", "UA-40", "UA-43_40", "UA-09", "UA-23", "UA-65"}
    with pytest.raises(UnknownRegionError):
        select_regions(["RU-XYZ"], [])


def test_random_allocated_numbers_are_inside_ranges() -> None:
    # Given the fixture, When numbers are drawn, Then every one is allocated
    plan = NumberingPlan.default()
    drawn = plan.random_allocated(np.random.default_rng(5), 10_000)
    assert (plan.registry.lookup(drawn) >= 0).all()
