"""Guideline Markdown → sanitized HTML for the volunteer page.

Two well-kept libraries, each doing one job: ``markdown-it-py`` renders CommonMark with
raw HTML switched off (so ``<script>`` in a guideline comes out as text), and ``nh3``
(the Rust ``ammonia`` sanitizer) then keeps only the tags, attributes and URL schemes
listed here. A link to ``javascript:``, ``data:`` or ``vbscript:`` loses its ``href``;
every kept link gets ``rel="noopener noreferrer nofollow"``. Images are dropped (the
page loads nothing from elsewhere; its CSP would refuse them anyway).

The page inserts the result with ``innerHTML``: this module is the one place that makes
HTML from guideline text, so it is the one place that has to be safe.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

#: tags a guideline may use once rendered (headings, lists, emphasis, links, quotes, code)
ALLOWED_TAGS = frozenset(
    {
        "h1",
        "h2",
        "h3",
        "h4",
        "p",
        "br",
        "hr",
        "ul",
        "ol",
        "li",
        "strong",
        "em",
        "a",
        "blockquote",
        "code",
        "pre",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }
)
#: attributes kept per tag (``rel`` is set by the sanitizer itself)
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
#: URL schemes a link may use; anything else loses its ``href``
ALLOWED_URL_SCHEMES = frozenset({"https", "http", "mailto", "tel"})
#: tags removed together with their content (not just unwrapped)
DROPPED_WITH_CONTENT = frozenset({"script", "style"})
#: what every kept link says about the page that opened it
LINK_REL = "noopener noreferrer nofollow"
#: distinct guideline texts whose rendering is kept (there are a handful)
RENDER_CACHE_SIZE = 64

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


@lru_cache(maxsize=RENDER_CACHE_SIZE)
def render_guideline_html(markdown: str) -> str:
    """The guideline's Markdown as an HTML fragment safe to insert into the page."""
    rendered = _MARKDOWN.render(markdown)
    return nh3.clean(
        rendered,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )
