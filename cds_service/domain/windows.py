"""The clinical windows a site may tune: one type, built from the settings (CDS_FEVER_LOOKBACK_DAYS,
CDS_FEVER_THRESHOLD_CELSIUS, CDS_LONG_TERM_STEROID_DAYS), whose defaults are the reviewed values of
knowledge/thresholds.json (fever_days, fever_celsius, long_term_steroid_days)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClinicalWindows:
    fever_days: float
    fever_celsius: float
    long_term_steroid_days: float
