"""The region table: every region a number can belong to, with its stable code and zones.

Codes are ISO 3166-2:RU where one exists (``RU-MOW``, ``RU-KDA``). Occupied Ukrainian
territories, which the Russian registry lists as Russian ranges, are their own regions
with their ISO 3166-2:UA codes (``UA-43`` Crimea, ``UA-14`` Donetsk, …) and
``occupied=True``, so a campaign can include or exclude them by configuration.

Registry entries that merge two subjects ("г. Москва и Московская область") get a
combined code: the constituent codes' subdivision parts joined by ``_``
(``RU-MOW_MOS``). Nationwide ranges ("Российская Федерация") are ``RU-ALL``; ranges the
registry does not place (``-`` with no territory, or a spelling we do not know) are
``RU-UNK``. Both carry every Russian zone, so the calling window is safe for all.

A region's ``zones`` lists every IANA zone it spans; callers derive the calling window
that is safe for all of them. Registry spellings are resolved in
:mod:`phonebank.domain.region_names`.
"""

from __future__ import annotations

from dataclasses import dataclass

MOSCOW = "Europe/Moscow"
YEKATERINBURG = "Asia/Yekaterinburg"
KRASNOYARSK = "Asia/Krasnoyarsk"
VLADIVOSTOK = "Asia/Vladivostok"
SIMFEROPOL = "Europe/Simferopol"
#: Occupied mainland oblasts: de facto Moscow time, Kyiv time beyond the front line.
OCCUPIED_MAINLAND_ZONES = (MOSCOW, "Europe/Kyiv")

#: Every IANA zone of the Russian Federation (tzdata zone1970.tab), west to east.
ALL_RUSSIAN_ZONES = (
    "Europe/Kaliningrad",
    MOSCOW,
    "Europe/Kirov",
    "Europe/Volgograd",
    "Europe/Astrakhan",
    "Europe/Saratov",
    "Europe/Ulyanovsk",
    "Europe/Samara",
    YEKATERINBURG,
    "Asia/Omsk",
    "Asia/Novosibirsk",
    "Asia/Barnaul",
    "Asia/Tomsk",
    "Asia/Novokuznetsk",
    KRASNOYARSK,
    "Asia/Irkutsk",
    "Asia/Chita",
    "Asia/Yakutsk",
    "Asia/Khandyga",
    VLADIVOSTOK,
    "Asia/Ust-Nera",
    "Asia/Magadan",
    "Asia/Sakhalin",
    "Asia/Srednekolymsk",
    "Asia/Kamchatka",
    "Asia/Anadyr",
)

#: Code of nationwide ranges.
NATIONWIDE = "RU-ALL"
#: Code of ranges the registry does not place.
UNKNOWN = "RU-UNK"


@dataclass(frozen=True)
class Region:
    """One region: stable code, English and Russian names, IANA zones, occupation flag."""

    code: str
    name: str
    name_ru: str
    zones: tuple[str, ...]
    occupied: bool = False

    @property
    def zone(self) -> str | None:
        """The single IANA zone, or None where the region spans several."""
        return self.zones[0] if len(self.zones) == 1 else None


def _r(code: str, name: str, name_ru: str, *zones: str) -> Region:
    return Region(code, name, name_ru, zones or (MOSCOW,))


def _occupied(code: str, name: str, name_ru: str, zones: tuple[str, ...]) -> Region:
    return Region(code, name, name_ru, zones, occupied=True)


