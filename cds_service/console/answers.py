"""The answers report as charts: what clinicians did with each rule's cards (shown, accepted, overridden by
reason, held back) and week by week, drawn as SVG on the server with the numbers beside every bar. The
numbers are Store.report's, the same the JSON report (`cds-service report --format json`) prints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Any

from cds_service.storage.store import Store

OUTCOMES = ("shown", "accepted", "overridden", "suppressed")
LABELS = {"shown": "shown", "accepted": "accepted", "overridden": "overridden", "suppressed": "held back"}
COLOURS = {"shown": "#1f6fd1", "accepted": "#2e7d32", "overridden": "#c62828", "suppressed": "#6d6d6d"}


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last, time.max, UTC)

    @classmethod
    def parse(cls, first: str | None, last: str | None, today: date) -> Period:
        """From the date pickers (YYYY-MM-DD); the last 30 days by default. ValueError on a bad date."""
        end = date.fromisoformat(last) if last else today
        start = date.fromisoformat(first) if first else end - timedelta(days=29)
        if start > end:
            raise ValueError("the first day is after the last day")
        if (end - start).days > 3 * 366:
            raise ValueError("choose at most three years")
        return cls(start, end)

    def weeks(self) -> list[Period]:
        out, day = [], self.first
        while day <= self.last:
            out.append(Period(day, min(day + timedelta(days=6), self.last)))
            day += timedelta(days=7)
        return out


def totals(report: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {o: sum(r[o] for r in report.values()) for o in OUTCOMES}


def reasons(report: dict[str, dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rule in report.values():
        for reason, count in rule["override_reasons"].items():
            out[reason] = out.get(reason, 0) + count
    return dict(sorted(out.items(), key=lambda item: (-item[1], item[0])))


def weekly(store: Store, period: Period) -> list[tuple[Period, dict[str, int]]]:
    return [(week, totals(store.report(week.start, week.end))) for week in period.weeks()]


def bar_chart(title: str, rows: list[tuple[str, dict[str, int]]], chart_id: str) -> str:
    """Grouped horizontal bars, one group per row label, one bar per outcome, each with its number."""
    bar, gap, label_w, width = 14, 10, 330, 760
    biggest = max([1, *(v for _, values in rows for v in values.values())])
    height = 30 + sum(len(values) * bar + gap for _, values in rows)
    parts = [
        f'<svg id="{chart_id}" class="chart" role="img" aria-labelledby="{chart_id}-title" '
        f'viewBox="0 0 {width} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
    ]
    y = 20
    for label, values in rows:
        shown = label if len(label) <= 48 else label[:47] + "…"  # the bar's tooltip has it in full
        parts.append(f'<text x="0" y="{y + 11}" class="row-label">{escape(shown)}</text>')
        for outcome, value in values.items():
            length = round((width - label_w - 60) * value / biggest)
            colour = COLOURS.get(outcome, "#1f6fd1")
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{length}" height="{bar - 2}" fill="{colour}">'
                f"<title>{escape(label)}: {LABELS.get(outcome, outcome)} {value}</title></rect>"
                f'<text x="{label_w + length + 4}" y="{y + 11}" class="value" data-row="{escape(label)}" '
                f'data-outcome="{escape(outcome)}">{value}</text>'
            )
            y += bar
        y += gap
    parts.append("</svg>")
    return "".join(parts)
