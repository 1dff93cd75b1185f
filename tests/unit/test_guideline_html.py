"""Guideline Markdown → sanitized HTML: the structure survives, nothing executable does."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from phonebank.domain.guidelines import Guideline, load_guidelines
from phonebank.gateway.guideline_html import ALLOWED_TAGS, render_guideline_html

HOSTILE = """# Заголовок

Текст со <script>alert('x')</script> вставкой и <img src=x onerror=alert(1)>.

<script>document.cookie</script>

<div onclick="alert(1)">div</div>

[нажми](javascript:alert(1)) · [и тут](JAVASCRIPT:alert(2)) · [данные](data:text/html,<b>x</b>)
· [vb](vbscript:msgbox) · [хорошая](https://example.org/путь) · [почта](mailto:a@b.c)

<a href="javascript:alert(3)" onmouseover="alert(4)">сырой</a>
"""


class _Elements(HTMLParser):
    """Every element of a fragment with its attributes, as a browser would parse it."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def _tags(html: str) -> set[str]:
    return {tag for tag, _ in _Elements(html).found}


def test_markdown_structure_becomes_html() -> None:
    # Given Markdown with headings, a list, emphasis and a link
    markdown = (
        "# Т\n\n## Перед звонком\n\n- один **жирный**\n- два *курсив*\n\n"
        "[сайт](https://example.org)\n"
    )
    # When it is rendered
    html = render_guideline_html(markdown)
    # Then each element is there as HTML, the link with a safe rel
    assert "<h1>Т</h1>" in html and "<h2>Перед звонком</h2>" in html
    assert "<li>один <strong>жирный</strong></li>" in html
    assert "<em>курсив</em>" in html
    assert 'href="https://example.org"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_hostile_markup_and_links_are_neutralised() -> None:
    # Given a guideline with script tags, event handlers and javascript:/data: links
    html = render_guideline_html(HOSTILE)
    lowered = html.lower()
    links = [a.get("href") for tag, a in _Elements(html).found if tag == "a"]
    # Then no element outside the allowed set and no executable attribute or URL is left
    assert _tags(html) <= ALLOWED_TAGS, _tags(html) - ALLOWED_TAGS
    assert "<script" not in lowered and "<img" not in lowered and "<div" not in lowered
    for tag, attributes in _Elements(html).found:
        assert not [name for name in attributes if name.startswith("on")], tag
        href = (attributes.get("href") or "").strip().lower()
        assert not href.startswith(("javascript:", "data:", "vbscript:")), href
    # And the harmless links are kept
    assert "mailto:a@b.c" in links
    assert any((href or "").startswith("https://example.org/") for href in links)


def test_raw_html_is_shown_as_text_not_run() -> None:
    # Given inline raw HTML in a paragraph
    html = render_guideline_html("a <b onclick=x>b</b> <script>alert(1)</script> c")
    # Then it arrives escaped, as the text the author typed
    assert "&lt;script&gt;" in html and "<b" not in html


@pytest.mark.parametrize(
    "guideline", load_guidelines().guidelines, ids=lambda g: f"{g.ref}.{g.language}"
)
def test_every_shipped_guideline_renders(guideline: Guideline) -> None:
    # Given each guideline of guidelines/
    # When rendered
    html = render_guideline_html(guideline.body)
    # Then it has headings and list items and no escaped Markdown markers at line starts
    assert "<h2>" in html and "<li>" in html
    assert not re.search(r"^\s*[#*-] ", re.sub(r"<[^>]+>", "", html), re.MULTILINE)


def test_links_markdown_lets_through_are_filtered_by_the_sanitizer() -> None:
    # Given links CommonMark accepts (a data: image URL, ftp) and an external image
    html = render_guideline_html(
        "[x](data:image/png;base64,AAAA) [y](ftp://h/f) ![i](https://e.org/a.png)"
    )
    found = _Elements(html).found
    # Then the links stay as text without an href, and the image is gone
    assert [tag for tag, _ in found] == ["p", "a", "a"]
    assert all("href" not in attributes for _, attributes in found)
