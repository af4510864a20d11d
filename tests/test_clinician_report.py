"""Report cards per clinician (issue 30, item 4): for each clinician (context.userId), the lumbar imaging orders
the order hooks saw, how many had no red flag on the record, how many were cancelled or replaced after the
imaging card, and the override reasons given, beside the median of their peers. Each order counts once per
clinician however many hook calls saw it; no patient appears in the report."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from cds_service.web.app import create_app
from cds_service.web.cli import main

from .conftest import dev_settings, hook_request

A, B = "Practitioner/dr-a", "Practitioner/dr-b"
SIGN = "/cds-services/lbp-order-sign"


@pytest.fixture
def app(database_url):
    return create_app(dev_settings(database_url=database_url))


def _sign(client, clinician: str, patient: str, encounter: str) -> list[dict]:
    body = hook_request("order-sign", patient, drafts="lumbar-mri")
    body["context"] |= {"userId": clinician, "encounterId": encounter}
    response = client.post(SIGN, json=body)
    assert response.status_code == 200
    return response.get_json()["cards"]


def _answer(client, item: dict) -> None:
    item = {"outcomeTimestamp": datetime.now(UTC).isoformat(), **item}
    assert client.post(f"{SIGN}/feedback", json={"feedback": [item]}).status_code == 200


def test_each_clinician_sees_their_imaging_orders_against_the_median_of_their_peers(app, monkeypatch, capsys):
    client = app.test_client()
    (first,) = _sign(client, A, "lbp-acute", "enc-a1")
    _sign(client, A, "lbp-acute", "enc-a1")  # the same order seen again (order-sign retried): one order
    _sign(client, A, "lbp-ten-weeks", "enc-a2")
    cancel = next(s for s in first["suggestions"] if s["actions"][0]["type"] == "delete")
    _answer(client, {"card": first["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": cancel["uuid"]}]})

    (red_flag,) = _sign(client, B, "lbp-cauda-equina", "enc-b1")
    assert red_flag["indicator"] == "critical"
    (imaging,) = _sign(client, B, "lbp-acute", "enc-b2")
    reason = next(r for r in imaging["overrideReasons"] if r["code"] == "planning-intervention")
    _answer(client, {"card": imaging["uuid"], "outcome": "overridden", "overrideReason": {"reason": reason}})

    now = datetime.now(UTC)
    report = app.extensions["cds"].store.clinician_report(now - timedelta(hours=1), now + timedelta(hours=1))
    weekly = {user: row.pop("weekly") for user, row in report["clinicians"].items()}
    assert [sum(w["imaging_orders"] for w in weekly[user]) for user in (A, B)] == [2, 2]
    assert report["clinicians"] == {
        A: {
            "imaging_orders": 2,
            "without_red_flag": 2,
            "without_red_flag_share": 1.0,
            "cancelled_or_replaced": 1,
            "override_reasons": {},
        },
        B: {
            "imaging_orders": 2,
            "without_red_flag": 1,
            "without_red_flag_share": 0.5,
            "cancelled_or_replaced": 0,
            "override_reasons": {"planning-intervention": 1},
        },
    }
    assert report["peer_median_without_red_flag_share"] == 0.75
    assert "lbp-" not in json.dumps(report["clinicians"])  # no patient id in the report

    monkeypatch.setenv("CDS_DATABASE_URL", app.extensions["cds"].store.url)
    assert main(["report", "--by", "clinician", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["clinicians"][B]["without_red_flag"] == 1
    assert main(["report", "--by", "clinician", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["clinician"], r["imaging_orders"], r["cancelled_or_replaced"]) for r in rows] == [
        (A, "2", "1"),
        (B, "2", "0"),
    ]
    assert rows[1]["override_reasons"] == "planning-intervention=1"
    assert main(["report", "--by", "clinician"]) == 0
    text = capsys.readouterr().out
    assert f"{B}: 2 imaging orders, 1 without a red flag (50%; peers' median 75%)" in text


def test_patient_view_and_other_orders_are_not_imaging_orders(app):
    client = app.test_client()
    assert (
        client.post("/cds-services/lbp-patient-view", json=hook_request("patient-view", "lbp-acute")).status_code == 200
    )
    body = hook_request("order-sign", "lbp-acute", drafts="bed-rest-text")
    assert client.post(SIGN, json=body).status_code == 200
    now = datetime.now(UTC)
    report = app.extensions["cds"].store.clinician_report(now - timedelta(hours=1), now + timedelta(hours=1))
    assert report == {"clinicians": {}, "peer_median_without_red_flag_share": None}


def test_old_imaging_order_rows_go_with_retention(app):
    client = app.test_client()
    _sign(client, A, "lbp-acute", "enc-a1")
    store = app.extensions["cds"].store
    store.purge(datetime.now(UTC) + timedelta(days=1))
    now = datetime.now(UTC)
    assert store.clinician_report(now - timedelta(days=2), now + timedelta(days=2))["clinicians"] == {}


def test_the_console_answers_page_shows_the_clinician_report(tmp_path):
    import base64

    app = create_app(
        dev_settings(database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}", console_enabled=True, console_token="c-1")
    )
    client = app.test_client()
    _sign(client, A, "lbp-acute", "enc-a1")
    _sign(client, B, "lbp-cauda-equina", "enc-b1")
    today = datetime.now(UTC).date()
    page = client.get(
        f"/console/answers?from={today - timedelta(days=1)}&to={today}",
        headers={"Authorization": "Basic " + base64.b64encode(b"reviewer:c-1").decode()},
    ).get_data(as_text=True)

    def cells(clinician: str) -> dict[str, str]:
        row = re.search(rf'<tr data-clinician="{clinician}"><th scope="row">{clinician}</th>(.*?)</tr>', page)
        assert row, page
        return dict(re.findall(r'<td data-column="(\w+)">([^<]*)</td>', row.group(1)))

    assert cells(A) == {"imaging_orders": "1", "without_red_flag": "1", "share": "100%", "cancelled_or_replaced": "0"}
    assert cells(B) == {"imaging_orders": "1", "without_red_flag": "0", "share": "0%", "cancelled_or_replaced": "0"}
    assert "against the median of their peers\n(50%" in page


def test_each_clinicians_weekly_trend_lists_every_week_of_the_period_with_its_orders(database_url, monkeypatch, capsys):
    wednesday = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    wednesday -= timedelta(days=wednesday.weekday() - 2)  # mid-week: an hour either side stays in the week
    moment = [wednesday]
    app = create_app(dev_settings(database_url=database_url), clock=lambda: moment[0])
    client = app.test_client()
    _sign(client, A, "lbp-acute", "enc-1")  # week 1: one order, no red flag
    moment[0] = wednesday + timedelta(days=14)  # week 2: none
    _sign(client, A, "lbp-ten-weeks", "enc-2")  # week 3: two orders, one with a red flag
    _sign(client, A, "lbp-cauda-equina", "enc-3")

    report = app.extensions["cds"].store.clinician_report(
        wednesday - timedelta(hours=1), moment[0] + timedelta(hours=1)
    )
    weekly = report["clinicians"][A]["weekly"]
    monday = (wednesday - timedelta(days=2)).date()
    assert [w["week"] for w in weekly] == [(monday + timedelta(days=7 * i)).isoformat() for i in range(3)]
    assert [w["imaging_orders"] for w in weekly] == [1, 0, 2]
    assert [w["without_red_flag"] for w in weekly] == [1, 0, 1]

    monkeypatch.setenv("CDS_DATABASE_URL", app.extensions["cds"].store.url)
    since, until = monday.isoformat(), (monday + timedelta(days=20)).isoformat()
    assert main(["report", "--by", "clinician", "--since", since, "--until", until, "--format", "csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["weekly"].split(";") == [f"{w['week']}={w['imaging_orders']}/{w['without_red_flag']}" for w in weekly]
