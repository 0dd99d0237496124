"""The vitals as small SVG charts, drawn in Python (no chart library, no script).

Each chart answers one question of ``sessions vitals``: where the money
went over time (by agent, by path), which sessions were intercepted, which
were slow or retried, which used unusual numbers of tokens. The server
sends them as ``image/svg+xml`` documents shown through ``<img>``: an image
runs no script, and every label from a span is XML-escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Final

from alephant_otel.analytics import Session, Vitals
from alephant_otel.web._groups import points as breakdown_points
from alephant_otel.web._view import duration, when

__all__ = ["BY_CHART", "CHARTS", "render_breakdown", "render_chart"]

W: Final = 560
H: Final = 230
_L, _R, _T, _B = 64, 14, 44, 46
#: The width of one character of the 11 px labels, near enough, to leave room for the y-axis labels.
_CHAR_W: Final = 6.4
PALETTE: Final = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac")
_STATUS_COLOURS: Final = {"completed": "#59a14f", "intercepted": "#e15759", "active": "#4e79a7"}
_BUCKETS: Final = 24
_TOP: Final = 6


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _frame(title: str, body: list[str], legend: Sequence[tuple[str, str]] = (), left: float = _L) -> str:
    # No width/height attributes: the image fills its card, scaled by the viewBox.
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" '
        'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="11">',
        f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
        f'<text x="{left:.0f}" y="18" font-size="13" font-weight="600" fill="#1f2933">{_e(title)}</text>',
    ]
    x = float(W - _R)
    for label, colour in reversed(legend):
        text = label if len(label) <= 18 else label[:17] + "\u2026"
        width = 16 + 6.2 * len(text)
        x -= width
        out.append(f'<rect x="{x:.1f}" y="{H - 14}" width="9" height="9" rx="2" fill="{colour}"/>')
        out.append(f'<text x="{x + 12:.1f}" y="{H - 6}" fill="#52606d">{_e(text)}</text>')
    out.extend(body)
    out.append("</svg>")
    return "".join(out)


def _empty(title: str) -> str:
    return _frame(title, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" fill="#9aa5b1">no data</text>'])


def _left(y_max: float, y_fmt: Callable[[float], str]) -> float:
    """The plot's left edge: room for the longest y-axis label (``$0.0000080`` lost its ``$`` at 64 px)."""
    longest = max(len(y_fmt(y_max * i / 4)) for i in range(5))
    return max(40.0, 12 + _CHAR_W * longest)


