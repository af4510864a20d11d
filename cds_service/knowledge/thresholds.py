"""Every clinical number the rules compare against (thresholds.json), each with its citation and source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from types import MappingProxyType
from typing import Any

from cds_service.domain.windows import ClinicalWindows


@dataclass(frozen=True)
class Threshold:
    value: float
    unit: str
    citation: str
    source: str

    def __str__(self) -> str:
        """How a card prints it: 6, 38.5, 3,200."""
        return f"{self.value:,g}"


@dataclass(frozen=True)
class Thresholds:
    """Every clinical number the rules compare against (thresholds.json), each with its source.

    One field per key: a key missing from the file, or one the file has and no field names, stops
    start-up (a TypeError naming it) instead of silently leaving a rule on a number nobody reviews.
    """

    imaging_early_weeks: Threshold
    acute_phase_weeks: Threshold
    chronic_phase_weeks: Threshold
    startback_screen_weeks: Threshold
    startback_low_max_total: Threshold
    startback_high_min_distress: Threshold
    startback_item9_positive_min: Threshold
    review_weeks: Threshold
    multidisciplinary_weeks: Threshold
    important_change_points: Threshold
    pain_score_min_span_weeks: Threshold
    inflammatory_chronic_weeks: Threshold
    inflammatory_onset_age: Threshold
    ibuprofen_max_daily_mg: Threshold
    fever_celsius: Threshold
    fever_days: Threshold
    long_term_steroid_days: Threshold
    steroid_lookback_days: Threshold
    new_episode_gap_days: Threshold
    adult_min_age: Threshold
    older_risk_age: Threshold
    measure_max_age: Threshold
    esr_raised_mm_h: Threshold
    crp_raised_mg_l: Threshold
    wbc_raised_10e9_l: Threshold
    osteoporosis_t_score: Threshold
    post_operative_days: Threshold
    nsaid_older_adult_age: Threshold
    lab_recent_days: Threshold
    medicine_recent_days: Threshold

    @cached_property
    def placeholders(self) -> Mapping[str, str]:
        """Placeholders for card text, {review_weeks} -> "12": built once, read for every card rendered."""
        return MappingProxyType({f.name: str(getattr(self, f.name)) for f in fields(self)})


def load_thresholds(raw: Mapping[str, Any]) -> Thresholds:
    try:
        return Thresholds(**{name: _threshold(item) for name, item in raw["thresholds"].items()})
    except TypeError as exc:  # a missing or unknown key: say which
        raise RuntimeError(f"thresholds.json does not fit the rules: {exc}") from exc


def _threshold(raw: Mapping[str, Any]) -> Threshold:
    return Threshold(float(raw["value"]), raw["unit"], raw["citation"], raw["source"])


def default_windows(limits: Thresholds) -> ClinicalWindows:
    """The tunable windows at their reviewed values (a site's settings start from these)."""
    return ClinicalWindows(limits.fever_days.value, limits.fever_celsius.value, limits.long_term_steroid_days.value)
