"""Small server-side SVG charts for the dashboard: bars, lines and histograms.

Built with format_html, so every label is escaped; drawn with presentation attributes and CSS classes only, so the
Content-Security-Policy (no inline style, no script) holds. Each chart carries a <title> and a text summary for
screen readers; the numbers behind it are downloadable as CSV from the dashboard.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# Every piece below comes out of format_html (escaped); joining them with mark_safe keeps them safe, adds nothing.

WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 34, 42


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    css: str = "s0"


def f1(value: float) -> str:
    return f"{value:.1f}"


def _nice_max(value: float, *, whole: bool = True) -> float:
    """An axis top of four equal, round steps (1, 2 or 5 times a power of ten). Counts (`whole`) get whole steps:
    an axis of examples never reads 0.5."""
    if value <= 0:
        return 4
    step = value / 4
    magnitude = 10 ** math.floor(math.log10(step))
    nice = next(f * magnitude for f in (1, 2, 5, 10) if step <= f * magnitude * (1 + 1e-9))
    if whole or value >= 4:
        nice = max(1, nice)
    return 4 * nice


def _fmt(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _axes(ymax: float, *, percent: bool = False) -> SafeString:
    plot_h = HEIGHT - TOP - BOTTOM
    ticks = []
    for i in range(5):
        value = ymax * i / 4
        y = TOP + plot_h - plot_h * i / 4
        label = f"{value * 100:.0f}%" if percent else _fmt(value)
        ticks.append((LEFT, f1(y), WIDTH - RIGHT, f1(y), LEFT - 6, f1(y + 4), label))
    return format_html_join(
        "",
        '<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/><text class="tick" x="{}" y="{}" '
        'text-anchor="end">{}</text>',
        ticks,
    )


def _frame(title: str, summary: str, body: SafeString, legend: Sequence[Series] = ()) -> SafeString:
    legend_html = format_html_join(
        "",
        '<rect class="{}" x="{}" y="{}" width="10" height="10"/><text class="legend" x="{}" y="{}">{}</text>',
        ((s.css, LEFT + i * 120, HEIGHT - 12, LEFT + i * 120 + 14, HEIGHT - 3, s.name) for i, s in enumerate(legend)),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}"><title>{}</title><desc>{}</desc>'
        '<text class="title" x="8" y="18">{}</text>{}{}</svg>',
        WIDTH, HEIGHT, title, title, summary, title, body, legend_html,
    )  # fmt: skip


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    targets: Sequence[float | None] | None = None,
    percent: bool = False,
    css: Sequence[str] | None = None,
) -> SafeString:
    """Vertical bars, one per label, with an optional target mark per bar (coverage against a lead's target)."""
    top = max([*values, *[t for t in (targets or []) if t is not None], 0])
    ymax = min(1.0, _nice_max(top * 1.1, whole=False)) if percent and top <= 1 else _nice_max(top)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(values))
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * (value / ymax if ymax else 0)
        x = LEFT + i * slot + slot * 0.15
        shown = f"{value * 100:.1f}%" if percent else _fmt(value)
        cls = css[i] if css else "s0"
        bars.append(
            format_html(
                '<rect class="bar {}" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>'
                '<text class="value" x="{}" y="{}" text-anchor="middle">{}</text>'
                '<text class="label" x="{}" y="{}" text-anchor="middle">{}</text>',
                cls,
                x,
                TOP + plot_h - h,
                slot * 0.7,
                h,
                label,
                shown,
                x + slot * 0.35,
                TOP + plot_h - h - 4,
                shown,
                x + slot * 0.35,
                HEIGHT - BOTTOM + 16,
                label[:18],
            )  # fmt: skip
        )
        target = (targets or [None] * len(values))[i]
        if target is not None:
            y = TOP + plot_h - plot_h * (target / ymax)
            bars.append(
                format_html(
                    '<line class="target" x1="{}" y1="{}" x2="{}" y2="{}"><title>target {}</title></line>',
                    x - 3,
                    y,
                    x + slot * 0.7 + 3,
                    y,
                    f"{target * 100:.0f}%" if percent else _fmt(target),
                )  # fmt: skip
            )
    summary = "; ".join(
        f"{label}: {value * 100:.1f}%" if percent else f"{label}: {_fmt(value)}"
        for label, value in zip(labels, values, strict=True)
    )
    return _frame(title, summary, _axes(ymax, percent=percent) + mark_safe("".join(bars)))


