"""The STarT Back SMART app's service side (issue 31, item 1): the Questionnaire against LOINC's panel as the
shared terminology records it, the scoring endpoint against the tool's own definition (Hill 2008, as
../shared/README.md states it) on both sides of every cut-off, the Observations it hands back, its errors, the
pages, and the card's `smart` link. The Chromium test (test_smart_launch_browser.py) runs the whole launch."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaire import Questionnaire

from cds_service.fhir.startback_app import questionnaire
from cds_service.web.app import create_app

from .conftest import dev_settings, hook_request

CODES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "terminology" / "codes.csv"
LOINC = "http://loinc.org"
ITEMS = ["91340-0", "91341-8", "91342-6", "91343-4", "91344-2", "91345-9", "91346-7", "91347-5", "91348-3"]
BOTHER = ["Not at all", "Slightly", "Moderately", "Very much", "Extremely"]


def loinc_rows() -> dict[str, dict[str, str]]:
    with CODES.open(encoding="utf-8") as f:
        return {r["code"]: r for r in csv.DictReader(f) if r["category"] == "startback" and r["system"] == LOINC}


def choice_items() -> list[dict[str, Any]]:
    return [i for i in questionnaire()["item"] if i["type"] == "choice"]


def response(agree: list[bool], bother: str, **extra: Any) -> dict[str, Any]:
    """A QuestionnaireResponse as the app builds it: items 1-8 agree or disagree, item 9 in words."""
    items = []
    for question, choice in zip(choice_items(), [*("Agree" if a else "Disagree" for a in agree), bother], strict=True):
        option = copy.deepcopy(next(o for o in question["answerOption"] if o["valueCoding"]["display"] == choice))
        option = option["valueCoding"]
        items.append({"linkId": question["linkId"], "text": question["text"], "answer": [{"valueCoding": option}]})
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire()["url"],
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "authored": "2026-11-30T10:00:00+00:00",
        "item": items,
        **extra,
    }


def by_definition(agree: list[bool], bother: str) -> tuple[int, int, str]:
    """The tool's scoring in the words of its definition, written here independently of the service: items 1-8
    agree = 1; item 9 scores 1 only for 'very much' or 'extremely'; total 0-3 low risk; total >= 4 with the
    subscale (items 5-9) <= 3 medium; subscale >= 4 high."""
    points = [int(a) for a in agree] + [int(bother in ("Very much", "Extremely"))]
    total, distress = sum(points), sum(points[4:])
    risk = "low" if total <= 3 else ("high" if distress >= 4 else "medium")
    return total, distress, risk


@pytest.fixture(scope="module")
def client():
    return create_app(dev_settings()).test_client()


def test_the_questionnaire_is_loincs_panel_item_by_item():
    rows = loinc_rows()
    form = questionnaire()
    Questionnaire.model_validate(form)
    assert form["code"][0] == {"system": LOINC, "code": "91349-1", "display": rows["91349-1"]["display"]}
    assert [i["linkId"] for i in choice_items()] == ITEMS
    for item in choice_items():
        assert item["code"] == [{"system": LOINC, "code": item["linkId"], "display": rows[item["linkId"]]["display"]}]
        assert item["text"] == rows[item["linkId"]]["display"]
        assert rows[item["linkId"]]["status"] == "verified"
        assert item["required"] is True
    answers = [[o["valueCoding"]["display"] for o in i["answerOption"]] for i in choice_items()]
    assert answers == [["Agree", "Disagree"]] * 8 + [BOTHER]
    assert "Keele University" in form["copyright"]


def test_the_questionnaire_is_served_as_fhir_json(client):
    answer = client.get("/smart/startback/Questionnaire")
    assert answer.status_code == 200 and answer.mimetype == "application/fhir+json"
    assert answer.get_json() == questionnaire()


CASES = {
    # Both sides of each cut-off: total 3 | 4 (low | not low), distress 3 | 4 (medium | high), and item 9
    # "Moderately" (0) | "Very much" (1).
    "total-0": ([False] * 8, "Not at all"),
    "total-3-low": ([True] * 3 + [False] * 5, "Moderately"),
    "total-4-distress-0-medium": ([True] * 4 + [False] * 4, "Slightly"),
    "total-4-distress-3-medium": ([True, False, False, False, True, True, False, False], "Very much"),
    "total-5-distress-4-high": ([True, False, False, False, True, True, True, False], "Extremely"),
    "item9-moderately-not-counted": ([True, True, True, False, True, True, True, False], "Moderately"),
    "item9-very-much-counted": ([True, True, True, False, True, True, True, False], "Very much"),
    "all-9-high": ([True] * 8, "Extremely"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_score_is_the_tools_definition(client, case):
    agree, bother = CASES[case]
    answer = client.post("/smart/startback/score", json=response(agree, bother))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    total, distress, risk = by_definition(agree, bother)
    assert (body["total"], body["distress"], body["risk"]) == (total, distress, risk)
    assert body["nextStep"].startswith(f"STarT Back {risk} risk")
    assert "observations" not in body  # a draft the EHR's server does not hold yet: nothing to derive from


def test_each_risk_group_is_reached():
    assert {by_definition(*c)[2] for c in CASES.values()} == {"low", "medium", "high"}


def test_a_saved_response_gets_its_three_observations_derived_from_it(client):
    agree, bother = CASES["total-4-distress-3-medium"]
    saved = response(agree, bother, id="qr-1")
    observations = client.post("/smart/startback/score", json=saved).get_json()["observations"]
    for observation in observations:
        Observation.model_validate(observation)
        assert observation["derivedFrom"] == [{"reference": "QuestionnaireResponse/qr-1"}]
        assert observation["subject"] == {"reference": "Patient/p1"}
        assert observation["status"] == "final"
        assert observation["effectiveDateTime"] == "2026-11-30T10:00:00+00:00"
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    assert set(by_code) == {"91351-7", "91350-9", "91352-5"}  # total, distress subscore, risk level (LOINC)
    assert by_code["91351-7"]["valueInteger"] == 4
    assert by_code["91350-9"]["valueInteger"] == 3
    # Risk level answers LL3578-3: Medium LA8982-6 (codes.csv).
    assert by_code["91352-5"]["valueCodeableConcept"]["coding"][0] == {
        "system": LOINC,
        "code": "LA8982-6",
        "display": "Medium risk",
    }


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda r: r["item"].pop(), "item 9 (91348-3) needs exactly one answer"),
        (lambda r: r["item"][0].update(answer=[]), "item 1 (91340-0) needs exactly one answer"),
        (
            lambda r: r["item"][2]["answer"][0]["valueCoding"].update(code="maybe"),
            "item 3 (91342-6): the answer must be one of its options",
        ),
        (lambda r: r.update(status="in-progress"), "status must be completed"),
        (lambda r: r.update(questionnaire="http://example.org/other"), "questionnaire must be"),
        (lambda r: r["item"].append(dict(r["item"][0])), "item 91340-0 is given twice"),
        (lambda r: r.update(resourceType="Observation"), "must be a FHIR QuestionnaireResponse"),
    ],
    ids=["missing-item", "no-answer", "unknown-option", "in-progress", "other-questionnaire", "twice", "not-a-qr"],
)
def test_a_response_that_cannot_be_scored_is_a_400_saying_why(client, change, words):
    body = response([True] * 8, "Extremely")
    change(body)
    answer = client.post("/smart/startback/score", json=body)
    assert answer.status_code == 400
    outcome = answer.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert words in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize("subject", ["Patient/p1", ["Patient/p1"], {"reference": 7}, {"display": "no reference"}])
def test_a_saved_response_without_a_patient_reference_is_scored_with_no_observations(client, subject):
    body = response([True] * 8, "Extremely", id="qr-2")
    body["subject"] = subject
    answer = client.post("/smart/startback/score", json=body)
    assert answer.status_code == 200  # never a 500: the score stands, there is no patient to write for
    assert answer.get_json()["risk"] == "high" and "observations" not in answer.get_json()


def test_the_score_endpoint_takes_json_only(client):
    answer = client.post("/smart/startback/score", data="a=1", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 415
    assert client.post("/smart/startback/score", data="{", content_type="application/json").status_code == 400


def test_the_pages_run_only_their_own_scripts_and_name_the_client_and_scopes(client):
    for path in ("/smart/startback/launch", "/smart/startback/app"):
        page = client.get(path)
        assert page.status_code == 200 and page.mimetype == "text/html"
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        html = page.get_data(as_text=True)
        assert "<script>" not in html  # no inline script: every script is a file
        assert "fhir-client.pure.min.js" in html
    launch = client.get("/smart/startback/launch").get_data(as_text=True)
    assert 'data-client-id="lbp-startback"' in launch
    assert "patient/QuestionnaireResponse.c" in launch and "patient/Observation.c" in launch and "launch " in launch
    form = client.get("/smart/startback/app").get_data(as_text=True)
    assert form.count('<fieldset class="item"') == 9 and form.count("<legend>") == 9
    assert form.count('type="radio"') == 8 * 2 + 5
    own = create_app(dev_settings(smart_client_id="site-registered-id")).test_client()
    assert 'data-client-id="site-registered-id"' in own.get("/smart/startback/launch").get_data(as_text=True)


def test_the_vendored_smart_client_is_served():
    client = create_app(dev_settings()).test_client()
    script = client.get("/static/smart/vendor/fhir-client.pure.min.js")
    assert script.status_code == 200 and b"oauth2" in script.data


def _screen_card(settings) -> dict[str, Any]:
    body = hook_request("patient-view", "lbp-startback-due")
    cards = create_app(settings).test_client().post("/cds-services/lbp-patient-view", json=body).get_json()["cards"]
    return next(c for c in cards if c["source"]["topic"]["code"] == "LBPStarTBackScreen")


def test_the_screening_card_launches_the_app_as_a_smart_link_with_its_app_context():
    base = "https://cds.example.org"
    (link,) = _screen_card(dev_settings(public_base_url=base))["links"]
    # CDS Hooks 2.0 Link: label, url, type "smart", appContext a string.
    assert link["type"] == "smart"
    assert link["url"] == f"{base}/smart/startback/launch"
    assert isinstance(link["appContext"], str)
    context = json.loads(link["appContext"])
    assert context["hookInstance"] == hook_request("patient-view", "lbp-startback-due")["hookInstance"]
    assert isinstance(context["episodeStart"], str) and len(context["episodeStart"]) == 10
    assert "links" not in _screen_card(dev_settings())  # never built from the request's Host


def test_every_link_the_service_sends_has_the_specs_shape():
    """CDS Hooks 2.0 "Link": label (string, required), url (URL, required), type "absolute" or "smart"
    (required), appContext a string and only on a smart link; Card.links an array of them. Every golden scenario
    with the service's address known, so that every link it can send is sent."""
    from urllib.parse import urlparse

    from .conftest import scenarios

    client = create_app(dev_settings(public_base_url="https://cds.example.org")).test_client()
    types = set()
    for scenario in scenarios():
        body = hook_request(
            scenario["hook"],
            scenario["patient"],
            drafts=scenario.get("draft_orders"),
            selections=scenario.get("selections"),
        )
        service = {
            "patient-view": "lbp-patient-view",
            "order-select": "lbp-order-select",
            "order-sign": "lbp-order-sign",
        }
        for card in client.post(f"/cds-services/{service[scenario['hook']]}", json=body).get_json()["cards"]:
            if "links" not in card:
                continue
            assert isinstance(card["links"], list) and card["links"]
            for link in card["links"]:
                assert isinstance(link["label"], str) and link["label"]
                url = urlparse(link["url"])
                assert url.scheme == "https" and url.netloc == "cds.example.org"
                assert link["type"] in {"absolute", "smart"}
                types.add(link["type"])
                if link["type"] == "absolute":
                    assert "appContext" not in link
                else:
                    assert isinstance(link["appContext"], str)
    assert types == {"absolute", "smart"}  # the scenarios reach both kinds