_SUBJECTS = (
    _r("RU-AD", "Adygea", "Республика Адыгея"),
    _r("RU-AL", "Altai Republic", "Республика Алтай", "Asia/Barnaul"),
    _r("RU-ALT", "Altai Krai", "Алтайский край", "Asia/Barnaul"),
    _r("RU-AMU", "Amur Oblast", "Амурская область", "Asia/Yakutsk"),
    _r("RU-ARK", "Arkhangelsk Oblast", "Архангельская область"),
    _r("RU-AST", "Astrakhan Oblast", "Астраханская область", "Europe/Astrakhan"),
    _r("RU-BA", "Bashkortostan", "Республика Башкортостан", YEKATERINBURG),
    _r("RU-BEL", "Belgorod Oblast", "Белгородская область"),
    _r("RU-BRY", "Bryansk Oblast", "Брянская область"),
    _r("RU-BU", "Buryatia", "Республика Бурятия", "Asia/Irkutsk"),
    _r("RU-CE", "Chechnya", "Чеченская Республика"),
    _r("RU-CHE", "Chelyabinsk Oblast", "Челябинская область", YEKATERINBURG),
    _r("RU-CHU", "Chukotka", "Чукотский автономный округ", "Asia/Anadyr"),
    _r("RU-CU", "Chuvashia", "Чувашская Республика — Чувашия"),
    _r("RU-DA", "Dagestan", "Республика Дагестан"),
    _r("RU-IN", "Ingushetia", "Республика Ингушетия"),
    _r("RU-IRK", "Irkutsk Oblast", "Иркутская область", "Asia/Irkutsk"),
    _r("RU-IVA", "Ivanovo Oblast", "Ивановская область"),
    _r("RU-KB", "Kabardino-Balkaria", "Кабардино-Балкарская Республика"),
    _r("RU-KGD", "Kaliningrad Oblast", "Калининградская область", "Europe/Kaliningrad"),
    _r("RU-KL", "Kalmykia", "Республика Калмыкия"),
    _r("RU-KLU", "Kaluga Oblast", "Калужская область"),
    _r("RU-KAM", "Kamchatka Krai", "Камчатский край", "Asia/Kamchatka"),
    _r("RU-KC", "Karachay-Cherkessia", "Карачаево-Черкесская Республика"),
    _r("RU-KR", "Karelia", "Республика Карелия"),
    _r("RU-KEM", "Kemerovo Oblast", "Кемеровская область — Кузбасс", "Asia/Novokuznetsk"),
    _r("RU-KHA", "Khabarovsk Krai", "Хабаровский край", VLADIVOSTOK),
    _r("RU-KK", "Khakassia", "Республика Хакасия", KRASNOYARSK),
    _r("RU-KHM", "Khanty-Mansi AO", "Ханты-Мансийский автономный округ — Югра", YEKATERINBURG),
    _r("RU-KIR", "Kirov Oblast", "Кировская область", "Europe/Kirov"),
    _r("RU-KO", "Komi", "Республика Коми"),
    _r("RU-KOS", "Kostroma Oblast", "Костромская область"),
    _r("RU-KDA", "Krasnodar Krai", "Краснодарский край"),
    _r("RU-KYA", "Krasnoyarsk Krai", "Красноярский край", KRASNOYARSK),
    _r("RU-KGN", "Kurgan Oblast", "Курганская область", YEKATERINBURG),
    _r("RU-KRS", "Kursk Oblast", "Курская область"),
    _r("RU-LEN", "Leningrad Oblast", "Ленинградская область"),
    _r("RU-LIP", "Lipetsk Oblast", "Липецкая область"),
    _r("RU-MAG", "Magadan Oblast", "Магаданская область", "Asia/Magadan"),
    _r("RU-ME", "Mari El", "Республика Марий Эл"),
    _r("RU-MO", "Mordovia", "Республика Мордовия"),
    _r("RU-MOW", "Moscow", "Москва"),
    _r("RU-MOS", "Moscow Oblast", "Московская область"),
    _r("RU-MUR", "Murmansk Oblast", "Мурманская область"),
    _r("RU-NEN", "Nenets AO", "Ненецкий автономный округ"),
    _r("RU-NIZ", "Nizhny Novgorod Oblast", "Нижегородская область"),
    _r("RU-NGR", "Novgorod Oblast", "Новгородская область"),
    _r("RU-NVS", "Novosibirsk Oblast", "Новосибирская область", "Asia/Novosibirsk"),
    _r("RU-OMS", "Omsk Oblast", "Омская область", "Asia/Omsk"),
    _r("RU-ORE", "Orenburg Oblast", "Оренбургская область", YEKATERINBURG),
    _r("RU-ORL", "Oryol Oblast", "Орловская область"),
    _r("RU-PNZ", "Penza Oblast", "Пензенская область"),
    _r("RU-PER", "Perm Krai", "Пермский край", YEKATERINBURG),
    _r("RU-PRI", "Primorsky Krai", "Приморский край", VLADIVOSTOK),
    _r("RU-PSK", "Pskov Oblast", "Псковская область"),
    _r("RU-ROS", "Rostov Oblast", "Ростовская область"),
    _r("RU-RYA", "Ryazan Oblast", "Рязанская область"),
    _r(
        "RU-SA",
        "Sakha (Yakutia)",
        "Республика Саха (Якутия)",
        "Asia/Yakutsk",
        "Asia/Khandyga",
        "Asia/Ust-Nera",
        "Asia/Srednekolymsk",
    ),
    _r("RU-SAK", "Sakhalin Oblast", "Сахалинская область", "Asia/Sakhalin"),
    _r("RU-SAM", "Samara Oblast", "Самарская область", "Europe/Samara"),
    _r("RU-SAR", "Saratov Oblast", "Саратовская область", "Europe/Saratov"),
    _r("RU-SE", "North Ossetia–Alania", "Республика Северная Осетия — Алания"),
    _r("RU-SMO", "Smolensk Oblast", "Смоленская область"),
    _r("RU-SPE", "Saint Petersburg", "Санкт-Петербург"),
    _r("RU-STA", "Stavropol Krai", "Ставропольский край"),
    _r("RU-SVE", "Sverdlovsk Oblast", "Свердловская область", YEKATERINBURG),
    _r("RU-TA", "Tatarstan", "Республика Татарстан"),
    _r("RU-TAM", "Tambov Oblast", "Тамбовская область"),
    _r("RU-TOM", "Tomsk Oblast", "Томская область", "Asia/Tomsk"),
    _r("RU-TUL", "Tula Oblast", "Тульская область"),
    _r("RU-TVE", "Tver Oblast", "Тверская область"),
    _r("RU-TY", "Tuva", "Республика Тыва", KRASNOYARSK),
    _r("RU-TYU", "Tyumen Oblast", "Тюменская область", YEKATERINBURG),
    _r("RU-UD", "Udmurtia", "Удмуртская Республика", "Europe/Samara"),
    _r("RU-ULY", "Ulyanovsk Oblast", "Ульяновская область", "Europe/Ulyanovsk"),
    _r("RU-VLA", "Vladimir Oblast", "Владимирская область"),
    _r("RU-VGG", "Volgograd Oblast", "Волгоградская область", "Europe/Volgograd"),
    _r("RU-VLG", "Vologda Oblast", "Вологодская область"),
    _r("RU-VOR", "Voronezh Oblast", "Воронежская область"),
    _r("RU-YAN", "Yamalo-Nenets AO", "Ямало-Ненецкий автономный округ", YEKATERINBURG),
    _r("RU-YAR", "Yaroslavl Oblast", "Ярославская область"),
    _r("RU-YEV", "Jewish AO", "Еврейская автономная область", VLADIVOSTOK),
    _r("RU-ZAB", "Zabaykalsky Krai", "Забайкальский край", "Asia/Chita"),
)

