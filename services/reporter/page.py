"""The coverage report page (``/``): one self-contained HTML document from the report.

For a campaign coordinator at a glance: headline totals, regions sorted by coverage
with bars, calls per hour as an inline SVG chart, the outcome mix, outcome rates per
guideline version, and when the figures were last updated. No script, no external
stylesheet, font or CDN; every text from the data is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

#: seconds between automatic reloads of the page
REFRESH_SECONDS = 30
#: chart size in SVG user units (pixels)
CHART_WIDTH, CHART_HEIGHT, CHART_MARGIN = 720, 160, 24
#: hours between two time labels under the chart
CHART_LABEL_EVERY_HOURS = 6
#: outcome → colour in the outcome mix and chart legend (reached greens, bad reds)
OUTCOME_COLOURS = {
    "conversation": "#1b7f3b",
    "refused": "#6fbf73",
    "callback": "#a5d6a7",
    "no_answer": "#9e9e9e",
    "busy": "#bdbdbd",
    "voicemail": "#757575",
    "wrong_number": "#e57373",
    "not_in_service": "#c62828",
    "do_not_call": "#6a1b9a",
    "skipped": "#ffcc80",
    "unreachable_channel": "#ffe0b2",
    "expired": "#ffb300",
}
#: colour of anything not in :data:`OUTCOME_COLOURS`
OTHER_COLOUR = "#90a4ae"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1100px}
h1{margin:0 0 .2rem} .muted{color:#666;font-size:.9rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;min-width:9rem}
.card b{display:block;font-size:1.5rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{padding:.25rem .5rem;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}
.bar{background:#eee;width:12rem;height:.8rem;display:inline-block;vertical-align:middle}
.bar span{background:#1b7f3b;height:100%;display:block}
.mix{display:flex;height:1.2rem;border-radius:4px;overflow:hidden;margin:.5rem 0}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem}
svg{max-width:100%;height:auto}
@media (max-width:40rem){
body{margin:.75rem} h1{font-size:1.4rem}
.cards{display:grid;grid-template-columns:1fr 1fr;gap:.5rem}
.card{min-width:0;padding:.5rem .6rem} .card b{font-size:1.25rem}
table{display:block;overflow-x:auto;font-size:.9rem}
.bar{width:4.5rem}
}
"""


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.1f}%"


def _count(value: int) -> str:
    return f"{value:,}".replace(",", "\u202f")


def _colour(outcome: str) -> str:
    return OUTCOME_COLOURS.get(outcome, OTHER_COLOUR)


def _cards(totals: dict[str, Any]) -> str:
    days = totals["projected_days"]
    cards = [
        (
            "Coverage",
            _percent(totals["coverage_ratio"]),
            f"{_count(totals['attempted'])} of {_count(totals['ingested'])} numbers called",
        ),
        ("Reached", _count(totals["reached"]), f"{_percent(totals['reach_ratio'])} of called"),
        ("Conversations", _count(totals["conversations"]), "numbers"),
        ("Do not call", _count(totals["do_not_call"]), "numbers"),
        ("Calls per hour", f"{totals['calls_per_hour']:g}", "recent rate"),
        ("Days to full coverage", "—" if days is None else f"{days:g}", "at the recent rate"),
        (
            "Volunteers active",
            _count(totals["volunteers_active_15m"]),
            f"last 15 min · {_count(totals['volunteers_active_24h'])} in 24 h",
        ),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card">{_text(title)}<b>{_text(value)}</b>'
            f'<span class="muted">{_text(note)}</span></div>'
            for title, value, note in cards
        )
        + "</div>"
    )


def _region_rows(regions: Iterable[dict[str, Any]]) -> str:
    rows = []
    for row in regions:
        width = min(100.0, row["coverage_ratio"] * 100)
        days = row["projected_days"]
        rows.append(
            f"<tr><td>{_text(row['name'])} <span class='muted'>{_text(row['name_ru'])} · "
            f"{_text(row['code'])}</span></td>"
            f"<td><span class='bar'><span style='width:{width:.1f}%'></span></span></td>"
            f"<td>{_percent(row['coverage_ratio'])}</td>"
            f"<td>{_count(row['attempted'])} / {_count(row['ingested'])}</td>"
            f"<td>{_count(row['reached'])}</td><td>{_count(row['conversations'])}</td>"
            f"<td>{_count(row['do_not_call'])}</td><td>{_count(row['retired'])}</td>"
            f"<td>{'—' if days is None else _text(f'{days:g}')}</td></tr>"
        )
    head = (
        "<tr><th>Region</th><th>Coverage</th><th></th><th>Called / ingested</th>"
        "<th>Reached</th><th>Conversations</th><th>Do not call</th><th>Retired</th>"
        "<th>Days left</th></tr>"
    )
    body = "".join(rows) or "<tr><td colspan='9'>No numbers ingested yet.</td></tr>"
    return f"<table>{head}{body}</table>"


