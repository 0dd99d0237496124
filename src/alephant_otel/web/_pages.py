"""The HTML of the web view: the session list, the session page, error pages.

Every value that came from a span goes through :func:`html.escape` here; the
session page's data travels as JSON in a ``<script type="application/json">``
block (never executed; ``<``, ``>`` and ``&`` written as ``\\u`` escapes so no
value can close the block) and is drawn by ``waterfall.js`` with
``textContent``. Served pages load their CSS and scripts from ``/static/``
(the Content-Security-Policy allows no inline script); the ``--html`` export
inlines the same files, allowed by their hashes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from functools import cache
from html import escape
from importlib import resources
from typing import Any, Final

from alephant_otel._version import __version__
from alephant_otel.analytics import Session, Vitals
from alephant_otel.web._view import ListQuery, list_row, money

__all__ = [
    "error_page",
    "export_page",
    "json_block",
    "list_page",
    "session_page",
    "static_file",
]

#: Static files the pages use, with their content types.
STATIC: Final = {
    "ui.css": "text/css; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "conversation.js": "text/javascript; charset=utf-8",
    "waterfall.js": "text/javascript; charset=utf-8",
    "list.js": "text/javascript; charset=utf-8",
}

_COLUMNS: Final = (
    ("session", "session", "text"),
    ("path", "path", "text"),
    ("status", "status", "text"),
    ("started", "started", "text when"),
    ("duration", "latency", "num"),
    ("agents", None, "text wrap"),
    ("runs", None, "num"),
    ("requests", "requests", "num"),
    ("retries", None, "num"),
    ("tokens in/out", "tokens", "num"),
    ("cost", "cost", "num"),
)
_ROW_KEYS: Final = (
    "session_id",
    "path",
    "status",
    "started",
    "duration",
    "agents",
    "runs",
    "requests",
    "retries",
    "tokens",
    "cost",
)
_FLAG_LABELS: Final = {
    "high_latency": "high latency",
    "repeated_retries": "repeated retries",
    "token_outlier": "unusual token use",
    "intercepted": "intercepted",
    "errors": "errors",
}


@cache
def static_file(name: str) -> bytes:
    """The bytes of one packaged static file (``KeyError`` when it is not one)."""
    if name not in STATIC:
        raise KeyError(name)
    return (resources.files("alephant_otel.web") / "static" / name).read_bytes()


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def json_block(doc: Any, element_id: str) -> str:
    """``doc`` as a JSON data block that no value can break out of."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _shell(
    title: str, body: str, *, scripts: Sequence[str] = (), live: str = "", inline: bool = False, refresh: int = 0
) -> str:
    if scripts:
        scripts = ("common.js", *scripts)
    if inline:
        css = static_file("ui.css").decode()
        js = "".join(static_file(s).decode() for s in scripts)
        csp = (
            "default-src 'none'; img-src data:; "
            f"style-src '{_sha256(css)}'; script-src '{_sha256(js)}'; base-uri 'none'; form-action 'none'"
        )
        head = f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n<style>{css}</style>'
        tail = f"<script>{js}</script>" if js else ""
    else:
        head = '<link rel="stylesheet" href="/static/ui.css">'
        tail = "".join(f'<script src="/static/{s}" defer></script>' for s in scripts)
    live_attr = f' data-live="{_e(live)}"' if live else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        + (f'<meta http-equiv="refresh" content="{refresh}">' if refresh else "")
        + f"<title>{_e(title)}</title>{head}{tail}</head>"
        f"<body{live_attr}>{body}"
        f"<footer>alephant-otel {_e(__version__)} · read-only view</footer></body></html>\n"
    )


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _header(source: str, crumbs: str = "") -> str:
    return (
        '<header class="top"><a class="brand" href="/">alephant-otel</a>'
        f'{crumbs}<span class="source" title="source">{_e(source)}</span>'
        '<span class="live-dot" id="live" hidden>live</span></header>'
    )


# --- the list ----------------------------------------------------------------------


