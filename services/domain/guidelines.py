"""Conversation guidelines: Markdown files with front matter, and which one a lease names.

A guideline file starts with a front-matter block::

    ---
    id: calm-conversation
    version: 1
    language: ru
    regions: ["*"]
    title: Спокойный разговор
    ---

``regions`` lists region codes or ``*`` for every region. The same ``id`` and
``version`` in several languages are translations of one guideline; a lease names it as
``id@version`` (:attr:`Guideline.ref`). The front matter is the simple YAML subset
of ``key: value`` lines, lists written ``[a, b]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

#: The shipped guidelines: package data ``phonebank/guidelines/*.md``.
DEFAULT_FOLDER: Traversable = resources.files("phonebank") / "guidelines"
#: Line that opens and closes the front matter.
FRONT_MATTER_FENCE = "---"
#: Region entry that means every region.
ANY_REGION = "*"


class GuidelineError(ValueError):
    """A guideline file that cannot be read."""


@dataclass(frozen=True)
class Guideline:
    """One guideline text in one language."""

    guideline_id: str
    version: int
    language: str
    regions: tuple[str, ...]
    title: str
    body: str

    @property
    def ref(self) -> str:
        """``id@version``: what a lease and an outcome event name."""
        return f"{self.guideline_id}@{self.version}"

    def covers(self, region: str) -> bool:
        """Whether the guideline is meant for callees of ``region``."""
        return ANY_REGION in self.regions or region in self.regions


def parse_guideline(text: str, source: str = "<text>") -> Guideline:
    """Parse one guideline file's text."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != FRONT_MATTER_FENCE:
        raise GuidelineError(f"{source}: no front matter")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == FRONT_MATTER_FENCE)
    except StopIteration:
        raise GuidelineError(f"{source}: front matter not closed") from None
    meta = parse_front_matter(lines[1:end], source)
    missing = {"id", "version", "language", "regions"} - set(meta)
    if missing:
        raise GuidelineError(f"{source}: front matter lacks {sorted(missing)}")
    regions = meta["regions"]
    if not isinstance(regions, list):
        raise GuidelineError(f'{source}: regions must be a list like ["*"]')
    version = str(meta["version"])
    if not version.isdigit():
        raise GuidelineError(f"{source}: version must be a whole number")
    return Guideline(
        guideline_id=str(meta["id"]),
        version=int(version),
        language=str(meta["language"]),
        regions=tuple(regions),
        title=str(meta.get("title", meta["id"])),
        body="\n".join(lines[end + 1 :]).strip() + "\n",
    )


def parse_front_matter(lines: Sequence[str], source: str) -> dict[str, str | list[str]]:
    """``key: value`` lines; a value in brackets is a comma list of (quoted) items."""
    meta: dict[str, str | list[str]] = {}
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise GuidelineError(f"{source}: front matter line {line!r} is not key: value")
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            meta[key.strip()] = [_unquote(item) for item in value[1:-1].split(",") if item.strip()]
        else:
            meta[key.strip()] = _unquote(value)
    return meta


def _unquote(text: str) -> str:
    return text.strip().strip("\"'")


@dataclass(frozen=True)
class GuidelineLibrary:
    """Every guideline loaded, newest version first."""

    guidelines: tuple[Guideline, ...]

    def pick(self, region: str, languages: Sequence[str]) -> Guideline | None:
        """The newest guideline for ``region`` in the first of ``languages`` that has one."""
        for language in languages:
            for guideline in self.guidelines:
                if guideline.language == language and guideline.covers(region):
                    return guideline
        return None

    def translations(self, ref: str) -> dict[str, Guideline]:
        """Every language of the guideline ``id@version``."""
        return {g.language: g for g in self.guidelines if g.ref == ref}


def load_guidelines(folder: Traversable | Path = DEFAULT_FOLDER) -> GuidelineLibrary:
    """Read every ``*.md`` file of ``folder`` (the shipped package data by default)."""
    found = [
        parse_guideline(path.read_text(encoding="utf-8"), path.name)
        for path in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if path.name.endswith(".md") and path.name.lower() != "readme.md"
    ]
    if not found:
        raise GuidelineError(f"no guidelines in {folder}")
    found.sort(key=lambda guideline: (guideline.guideline_id, -guideline.version))
    found.sort(key=lambda guideline: -guideline.version)
    return GuidelineLibrary(tuple(found))
