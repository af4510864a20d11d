"""What operators watch, in the Prometheus format at /metrics (prometheus-client, the project's own client).

Labels hold only bounded, non-identifying values: service ids from discovery, hook names, HTTP statuses, rule
ids and indicators from the knowledge, fixed failure kinds. Never a patient, a clinician, a token, a URL or
anything else a caller chose (an unknown service id is counted as "unknown").

Under gunicorn every worker writes its numbers to files in PROMETHEUS_MULTIPROC_DIR (web/gunicorn_conf.py
makes one per server start, before any worker imports this module) and /metrics adds them up; a single
process (the tests, `flask run`) keeps them in memory.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

HOOK_CALLS = Counter(
    "cds_hook_calls", "CDS Hooks calls answered, by service, hook and HTTP status", ["service", "hook", "status"]
)
# Buckets around the hook deadline: most calls take milliseconds, a slow FHIR server takes seconds.
HOOK_LATENCY = Histogram(
    "cds_hook_call_duration_seconds",
    "Time to answer a CDS Hooks call, by service",
    ["service"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
FEEDBACK = Counter("cds_feedback", "Feedback items stored, by service and outcome", ["service", "outcome"])
CARDS = Counter("cds_cards", "Cards returned, by rule and indicator", ["rule", "indicator"])
HELD_BACK = Counter("cds_cards_held_back", "Cards memory held back (an earlier answer), by rule", ["rule"])
FHIR_FETCHES = Counter(
    "cds_fhir_fetches",
    "Requests to EHR FHIR servers, by outcome: ok, timeout, unreachable, http_4xx, http_5xx, too_large, invalid",
    ["outcome"],
)
FHIR_BOUND_REACHED = Counter(
    "cds_fhir_bound_reached", "FHIR searches cut by the page or resource bound (the cards say what was not read)"
)
STORAGE_FAILURES = Counter("cds_storage_failures", "Storage operations that failed, by operation", ["operation"])
STORAGE_DEGRADED = Gauge(
    "cds_storage_degraded",
    "1 while a worker's card log or feedback store has failed in the last minute (advice still goes out)",
    multiprocess_mode="livemax",
)
REPLAY_FALLBACK = Gauge(
    "cds_replay_fallback",
    "1 while a worker cannot read the shared replay record and refuses replays on its own record only",
    multiprocess_mode="livemax",
)


def exposition() -> tuple[bytes, str]:
    """The metrics of every worker of this server (or of this process alone), and their content type."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