def _filters(q: ListQuery, statuses: Sequence[str]) -> str:
    options = ['<option value="">any status</option>'] + [
        f'<option value="{_e(s)}"{" selected" if q.status == s else ""}>{_e(s)}</option>' for s in statuses
    ]

    def field(name: str, label: str, value: str, placeholder: str) -> str:
        return f'<label>{_e(label)}<input name="{name}" value="{_e(value)}" placeholder="{_e(placeholder)}"></label>'

    return (
        '<form class="filters" method="get" action="/">'
        f'<label>status<select name="status">{"".join(options)}</select></label>'
        + field("path", "path", q.path, "/support")
        + field("agent", "agent", q.agent, "agent id")
        + field("user", "user", q.user, "user id")
        + field("min_cost", "min cost $", q.min_cost, "0.01")
        + field("since", "since", q.since, "1h or ISO time")
        + field("until", "until", q.until, "ISO time")
        + f'<input type="hidden" name="sort" value="{_e(q.sort)}">'
        f'<input type="hidden" name="order" value="{"desc" if q.desc else "asc"}">'
        f'<input type="hidden" name="by" value="{_e(q.by)}">'
        '<button type="submit">Filter</button><a class="reset" href="/">reset</a></form>'
    )


def _head_row(q: ListQuery) -> str:
    cells = []
    for label, key, align in _COLUMNS:
        if key is None:
            cells.append(f'<th class="{align}">{_e(label)}</th>')
            continue
        active = q.sort == key
        desc = not q.desc if active else key not in ("session", "path", "status")
        arrow = (" ▼" if q.desc else " ▲") if active else ""
        href = "/?" + q.params(sort=key, order="desc" if desc else "asc", page=1)
        cls = f"{align} sorted" if active else align
        cells.append(f'<th class="{cls}"><a href="{_e(href)}">{_e(label)}{arrow}</a></th>')
    return "<tr>" + "".join(cells) + "</tr>"


def _row(s: Session) -> str:
    row = list_row(s)
    cells = []
    for i, key in enumerate(_ROW_KEYS):
        value = row[key]
        align = _COLUMNS[i][2]
        if key == "session_id":
            name = f'<span class="name">{_e(row["name"])}</span>' if row["name"] else ""
            href = "/sessions/" + _quote(s.session_id)
            # The id is shortened on screen by CSS only: its text (what a copy takes), its link and
            # its tooltip stay whole.
            cells.append(f'<td class="text id"><a href="{_e(href)}" title="{_e(value)}">{_e(value)}</a>{name}</td>')
        elif key == "status":
            cells.append(f'<td class="text"><span class="status {_e(value)}">{_e(value)}</span></td>')
        else:
            cells.append(f'<td class="{align}">{_e(value)}</td>')
    return "<tr>" + "".join(cells) + "</tr>"


def _quote(session_id: str) -> str:
    from urllib.parse import quote

    return quote(session_id, safe="")


def totals_text(chosen: Sequence[Session], seen: int) -> str:
    """The line under the filters: what the selection adds up to."""
    requests = sum(s.request_count for s in chosen)
    tokens_in = sum(s.input_tokens for s in chosen)
    tokens_out = sum(s.output_tokens for s in chosen)
    intercepted = sum(1 for s in chosen if s.status == "intercepted")
    active = sum(1 for s in chosen if s.status == "active")
    return (
        f"{len(chosen):,} of {seen:,} sessions · {requests:,} requests · "
        f"{tokens_in:,}/{tokens_out:,} tokens · {money(sum(s.cost_usd for s in chosen))} · "
        f"{intercepted:,} intercepted · {active:,} active"
    )


