"""/metrics (issue 33, item 4): the Prometheus text format, counted as operators need it (hook calls by service,
hook and status, latency, cards by rule and indicator, cards held back, feedback, FHIR fetches by outcome,
storage failures and the degraded and replay-fallback gauges), summed over gunicorn's workers, and never a
patient, clinician or token value in a label."""

from __future__ import annotations

import re

import requests
import responses
from prometheus_client.parser import text_string_to_metric_families

from cds_service.web.app import create_app

from .conftest import FAKE_FHIR, TOKEN, dev_settings, hook_request
from .served import production_service

SIGN = "/cds-services/lbp-order-sign"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _read(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    return _samples(response.get_data(as_text=True))


def test_a_hook_call_its_cards_and_its_feedback_are_counted(tmp_path):
    client = create_app(dev_settings(database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}")).test_client()
    before = _read(client)
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    (card,) = client.post(SIGN, json=body).get_json()["cards"]
    assert client.post("/cds-services/no-such-service", json=body).status_code == 404
    assert client.post(SIGN, json={"hook": "order-sign"}).status_code == 400
    answer = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:05:31Z"}
    assert client.post(f"{SIGN}/feedback", json={"feedback": [answer]}).status_code == 200
    after = _read(client)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("cds_hook_calls_total", service="lbp-order-sign", hook="order-sign", status="200") == 1
    assert grew("cds_hook_calls_total", service="lbp-order-sign", hook="order-sign", status="400") == 1
    assert grew("cds_hook_calls_total", service="unknown", hook="unknown", status="404") == 1  # no caller's words
    assert grew("cds_hook_call_duration_seconds_count", service="lbp-order-sign") == 2
    assert grew("cds_cards_total", rule="lbp-imaging-no-red-flag", indicator="warning") == 1
    assert grew("cds_feedback_total", service="lbp-order-sign", outcome="overridden") == 1


def test_memory_holding_a_card_back_is_counted(tmp_path):
    client = create_app(dev_settings(database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}")).test_client()
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    body["context"]["encounterId"] = "enc-metrics"
    (card,) = client.post(SIGN, json=body).get_json()["cards"]
    reason = next(r for r in card["overrideReasons"] if r["code"] == "red-flag-undocumented")
    answer = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:05:31Z"}
    client.post(f"{SIGN}/feedback", json={"feedback": [{**answer, "overrideReason": {"reason": reason}}]})
    before = _read(client)
    assert client.post(SIGN, json=body).get_json()["cards"] == []  # held back
    after = _read(client)
    rule = "lbp-imaging-no-red-flag"
    assert (
        _value(after, "cds_cards_held_back_total", rule=rule) - _value(before, "cds_cards_held_back_total", rule=rule)
        == 1
    )


@responses.activate
def test_fhir_fetches_are_counted_by_outcome():
    from cds_service.devtools.fixture_search import path_and_query, search

    from .conftest import patient_resources

    pool = patient_resources("lbp-acute")

    def answer(request):
        path = path_and_query(request.url, FAKE_FHIR)
        if path.startswith("Observation"):
            return 503, {}, "{}"
        if path.startswith("Procedure"):
            return 404, {}, "{}"
        return 200, {"Content-Type": "application/fhir+json"}, __import__("json").dumps(search(pool, path))

    responses.add_callback(responses.GET, re.compile(re.escape(FAKE_FHIR) + r"/.*"), callback=answer)
    client = create_app(dev_settings(fhir_retries=0)).test_client()
    before = _read(client)
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri", prefetch="none", fhir_server=FAKE_FHIR)
    assert client.post(SIGN, json=body).status_code == 200
    after = _read(client)
    grew = {
        o: _value(after, "cds_fhir_fetches_total", outcome=o) - _value(before, "cds_fhir_fetches_total", outcome=o)
        for o in ("ok", "http_4xx", "http_5xx")
    }
    assert grew["http_5xx"] == 1 and grew["http_4xx"] == 1
    assert grew["ok"] == len(responses.calls) - 2


def test_a_storage_failure_sets_the_degraded_gauge_and_counts_the_operation(tmp_path):
    app = create_app(dev_settings(database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}"))
    client = app.test_client()
    before = _read(client)
    app.extensions["cds"].store.failed("card log", OSError("disk full"))
    after = _read(client)
    assert _value(after, "cds_storage_degraded") == 1
    failures = "cds_storage_failures_total"
    assert _value(after, failures, operation="card log") - _value(before, failures, operation="card log") == 1


def test_no_patient_clinician_or_token_value_appears_in_the_metrics(tmp_path):
    client = create_app(dev_settings(database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}")).test_client()
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    body["context"]["userId"] = "Practitioner/dr-metrics-secret"
    client.post(SIGN, json=body)
    client.post("/cds-services/Patient-lbp-acute", json=body)
    text = client.get("/metrics").get_data(as_text=True)
    for value in ("lbp-acute", "dr-metrics-secret", TOKEN, "Patient-lbp-acute", "draft-lumbar-mri"):
        assert value not in text


def _hook_calls_in(path) -> float:
    """The hook calls one worker's counter file holds (prometheus-client's own reader of its files)."""
    from prometheus_client.mmap_dict import MmapedDict

    return sum(
        value
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path))
        if '"cds_hook_calls_total"' in key
    )


def test_under_the_production_server_the_counts_of_every_worker_add_up(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"left by an earlier server")  # emptied at the start
    settings = {
        "CDS_AUTH_REQUIRED": "false",
        "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'cds.sqlite3'}",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    calls, writers = 0, set()
    with production_service(tmp_path, settings) as base:
        # New connections until both workers have answered a call (each counts in a file of its own).
        while len(writers) < 2 and calls < 200:
            assert requests.post(f"{base}{SIGN}", json=body, timeout=30).status_code == 200
            calls += 1
            writers = {p.name for p in folder.glob("counter_*.db") if _hook_calls_in(p) > 0}
        text = requests.get(f"{base}/metrics", timeout=30).text
    assert len(writers) == 2 and not (folder / "counter_999999.db").exists()
    samples = _samples(text)
    assert _value(samples, "cds_hook_calls_total", service="lbp-order-sign", hook="order-sign", status="200") == calls
    assert _value(samples, "cds_cards_total", rule="lbp-imaging-no-red-flag", indicator="warning") == calls