def calls_chart(series: list[dict[str, Any]]) -> str:
    """An inline SVG bar chart of calls per hour (one bar per hour, oldest left)."""
    peak = max((point["calls"] for point in series), default=0) or 1
    plot_height = CHART_HEIGHT - 2 * CHART_MARGIN
    step = (CHART_WIDTH - CHART_MARGIN) / max(1, len(series))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" '
        f'height="{CHART_HEIGHT}" role="img" aria-label="Calls per hour">',
        f'<text x="0" y="{CHART_MARGIN - 8}" font-size="11">{_count(peak)} calls/h</text>',
    ]
    for index, point in enumerate(series):
        height = plot_height * point["calls"] / peak
        x = CHART_MARGIN + index * step
        y = CHART_MARGIN + plot_height - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.8:.1f}" '
            f'height="{height:.1f}" fill="#1b7f3b"><title>'
            f"{_text(point['hour_start'])}: {point['calls']} calls</title></rect>"
        )
        if index % CHART_LABEL_EVERY_HOURS == 0:
            label = str(point["hour_start"])[5:13].replace("T", " ") + "h"
            parts.append(
                f'<text x="{x:.1f}" y="{CHART_HEIGHT - 6}" font-size="10">{_text(label)}</text>'
            )
    parts.append(
        f'<line x1="{CHART_MARGIN}" y1="{CHART_MARGIN + plot_height}" '
        f'x2="{CHART_WIDTH}" y2="{CHART_MARGIN + plot_height}" stroke="#999"/></svg>'
    )
    return "".join(parts)


def _outcome_mix(outcomes: dict[str, int]) -> str:
    total = sum(outcomes.values())
    if not total:
        return "<p class='muted'>No outcomes yet.</p>"
    shown = [(o, n) for o, n in sorted(outcomes.items(), key=lambda item: -item[1]) if n]
    bar = "".join(
        f"<span style='flex:{n};background:{_colour(o)}' title='{_text(o)}'></span>"
        for o, n in shown
    )
    rows = "".join(
        f"<tr><td><span class='swatch' style='background:{_colour(o)}'></span>"
        f"{_text(o.replace('_', ' '))}</td><td>{_count(n)}</td><td>{_percent(n / total)}</td></tr>"
        for o, n in shown
    )
    return (
        f"<div class='mix'>{bar}</div><table><tr><th>Outcome</th><th>Events</th>"
        f"<th>Share</th></tr>{rows}</table>"
    )


def _guidelines(guidelines: list[dict[str, Any]]) -> str:
    if not guidelines:
        return "<p class='muted'>No calls yet.</p>"
    rows = "".join(
        f"<tr><td>{_text(g['guideline'])}</td><td>{_count(g['calls'])}</td>"
        f"<td>{_percent(g['rates'].get('conversation', 0.0))}</td>"
        f"<td>{_percent(g['rates'].get('refused', 0.0))}</td>"
        f"<td>{_percent(g['rates'].get('do_not_call', 0.0))}</td></tr>"
        for g in guidelines
    )
    return (
        "<table><tr><th>Guideline version</th><th>Calls</th><th>Conversation</th>"
        f"<th>Refused</th><th>Do not call</th></tr>{rows}</table>"
    )


def _attempts(distribution: dict[str, int]) -> str:
    head = "".join(f"<th>{_text(calls)}</th>" for calls in distribution)
    cells = "".join(f"<td>{_count(n)}</td>" for n in distribution.values())
    return (
        f"<table><tr><th>Calls to a number</th>{head}</tr><tr><td>Numbers</td>{cells}</tr></table>"
    )


def render_page(report: dict[str, Any]) -> str:
    """The whole HTML page for one report document."""
    updated = report["last_event_at"] or "no outcome yet"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>phonebank coverage · {_text(report['campaign'])}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Coverage — campaign {_text(report['campaign'])}</h1>"
        f"<div class='muted'>Last outcome {_text(updated)} · page generated "
        f"{_text(report['generated_at'])} (UTC) · refreshes every {REFRESH_SECONDS} s</div>"
        f"{_cards(report['totals'])}"
        f"<h2>Regions by coverage</h2>{_region_rows(report['regions'])}"
        f"<h2>Calls per hour</h2>{calls_chart(report['calls_by_hour'])}"
        f"<h2>Outcome mix</h2>{_outcome_mix(report['outcomes'])}"
        f"<h2>Outcome rates by guideline version</h2>{_guidelines(report['guidelines'])}"
        f"<h2>Calls per number</h2>{_attempts(report['attempts_per_number'])}"
        "</body></html>"
    )