def line_chart(title: str, x_labels: Sequence[str], series: Sequence[Series]) -> SafeString:
    """Lines over time (examples per status per day); a dot per point, the first and last dates labelled."""
    ymax = _nice_max(max([v for s in series for v in s.values] + [0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(1, len(x_labels) - 1)
    parts = []
    for s in series:
        points = [(LEFT + plot_w * i / n, TOP + plot_h - plot_h * (v / ymax)) for i, v in enumerate(s.values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            format_html('<polyline class="line {}" points="{}"><title>{}</title></polyline>', s.css, path, s.name)
        )
        parts.extend(  # a dot per point: a single day still shows
            format_html('<circle class="dot {}" cx="{}" cy="{}" r="3"><title>{}: {}</title></circle>', s.css,
                        f"{x:.1f}", f"{y:.1f}", s.name, _fmt(v))
            for (x, y), v in zip(points, s.values, strict=True)
        )  # fmt: skip
    if x_labels:
        parts.append(
            format_html('<text class="label" x="{}" y="{}">{}</text>', LEFT, HEIGHT - BOTTOM + 16, x_labels[0])
        )
        parts.append(
            format_html(
                '<text class="label" x="{}" y="{}" text-anchor="end">{}</text>',
                WIDTH - RIGHT,
                HEIGHT - BOTTOM + 16,
                x_labels[-1],
            )  # fmt: skip
        )
    summary = "; ".join(f"{s.name}: {_fmt(sum(s.values))} in all" for s in series)
    return _frame(title, summary, _axes(ymax) + mark_safe("".join(parts)), legend=series)


def histogram(title: str, edges: Sequence[float], counts: Sequence[int], *, unit: str = "") -> SafeString:
    """Counts per bin; `edges` has one more item than `counts`."""
    labels = [f"{_fmt(edges[i])}–{_fmt(edges[i + 1])}{unit}" for i in range(len(counts))]
    ymax = _nice_max(max([*counts, 0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(counts))
    bars = [
        format_html(
            '<rect class="bar s0" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
            LEFT + i * slot + 1,
            TOP + plot_h - plot_h * c / ymax,
            max(1.0, slot - 2),
            plot_h * c / ymax,
            labels[i],
            c,
        )  # fmt: skip
        for i, c in enumerate(counts)
    ]
    bars.extend(  # the lower edge of every bin but the first, under its bar's left side
        format_html(
            '<text class="label" x="{}" y="{}" text-anchor="middle">{}</text>',
            f"{LEFT + i * slot:.1f}",
            HEIGHT - BOTTOM + 16,
            _fmt(edges[i]),
        )  # fmt: skip
        for i in range(1, len(counts))
    )
    if counts:
        bars.append(
            format_html('<text class="label" x="{}" y="{}">{}</text>', LEFT, HEIGHT - BOTTOM + 16, _fmt(edges[0]))
        )
        # The right end carries the unit only: the top edge's number would run into the last bin's lower edge
        # (the summary and each bar's tooltip give the full range).
        bars.append(
            format_html(
                '<text class="label" x="{}" y="{}" text-anchor="end">{}</text>',
                WIDTH - RIGHT,
                HEIGHT - BOTTOM + 16,
                unit.strip() or _fmt(edges[-1]),
            )  # fmt: skip
        )
    summary = f"{sum(counts):,} values from {_fmt(edges[0]) if edges else 0} to {_fmt(edges[-1]) if edges else 0}{unit}"
    return _frame(title, summary, _axes(ymax) + mark_safe("".join(bars)))