def _axes(y_max: float, y_fmt: Callable[[float], str], left: float) -> list[str]:
    out = []
    plot_h = H - _T - _B
    for i in range(5):
        y = _T + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left:.1f}" x2="{W - _R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7eb"/>')
        out.append(
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" fill="#7b8794">'
            f"{_e(y_fmt(y_max * i / 4))}</text>"
        )
    return out


def _time_ends(lo: int, hi: int) -> tuple[str, str]:
    """The x-axis ends: two times, or a time and ``+154ms`` when both would read the same second."""
    first, last = when(lo), when(hi)
    return (first, last) if last != first else (first, "+" + duration((hi - lo) / 1e9))


def _nice_max(value: float, *, integer: bool) -> float:
    """The top of an axis of four steps at or above ``value``, each step a round number."""
    if value <= 0:
        return 4.0 if integer else 1.0
    raw = value / 4
    scale: float = 10.0 ** math.floor(math.log10(raw))
    step: float = next(m * scale for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * scale >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, math.ceil(step))
    return step * 4


def _axis_money(x: float) -> str:
    if x <= 0:
        return "$0"
    if x >= 1:
        return f"${x:,.2f}"
    # Two significant digits, in plain notation (no 3.9e-05 on an axis).
    digits = max(2, 1 - math.floor(math.log10(x)))
    return f"${x:.{digits}f}"


def _axis_int(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 or x == int(x) else f"{x:.1f}"


def _buckets(times: Iterable[int]) -> tuple[int, int]:
    ts = list(times)
    lo, hi = min(ts), max(ts)
    width = max(1, (hi - lo) // _BUCKETS + 1)
    return lo, width


def _stacked(
    title: str,
    points: list[tuple[int, str, float]],
    y_fmt: Callable[[float], str],
    colours: dict[str, str] | None = None,
) -> str:
    """Stacked bars over time: ``points`` are (time ns, series, value)."""
    if not points:
        return _empty(title)
    lo, width = _buckets(t for t, _, _ in points)
    totals: dict[str, float] = {}
    for _, key, v in points:
        totals[key] = totals.get(key, 0.0) + v
    if colours is None:
        ranked = sorted(totals, key=lambda k: (-totals[k], k))
        keep = ranked[:_TOP]
        series = keep + (["other"] if len(ranked) > _TOP else [])
        colour_of = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(series)}
        colour_of["other"] = PALETTE[-1]
    else:
        keep = [k for k in colours if k in totals]
        series = keep
        colour_of = colours
    kept = set(keep)
    grid = [[0.0] * len(series) for _ in range(_BUCKETS)]
    index = {k: i for i, k in enumerate(series)}
    for t, key, v in points:
        b = min((t - lo) // width, _BUCKETS - 1)
        grid[b][index[key if key in kept else "other"]] += v
    y_max = _nice_max(max(sum(col) for col in grid), integer=y_fmt is _axis_int)
    left = _left(y_max, y_fmt)
    plot_w, plot_h = W - left - _R, H - _T - _B
    bar_w = plot_w / _BUCKETS
    body = _axes(y_max, y_fmt, left)
    for b, col in enumerate(grid):
        y = float(_T + plot_h)
        for i, v in enumerate(col):
            if v <= 0:
                continue
            h = plot_h * v / y_max
            y -= h
            body.append(
                f'<rect x="{left + b * bar_w + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                f'fill="{colour_of[series[i]]}"><title>{_e(series[i])}: {_e(y_fmt(v))}</title></rect>'
            )
    first, last = _time_ends(lo, lo + width * _BUCKETS)
    body.append(f'<text x="{left:.1f}" y="{H - 30}" fill="#7b8794">{_e(first)}</text>')
    body.append(f'<text x="{W - _R}" y="{H - 30}" text-anchor="end" fill="#7b8794">{_e(last)}</text>')
    return _frame(title, body, [(k, colour_of[k]) for k in series], left)


def _scatter(
    title: str,
    points: list[tuple[float, float, bool]],
    x_label: str,
    y_label: str,
    x_fmt: Callable[[float], str],
    y_fmt: Callable[[float], str],
) -> str:
    """One dot per session; flagged ones in red."""
    if not points:
        return _empty(title)
    x_max = max(x for x, _, _ in points) or 1.0
    y_max = _nice_max(max(y for _, y, _ in points), integer=y_fmt is _axis_int)
    left = _left(y_max, y_fmt)
    plot_w, plot_h = W - left - _R, H - _T - _B
    body = _axes(y_max, y_fmt, left)
    # Unflagged first: the flagged dots are drawn on top.
    for x, y, flagged in sorted(points, key=lambda p: p[2]):
        cx = left + plot_w * x / x_max
        cy = _T + plot_h - plot_h * y / y_max
        colour = "#e15759" if flagged else "#4e79a7"
        body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{colour}" fill-opacity="0.7"/>')
    body.append(f'<text x="{left:.1f}" y="{H - 30}" fill="#7b8794">0</text>')
    body.append(f'<text x="{W - _R}" y="{H - 30}" text-anchor="end" fill="#7b8794">{_e(x_fmt(x_max))}</text>')
    body.append(
        f'<text x="{(left + W - _R) / 2:.1f}" y="{H - 30}" text-anchor="middle" fill="#52606d">{_e(x_label)}</text>'
    )
    body.append(f'<text x="4" y="{_T - 12}" fill="#52606d">{_e(y_label)}</text>')
    return _frame(title, body, [("flagged", "#e15759"), ("other sessions", "#4e79a7")], left)


def _cost_by_agent(sessions: Sequence[Session], vitals: Vitals) -> str:
    # Paid tool calls count under their agent, as in `sessions vitals`: the bars add up to the cost.
    return _stacked("Cost by agent over time", breakdown_points(sessions, "agent"), _axis_money)


def _cost_by_path(sessions: Sequence[Session], vitals: Vitals) -> str:
    return _stacked("Cost by path over time", breakdown_points(sessions, "path"), _axis_money)


def _status(sessions: Sequence[Session], vitals: Vitals) -> str:
    points: list[tuple[int, str, float]] = [(s.start_ns, s.status, 1.0) for s in sessions if s.start_ns]
    return _stacked("Sessions by status over time (intercepted in red)", points, _axis_int, _STATUS_COLOURS)


def _latency(sessions: Sequence[Session], vitals: Vitals) -> str:
    points = [
        (
            v.latency_p95_s,
            float(v.session.retries),
            any(f.kind in ("high_latency", "repeated_retries") for f in v.flags),
        )
        for v in vitals.sessions
        if v.session.requests
    ]
    return _scatter("Latency and retries per session", points, "p95 request latency", "retries", duration, _axis_int)


def _tokens(sessions: Sequence[Session], vitals: Vitals) -> str:
    points = [
        (float(v.session.request_count), float(v.session.tokens), any(f.kind == "token_outlier" for f in v.flags))
        for v in vitals.sessions
        if v.session.requests
    ]
    return _scatter("Token use per session", points, "requests", "tokens", _axis_int, _axis_int)


#: Chart name (as in ``/charts/<name>.svg``) → drawing function.
CHARTS: Final[dict[str, Callable[[Sequence[Session], Vitals], str]]] = {
    "cost-by-agent": _cost_by_agent,
    "cost-by-path": _cost_by_path,
    "status": _status,
    "latency": _latency,
    "tokens": _tokens,
}


def render_chart(name: str, sessions: Sequence[Session], vitals: Vitals) -> str | None:
    """The SVG document of chart ``name``, or None for an unknown name."""
    draw = CHARTS.get(name)
    return None if draw is None else draw(sessions, vitals)


#: The chart of the breakdown the page shows (``/charts/cost-by.svg?by=user``).
BY_CHART: Final = "cost-by"


def render_breakdown(by: str, sessions: Sequence[Session]) -> str:
    """The SVG document of the cost by ``by`` (a ``sessions vitals --by`` dimension) over time."""
    return _stacked(f"Cost by {by} over time", breakdown_points(sessions, by), _axis_money)
