"""Every range of the shared Rossvyaz registry lands in the right region and zone.

The expected region comes from an oracle independent of the resolver under test: plain
regular expressions on the registry spelling (hand-written here), and the expected zone
from each region's hand-written offset from Moscow time, checked against tzdata.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from phonebank.domain.numbering import REGION_CODES, NumberingPlan
from phonebank.domain.regions import COMBINED_CODES, REGIONS

SHARED = Path(__file__).resolve().parents[2].parent / "shared/data/numbering-plan/DEF-9xx.csv"

#: Region code → (pattern of its name in registry spellings, hours ahead of Moscow).
ORACLE: dict[str, tuple[str, tuple[int, ...]]] = {
    "RU-AD": (r"Адыге", (0,)),
    "RU-AL": (r"Республика Алтай", (4,)),
    "RU-ALT": (r"Алтайский", (4,)),
    "RU-AMU": (r"Амурск", (6,)),
    "RU-ARK": (r"Архангельск", (0,)),
    "RU-AST": (r"Астраханск", (1,)),
    "RU-BA": (r"Башкорт", (2,)),
    "RU-BEL": (r"Белгородск", (0,)),
    "RU-BRY": (r"Брянск", (0,)),
    "RU-BU": (r"Бурят", (5,)),
    "RU-CE": (r"Чеченск", (0,)),
    "RU-CHE": (r"Челябинск", (2,)),
    "RU-CHU": (r"Чукотск", (9,)),
    "RU-CU": (r"Чуваш", (0,)),
    "RU-DA": (r"Дагестан", (0,)),
    "RU-IN": (r"Ингушет", (0,)),
    "RU-IRK": (r"Иркутск", (5,)),
    "RU-IVA": (r"Ивановск", (0,)),
    "RU-KB": (r"Кабардино", (0,)),
    "RU-KGD": (r"Калининградск", (-1,)),
    "RU-KL": (r"Калмык", (0,)),
    "RU-KLU": (r"Калужск", (0,)),
    "RU-KAM": (r"Камчатск", (9,)),
    "RU-KC": (r"Карачаево", (0,)),
    "RU-KR": (r"Карели", (0,)),
    "RU-KEM": (r"Кемеровск", (4,)),
    "RU-KHA": (r"Хабаровск", (7,)),
    "RU-KK": (r"Хакаси", (4,)),
    "RU-KHM": (r"Ханты", (2,)),
    "RU-KIR": (r"Кировск", (0,)),
    "RU-KO": (r"Коми\b", (0,)),
    "RU-KOS": (r"Костромск", (0,)),
    "RU-KDA": (r"Краснодарск", (0,)),
    "RU-KYA": (r"Красноярск", (4,)),
    "RU-KGN": (r"Курганск", (2,)),
    "RU-KRS": (r"Курская", (0,)),
    "RU-LEN": (r"Ленинградск", (0,)),
    "RU-LIP": (r"Липецк", (0,)),
    "RU-MAG": (r"Магаданск", (8,)),
    "RU-ME": (r"Марий", (0,)),
    "RU-MO": (r"Мордов", (0,)),
    "RU-MOW": (r"Москва", (0,)),
    "RU-MOS": (r"Московск", (0,)),
    "RU-MUR": (r"Мурманск", (0,)),
    "RU-NEN": (r"(?<![-\w])Ненецк", (0,)),
    "RU-NIZ": (r"Нижегородск", (0,)),
    "RU-NGR": (r"Новгородск", (0,)),
    "RU-NVS": (r"Новосибирск", (4,)),
    "RU-OMS": (r"Омская", (3,)),
    "RU-ORE": (r"Оренбургск", (2,)),
    "RU-ORL": (r"Орловск", (0,)),
    "RU-PNZ": (r"Пензенск", (0,)),
    "RU-PER": (r"Пермск", (2,)),
    "RU-PRI": (r"Приморск", (7,)),
    "RU-PSK": (r"Псков", (0,)),
    "RU-ROS": (r"Ростовск", (0,)),
    "RU-RYA": (r"Рязанск", (0,)),
    "RU-SA": (r"Саха\b", (6, 7, 8)),
    "RU-SAK": (r"Сахалинск", (8,)),
    "RU-SAM": (r"Самарск", (1,)),
    "RU-SAR": (r"Саратовск", (1,)),
    "RU-SE": (r"Осети", (0,)),
    "RU-SMO": (r"Смоленск", (0,)),
    "RU-SPE": (r"Петербург", (0,)),
    "RU-STA": (r"Ставропольск", (0,)),
    "RU-SVE": (r"Свердловск", (2,)),
    "RU-TA": (r"Татарстан", (0,)),
    "RU-TAM": (r"Тамбовск", (0,)),
    "RU-TOM": (r"Томская", (4,)),
    "RU-TUL": (r"Тульская", (0,)),
    "RU-TVE": (r"Тверская", (0,)),
    "RU-TY": (r"Тыва", (4,)),
    "RU-TYU": (r"Тюменск", (2,)),
    "RU-UD": (r"Удмурт", (1,)),
    "RU-ULY": (r"Ульяновск", (1,)),
    "RU-VLA": (r"Владимирск", (0,)),
    "RU-VGG": (r"Волгоградск", (0,)),
    "RU-VLG": (r"Вологодск", (0,)),
    "RU-VOR": (r"Воронежск", (0,)),
    "RU-YAN": (r"Ямало", (2,)),
    "RU-YAR": (r"Ярославск", (0,)),
    "RU-YEV": (r"Еврейск", (7,)),
    "RU-ZAB": (r"Забайкальск", (6,)),
    "UA-43": (r"Крым", (0,)),
    "UA-40": (r"Севастопол", (0,)),
    "UA-14": (r"Донецк", (0, -1)),
    "UA-09": (r"Луганск", (0, -1)),
    "UA-23": (r"Запорожск", (0, -1)),
    "UA-65": (r"Херсонск", (0, -1)),
    "RU-ALL": (r"Российская Федерация", tuple(range(-1, 10))),
}

#: A winter instant: offsets are compared in January (Kyiv is then an hour behind Moscow).
WINTER = dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)


def expected_region(spelling: str) -> str:
    """The oracle's code: the one region named, or the combined code of those named."""
    named = {code for code, (pattern, _) in ORACLE.items() if re.search(pattern, spelling)}
    if len(named) == 1:
        return named.pop()
    return COMBINED_CODES[frozenset(named)]


