"""The answers report: what clinicians did with each rule's cards (shown, accepted, overridden by reason, held
back), week by week, and each clinician's lumbar imaging orders. The numbers are Store.report's and
Store.clinician_report's, the same the JSON report (`cds-service report --format json`) prints; the page shows
them as tables and as charts drawn in the browser by Chart.js (vendored under static/vendor)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
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


def _series(rows: list[tuple[str, dict[str, int]]], outcomes: tuple[str, ...]) -> dict[str, Any]:
    return {
        "labels": [label for label, _ in rows],
        "values": {o: [values.get(o, 0) for _, values in rows] for o in outcomes},
    }


def chart_data(
    per_rule: list[tuple[str, dict[str, int]]],
    by_reason: list[tuple[str, dict[str, int]]],
    weeks: list[tuple[str, dict[str, int]]],
    clinicians: dict[str, Any],
) -> dict[str, Any]:
    """What the page's charts draw (console.js, with Chart.js), as one JSON block: the same numbers as the
    tables beside them, which stay the page's record for screen readers, printing and tests."""
    trend = [(user, c["weekly"]) for user, c in clinicians["clinicians"].items()]
    return {
        "outcomes": [{"key": o, "label": LABELS[o], "colour": COLOURS[o]} for o in OUTCOMES],
        "rules": _series(per_rule, OUTCOMES),
        "reasons": _series(by_reason, ("overridden",)),
        "weeks": _series(weeks, OUTCOMES),
        "clinicians": {
            "labels": [user for user, _ in trend],
            "share": [round(c["without_red_flag_share"] * 100) for c in clinicians["clinicians"].values()],
            "peer_median": (
                round(clinicians["peer_median_without_red_flag_share"] * 100)
                if clinicians["peer_median_without_red_flag_share"] is not None
                else None
            ),
            "weeks": [w["week"] for w in trend[0][1]] if trend else [],
            "series": [
                {
                    "label": user,
                    "orders": [w["imaging_orders"] for w in weekly],
                    "without_red_flag": [w["without_red_flag"] for w in weekly],
                }
                for user, weekly in trend
            ],
        },
    }