def _pager(q: ListQuery, total: int) -> str:
    pages = max(1, -(-total // q.size))
    page = min(q.page, pages)
    parts = [f'<span class="pageinfo">page {page} of {pages}</span>']
    if page > 1:
        parts.insert(0, f'<a href="/?{_e(q.params(page=page - 1))}" rel="prev">← previous</a>')
    if page < pages:
        parts.append(f'<a href="/?{_e(q.params(page=page + 1))}" rel="next">next →</a>')
    return '<nav class="pager">' + " ".join(parts) + "</nav>"


def _flagged(vitals: Vitals) -> str:
    flagged = vitals.flagged[:30]
    if not flagged:
        return '<p class="muted">No session stands out.</p>'
    items = []
    for sv in flagged:
        s = sv.session
        flags = "".join(
            f'<span class="flag {_e(f.kind)}" title="{_e(f.detail)}">{_e(_FLAG_LABELS.get(f.kind, f.kind))}</span>'
            for f in sv.flags
        )
        href = "/sessions/" + _quote(s.session_id)
        items.append(
            f'<li><a href="{_e(href)}">{_e(s.session_id)}</a> <span class="muted">{_e(s.path or "-")}</span> '
            f'{flags} <span class="muted">{_e(money(s.cost_usd))}</span></li>'
        )
    more = len(vitals.flagged) - len(flagged)
    tail = f'<p class="muted">and {more} more</p>' if more > 0 else ""
    return f'<ul class="flagged">{"".join(items)}</ul>{tail}'


#: Sessions needed before the list page shows its charts: five charts of one session are noise.
CHARTS_FROM: Final = 3


def list_page(
    *,
    source: str,
    query: ListQuery,
    chosen: Sequence[Session],
    seen: int,
    problems: Sequence[str],
    vitals: Vitals,
    statuses: Sequence[str],
    charts: Sequence[str],
    version: str,
    live: bool,
    by_choices: Sequence[str] = ("agent", "path"),
    groups: Sequence[dict[str, Any]] = (),
) -> str:
    """The ``/`` page: filters, totals, the sorted and paged table, charts, cost by a dimension, outliers."""
    pages = max(1, -(-len(chosen) // query.size))
    page = min(query.page, pages)
    rows = chosen[(page - 1) * query.size : page * query.size]
    problem_html = "".join(f'<p class="problem">{_e(p)}</p>' for p in problems)
    table = (
        f'<div class="table-wrap"><table class="sessions"><thead>{_head_row(query)}</thead>'
        f'<tbody id="rows">{"".join(_row(s) for s in rows)}</tbody></table></div>'
        f'<p class="empty" id="empty"{"" if not chosen else " hidden"}>No session matches.</p>'
    )
    chart_q = query.params(page="")
    chart_imgs = "".join(
        f'<figure><img alt="{_e(name)} chart" data-chart="{_e(name)}" '
        f'src="/charts/{_e(name)}.svg?{_e(chart_q)}&amp;v={_e(version)}" width="560" height="230"></figure>'
        for name in charts
    )
    few = len(chosen) < CHARTS_FROM
    few_note = (
        f'<p class="muted" id="charts-few"{"" if few else " hidden"}>The charts appear from {CHARTS_FROM} '
        "sessions up: with fewer, the table says it all.</p>"
    )
    body = (
        _header(source)
        + "<main>"
        + _filters(query, statuses)
        + problem_html
        + f'<p class="totals" id="totals">{_e(totals_text(chosen, seen))}</p>'
        + table
        + _pager(query, len(chosen))
        + f"<h2>Vitals</h2>{few_note}"
        + f'<section class="charts" id="charts"{" hidden" if few else ""}>{chart_imgs}</section>'
        + _breakdown(query, by_choices, groups, few=few, version=version)
        + f"<h2>Sessions that stand out</h2>{_flagged(vitals)}"
        + "</main>"
    )
    live_url = "/api/list?" + query.params() if live else ""
    return _shell(f"sessions · {source}", body, scripts=("list.js",), live=live_url and f"{version} {live_url}")


def list_json_rows(chosen: Sequence[Session], query: ListQuery, seen: int) -> dict[str, Any]:
    """What ``list.js`` redraws the table from: the page's rows, formatted, and the totals line."""
    pages = max(1, -(-len(chosen) // query.size))
    page = min(query.page, pages)
    rows = chosen[(page - 1) * query.size : page * query.size]
    return {
        "totals": totals_text(chosen, seen),
        "charts": len(chosen) >= CHARTS_FROM,
        "columns": list(_ROW_KEYS),
        "aligns": [c[2] for c in _COLUMNS],
        "rows": [list_row(s) for s in rows],
    }


def _filter_href(q: ListQuery, key: str) -> str | None:
    """The list filtered to one group, where the breakdown's dimension is a filter."""
    if q.by not in ("agent", "path", "user") or key == "(none)":
        return None
    return "/?" + q.params(**{q.by: key, "page": 1})


def group_links(q: ListQuery, groups: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The breakdown rows, each with the link that filters the list to its group (or None)."""
    return [{**g, "href": _filter_href(q, g["key"])} for g in groups]


def _breakdown(
    q: ListQuery, by_choices: Sequence[str], groups: Sequence[dict[str, Any]], *, few: bool, version: str
) -> str:
    """The cost by one dimension (as ``sessions vitals --by``): links to each grouping, a table, a chart."""
    on = ' class="on" aria-current="true"'
    links = "".join(
        f'<a href="/?{_e(q.params(by=b, page=""))}"{on if b == q.by else ""}>{_e(b)}</a>' for b in by_choices
    )
    rows = []
    for g in group_links(q, groups):
        key = f'<a href="{_e(g["href"])}">{_e(g["key"])}</a>' if g["href"] else _e(g["key"])
        nums = "".join(f'<td class="num">{_e(g[k])}</td>' for k in _GROUP_KEYS[1:])
        rows.append(f'<tr><td class="text">{key}</td>{nums}</tr>')
    heads = (q.by, "sessions", "calls" if q.by == "tool" else "requests", "tokens in/out", "cost", "share")
    head = "".join(f'<th class="{"text" if i == 0 else "num"}">{_e(h)}</th>' for i, h in enumerate(heads))
    chart_q = q.params(page="")
    return (
        f'<h2>Cost by {_e(q.by)}</h2><nav class="by" id="by">{links}</nav>'
        f'<div class="table-wrap"><table class="groups"><thead><tr>{head}</tr></thead>'
        f'<tbody id="group-rows">{"".join(rows)}</tbody></table></div>'
        f'<p class="empty" id="groups-empty"{" hidden" if groups else ""}>No cost to break down.</p>'
        f'<section class="by-chart" id="by-chart"{" hidden" if few else ""}><figure>'
        f'<img alt="cost by {_e(q.by)} chart" data-chart="cost-by" '
        f'src="/charts/cost-by.svg?{_e(chart_q)}&amp;v={_e(version)}" width="560" height="230"></figure></section>'
    )


#: The breakdown table's columns, as ``list.js`` redraws them.
_GROUP_KEYS: Final = ("key", "sessions", "requests", "tokens", "cost", "share")


# --- one session -------------------------------------------------------------------


def session_page(doc: dict[str, Any], *, live: str = "") -> str:
    """The ``/sessions/{id}`` page: a shell the waterfall script draws ``doc`` into."""
    s = doc["session"]
    crumbs = f'<span class="crumb">/ session {_e(s["session_id"])}</span>'
    body = _header(doc["source"], crumbs) + _session_body(doc)
    return _shell(f"session {s['session_id']}", body, scripts=("conversation.js", "waterfall.js"), live=live)


def _session_body(doc: dict[str, Any]) -> str:
    return '<main><div id="session"><p class="muted">Loading…</p></div></main>' + json_block(doc, "session-data")


def export_page(doc: dict[str, Any]) -> str:
    """The ``sessions show --html`` file: the session page with its CSS, script and data inline."""
    s = doc["session"]
    body = (
        '<header class="top"><span class="brand">alephant-otel</span>'
        f'<span class="crumb">session {_e(s["session_id"])}</span>'
        f'<span class="source">{_e(doc["source"])}</span></header>' + _session_body(doc)
    )
    return _shell(f"session {s['session_id']}", body, scripts=("conversation.js", "waterfall.js"), inline=True)


# --- errors -------------------------------------------------------------------------


#: How often the "no trace file yet" page reloads itself (a meta refresh: the CSP allows no inline script).
WAIT_REFRESH_S: Final = 2


def waiting_page(message: str, *, source: str = "") -> str:
    """The page for a trace file that does not exist yet: it says so and reloads until the file appears."""
    body = (
        _header(source)
        + f'<main class="error"><h1>No trace file yet</h1><p>{_e(message)}</p>'
        + f"<p>This page reloads every {WAIT_REFRESH_S} seconds and shows the sessions once spans are "
        "written there (configure(trace_file=...) or ALEPHANT_TRACE_FILE in your app, or "
        "OTEL_TRACES_EXPORTER=alephant_file).</p></main>"
    )
    return _shell("No trace file yet", body, refresh=WAIT_REFRESH_S)


def error_page(title: str, message: str, *, source: str = "") -> str:
    """A page saying what went wrong, with a way back."""
    body = (
        _header(source)
        + f'<main class="error"><h1>{_e(title)}</h1><p>{_e(message)}</p>'
        + '<p><a href="/">← back to the session list</a></p></main>'
    )
    return _shell(title, body)