_OCCUPIED = (
    _occupied("UA-43", "Crimea (occupied)", "Республика Крым", (SIMFEROPOL,)),
    _occupied("UA-40", "Sevastopol (occupied)", "Севастополь", (SIMFEROPOL,)),
    _occupied("UA-14", "Donetsk Oblast (occupied)", "Донецкая область", OCCUPIED_MAINLAND_ZONES),
    _occupied("UA-09", "Luhansk Oblast (occupied)", "Луганская область", OCCUPIED_MAINLAND_ZONES),
    _occupied(
        "UA-23", "Zaporizhzhia Oblast (occupied)", "Запорожская область", OCCUPIED_MAINLAND_ZONES
    ),
    _occupied("UA-65", "Kherson Oblast (occupied)", "Херсонская область", OCCUPIED_MAINLAND_ZONES),
)

#: Registry entries that merge two subjects, as the pairs of subject codes they merge.
_MERGED_PAIRS = (
    ("RU-MOW", "RU-MOS"),
    ("RU-SPE", "RU-LEN"),
    ("RU-ARK", "RU-NEN"),
    ("UA-43", "UA-40"),
)
#: what an occupied territory's English name ends with
_OCCUPIED_SUFFIX = " (occupied)"


def _merged(first: Region, second: Region) -> Region:
    """The one region of a registry entry for two subjects (``RU-MOW_MOS``): both names,
    every zone of either, occupied if either is."""
    occupied = first.occupied or second.occupied
    name = " and ".join(r.name.removesuffix(_OCCUPIED_SUFFIX) for r in (first, second))
    return Region(
        f"{first.code}_{second.code.split('-', 1)[1]}",
        name + (_OCCUPIED_SUFFIX if occupied else ""),
        f"{first.name_ru} и {second.name_ru}",
        tuple(dict.fromkeys((*first.zones, *second.zones))),
        occupied,
    )


