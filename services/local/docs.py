"""``make docs``: regenerate every generated table of the documents from the code.

- README.md: the settings tables (:func:`phonebank.settings.markdown_table`, the
  production settings then the local stack's);
- docs/lease-protocol.md: the script table and headers (:mod:`phonebank.leases.protocol_doc`).

Each generated part stands between a ``<!-- BEGIN generated … -->`` line and
``<!-- END generated -->``; the tests fail when one is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from phonebank.leases import protocol_doc
from phonebank.local.stack_settings import StackSettings
from phonebank.settings import markdown_table

#: the lines around the settings tables in the README
SETTINGS_BEGIN = "<!-- BEGIN generated settings: make docs -->"
SETTINGS_END = "<!-- END generated -->"
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


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md and docs/lease-protocol.md under the repository ``argv[0]``."""
    arguments = sys.argv[1:] if argv is None else argv
    root = Path(arguments[0] if arguments else ".")
    for path, rewrite in (
        (root / "README.md", rewrite_readme),
        (root / "docs" / "lease-protocol.md", protocol_doc.rewrite),
    ):
        path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
