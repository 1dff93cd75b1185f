"""The script tables of docs/lease-protocol.md, generated from the scripts' headers.

Each script's header (``--[[ … ]]`` at its top) lists its KEYS, ARGV and RETURNS; this
module turns them into the document's summary table and its appendix of headers, so
the document cannot drift from the code. ``python -m phonebank.leases.protocol_doc
docs/lease-protocol.md`` (``make docs``) rewrites the part between the markers; a test
checks it is current.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from phonebank.leases.scripts import LUA_FOLDER, SCRIPT_NAME, header_key_names

#: the lines between which the generated text stands in the document
BEGIN_MARKER = "<!-- BEGIN generated from the script headers: make docs -->"
END_MARKER = "<!-- END generated -->"
#: the header comment at the top of a script
HEADER = re.compile(r"\A--\[\[\n(?P<body>.*?)\n\]\]", re.DOTALL)
#: a key's type as the header gives it: ``1 ready LIST``
KEY_TYPE = re.compile(r"(?<!\S)\d+\s+(?P<name>[a-z_]+)\s+(?P<type>[A-Z]+)\b")
#: a return code in a RETURNS block: ``{-6 EMPTY`` or ``| 1 RECORDED_LATE``
RETURN_CODE = re.compile(r"[{|]\s*(?P<code>-?\d+) (?P<name>[A-Z_]+)")


def header(path: Path) -> str:
    """The header comment of one script, without its fences."""
    match = HEADER.match(path.read_text(encoding="utf-8"))
    return match["body"] if match else ""


def script_paths(folder: Path = LUA_FOLDER) -> list[Path]:
    return sorted(path for path in folder.glob("*.lua") if SCRIPT_NAME.match(path.name))


def summary_row(path: Path) -> str:
    text = header(path)
    types = {m["name"]: m["type"] for m in KEY_TYPE.finditer(text.split("ARGV")[0])}
    keys = " · ".join(f"`{name}` {types[name]}" for name in header_key_names(text, path.name))
    returns = text.split("RETURNS", 1)[-1]
    codes = dict.fromkeys(f"{m['code']} {m['name']}" for m in RETURN_CODE.finditer(returns))
    return f"| `{path.stem}` | {keys} | {', '.join(codes)} |"


def generated(folder: Path = LUA_FOLDER) -> str:
    """The generated part of the document: the summary table, then every header."""
    paths = script_paths(folder)
    lines = [BEGIN_MARKER, "", "| script | KEYS, in order | return codes |", "|---|---|---|"]
    lines += [summary_row(path) for path in paths]
    for path in paths:
        lines += ["", f"#### `{path.name}` header", "", "```text", header(path), "```"]
    return "\n".join([*lines, "", END_MARKER])


def rewrite(document: str) -> str:
    """``document`` with the text between the markers replaced by :func:`generated`."""
    start, end = document.index(BEGIN_MARKER), document.index(END_MARKER) + len(END_MARKER)
    return document[:start] + generated() + document[end:]


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m phonebank.leases.protocol_doc DOCUMENT", file=sys.stderr)
        return 2
    path = Path(arguments[0])
    path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