_BY_CODE = {region.code: region for region in (*_SUBJECTS, *_OCCUPIED)}
_COMBINED = tuple(_merged(_BY_CODE[first], _BY_CODE[second]) for first, second in _MERGED_PAIRS)

_SPECIAL = (
    Region(NATIONWIDE, "Russia, nationwide", "Российская Федерация", ALL_RUSSIAN_ZONES),
    Region(UNKNOWN, "Unknown region", "Регион не указан", ALL_RUSSIAN_ZONES),
)

#: Every region by code: 83 federal subjects, 6 occupied territories, 4 merged registry
#: entries, nationwide and unknown.
REGIONS: dict[str, Region] = {
    region.code: region for region in (*_SUBJECTS, *_OCCUPIED, *_COMBINED, *_SPECIAL)
}

#: Merged registry entries: the set of constituent codes → the combined code.
COMBINED_CODES: dict[frozenset[str], str] = {
    frozenset(pair): region.code for pair, region in zip(_MERGED_PAIRS, _COMBINED, strict=True)
}

#: Codes whose Russian name is the registry's usual spelling (combined and special
#: codes are reached through :data:`COMBINED_CODES` or by name in region_names).
SUBJECT_CODES: tuple[str, ...] = tuple(r.code for r in (*_SUBJECTS, *_OCCUPIED))

#: Word that stands for every occupied territory in include/exclude lists.
OCCUPIED_ALIAS = "occupied"


class UnknownRegionError(ValueError):
    """A region list names a code that is not in :data:`REGIONS`."""


def _expand(codes: list[str] | tuple[str, ...]) -> set[str]:
    expanded: set[str] = set()
    for code in codes:
        if code == OCCUPIED_ALIAS:
            expanded.update(c for c, region in REGIONS.items() if region.occupied)
        elif code in REGIONS:
            expanded.add(code)
        else:
            raise UnknownRegionError(f"unknown region code {code!r}; see docs/ingest.md")
    return expanded


def constituents(code: str) -> frozenset[str]:
    """The codes a region consists of: itself, plus its parts for a combined code."""
    parts = next((set(p) for p, combined in COMBINED_CODES.items() if combined == code), set())
    return frozenset({code, *parts})


def select_regions(
    include: list[str] | tuple[str, ...], exclude: list[str] | tuple[str, ...]
) -> frozenset[str]:
    """The codes a campaign calls, from its include and exclude lists.

    Empty ``include`` means every region. A combined region (``RU-MOW_MOS``) is included
    when it or any constituent is listed in ``include``, and excluded when it or any
    constituent is listed in ``exclude``; exclusion wins. ``occupied`` stands for every
    occupied territory.
    """
    wanted, unwanted = _expand(include), _expand(exclude)
    chosen = {code for code in REGIONS if not wanted or constituents(code) & wanted}
    return frozenset(code for code in chosen if not constituents(code) & unwanted)
