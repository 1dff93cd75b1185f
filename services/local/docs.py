"""``make docs``: regenerate every generated table of the documents from the code.

- README.md: the settings tables (:func:`phonebank.settings.markdown_table`, the
  production settings then the local stack's);
- docs/lease-protocol.md: the script table and headers (:mod:`phonebank.leases.protocol_doc`);
- docs/metrics.md: the metric catalogue (:func:`phonebank.infra.metrics.markdown_catalogue`).

Each generated part stands between its begin and end marker lines (``<!-- BEGIN
generated … -->`` … ``<!-- END generated -->``, ``<!-- catalogue:begin -->`` …
``<!-- catalogue:end -->``); the tests fail when one is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from phonebank.infra.metrics import markdown_catalogue
from phonebank.leases import protocol_doc
from phonebank.local.stack_settings import StackSettings
from phonebank.settings import markdown_table

#: the lines around the settings tables in the README
SETTINGS_BEGIN = "<!-- BEGIN generated settings: make docs -->"
SETTINGS_END = "<!-- END generated -->"
#: the lines around the metric catalogue in docs/metrics.md
CATALOGUE_BEGIN = "<!-- catalogue:begin -->\n"
CATALOGUE_END = "\n<!-- catalogue:end -->"
#: the sentence between the production settings table and the stack's
STACK_HEADING = "Local stack only (`phonebank stack`, the demo, the tests):"


def settings_tables() -> str:
    """The README's generated settings part, markers included."""
    return "\n".join(
        [
            SETTINGS_BEGIN,
            markdown_table(),
            "",
            STACK_HEADING,
            "",
            markdown_table(StackSettings),
            SETTINGS_END,
        ]
    )


def rewrite_readme(document: str) -> str:
    """``document`` with its settings part made again."""
    start = document.index(SETTINGS_BEGIN)
    end = document.index(SETTINGS_END, start) + len(SETTINGS_END)
    return document[:start] + settings_tables() + document[end:]


def rewrite_catalogue(document: str) -> str:
    """``document`` (docs/metrics.md) with its catalogue table made again."""
    start = document.index(CATALOGUE_BEGIN) + len(CATALOGUE_BEGIN)
    end = document.index(CATALOGUE_END, start)
    return document[:start] + markdown_catalogue() + document[end:]


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md, docs/lease-protocol.md and docs/metrics.md under ``argv[0]``."""
    arguments = sys.argv[1:] if argv is None else argv
    root = Path(arguments[0] if arguments else ".")
    for path, rewrite in (
        (root / "README.md", rewrite_readme),
        (root / "docs" / "lease-protocol.md", protocol_doc.rewrite),
        (root / "docs" / "metrics.md", rewrite_catalogue),
    ):
        path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