def msk_offsets(code: str) -> set[int]:
    """Hours ahead of Moscow of each zone of a region, now in winter."""
    moscow = WINTER.astimezone(ZoneInfo("Europe/Moscow")).utcoffset()
    assert moscow is not None
    offsets = set()
    for zone in REGIONS[code].zones:
        offset = WINTER.astimezone(ZoneInfo(zone)).utcoffset()
        assert offset is not None
        offsets.add(int((offset - moscow).total_seconds() // 3600))
    return offsets


def expected_offsets(code: str) -> set[int]:
    """The oracle's offsets of a region (union over the constituents of a combined one)."""
    parts = next((set(p) for p, c in COMBINED_CODES.items() if c == code), {code})
    return {hours for part in parts for hours in ORACLE[part][1]}


@pytest.fixture(scope="module")
def registry_rows() -> list[list[str]]:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} not present")
    with SHARED.open(encoding="utf-8-sig", newline="") as handle:
        return [row for row in csv.reader(handle, delimiter=";") if row[0].isdigit()]


@pytest.fixture(scope="module")
def shared_plan() -> NumberingPlan:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} not present")
    return NumberingPlan.load([SHARED])


def test_every_registry_range_maps_to_its_region_and_zones(
    registry_rows: list[list[str]], shared_plan: NumberingPlan
) -> None:
    # Given the first, middle and last number of every range of the shared registry
    base = np.array([int(row[0]) * 10**7 for row in registry_rows], dtype=np.int64)
    low = base + np.array([int(row[1]) for row in registry_rows], dtype=np.int64)
    high = base + np.array([int(row[2]) for row in registry_rows], dtype=np.int64)
    samples = np.concatenate([low, (low + high) // 2, high])
    # When the plan classifies them in bulk
    found = shared_plan.region_index(samples).reshape(3, -1)
    # Then each lands in the region its spelling names, with that region's zones
    wrong = []
    for i, row in enumerate(registry_rows):
        spelling = row[6] if row[5].strip() == "-" else row[5]
        expected = expected_region(spelling)
        got = {REGION_CODES[j] for j in found[:, i].tolist()}
        if got != {expected} or msk_offsets(expected) != expected_offsets(expected):
            wrong.append((row[:3], spelling, expected, got))
    assert wrong == []
    assert len(registry_rows) > 16_000


def test_all_registry_spellings_resolve(registry_rows: list[list[str]]) -> None:
    # Given every distinct region spelling of the registry (161 of them)
    spellings = {row[5] for row in registry_rows}
    # When the plan is built, Then none falls back to the unknown region
    plan = NumberingPlan.load([SHARED])
    assert len(spellings) >= 160
    assert "RU-UNK" not in plan.capacity_by_region()


def test_numbers_between_ranges_are_unallocated(shared_plan: NumberingPlan) -> None:
    # Given the number just past the end of each range that is not followed by another
    ends = shared_plan.registry.ends
    starts = shared_plan.registry.starts
    gaps = ends[:-1][starts[1:] > ends[:-1] + 1] + 1
    # When classified, Then no region holds them
    assert len(gaps) > 0
    assert (shared_plan.registry.lookup(gaps) == -1).all()
