"""The STarT Back SMART app end to end in a real browser (issue 31, items 1 and 4): Debian's Chromium, driven
by Playwright, opens a test page that behaves like the public CDS Hooks sandbox
(tests/browser/sandbox_smart_launch.html). It gets the STarT Back screening card from the service (the
production command), asks the local FHIR server for a launch context as the sandbox does, and opens the card's
`smart` link. The app then runs the SMART App Launch 2.0 EHR launch against the local FHIR server's
development authorization server (discovery, authorization code with PKCE, the token with the patient and the
card's appContext), shows the nine items, and writes the QuestionnaireResponse and its three Observations with
that token; the FHIR server requires a token, so nothing is written without the launch. The next patient-view
call must give the risk card for the answers given: low, medium and high once each.
Screenshots: build/browser-screenshots/smart-*.png."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service.devtools.fixtures import load_bundle
from cds_service.devtools.local_fhir import LocalFhirServer

from .conftest import FIXTURES, hook_request
from .postgres import reserved_ports
from .served import debian_browser, production_service, serve_test_page

pytestmark = pytest.mark.integration

PAGE_DIR = Path(__file__).parent / "browser"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "browser-screenshots"
EHR_TOKEN = "sandbox-ehr-token-81f3"
CLIENT_ID = "lbp-startback"

# Answers for items 1-8 (agree?) and item 9, and the risk group the tool's definition gives them.
ANSWERS = {
    "low": ([True, True, False, False, False, False, False, False], "Slightly"),  # total 2
    "medium": ([True, True, True, True, True, False, False, False], "Moderately"),  # total 5, distress 1
    "high": ([False, True, False, False, True, True, True, True], "Extremely"),  # total 6, distress 5
}
RISK_SUMMARY = {"low": "STarT Back low risk", "medium": "STarT Back medium risk", "high": "STarT Back high risk"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[tuple[str, LocalFhirServer]]:
    problem = LocalFhirServer.available()
    if problem:
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp("smart-launch")
    with reserved_ports(1) as (port,):  # the FHIR server, on port 0, must not be given the service's port
        base = f"http://127.0.0.1:{port}"
        fhir = LocalFhirServer(token=EHR_TOKEN, smart_clients={CLIENT_ID: [f"{base}/smart/startback/app"]})
        fhir.start()
    try:
        # One copy of the screening-due patient per risk group, so each launch starts from no result.
        text = json.dumps(load_bundle(FIXTURES / "lbp-startback-due.json"))
        for risk in ANSWERS:
            bundle = json.loads(text.replace("lbp-startback-due", f"smart-{risk}"))
            loaded = requests.post(
                fhir.base_url, json=bundle, headers={"Authorization": f"Bearer {EHR_TOKEN}"}, timeout=30
            )
            assert loaded.status_code < 300, loaded.text
        settings = {
            "CDS_AUTH_REQUIRED": "false",
            "CDS_PUBLIC_BASE_URL": base,
            "CDS_ALLOWED_FHIR_SERVERS": fhir.base_url,
            "CDS_ALLOW_INSECURE_FHIR_HTTP": "true",
            "CDS_DATABASE_URL": f"sqlite:///{folder / 'cds.sqlite3'}",
        }
        with production_service(folder, settings, port) as service:
            yield service, fhir
    finally:
        fhir.stop()


@pytest.fixture(scope="module")
def test_page(servers) -> Iterator[str]:
    service, fhir = servers
    config = {
        "hookUrl": f"{service}/cds-services/lbp-patient-view",
        "fhirServer": fhir.base_url,
        "fhirToken": EHR_TOKEN,
    }

    with serve_test_page(PAGE_DIR, config) as base_url:
        yield f"{base_url}/sandbox_smart_launch.html"


def _cards(service: str, fhir: LocalFhirServer, patient: str) -> list[dict[str, Any]]:
    body = hook_request("patient-view", patient, prefetch="none", fhir_server=fhir.base_url, token=EHR_TOKEN)
    answer = requests.post(f"{service}/cds-services/lbp-patient-view", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    cards: list[dict[str, Any]] = answer.json()["cards"]
    return cards


def _search(fhir: LocalFhirServer, query: str) -> list[dict[str, Any]]:
    bundle = requests.get(f"{fhir.base_url}/{query}", headers={"Authorization": f"Bearer {EHR_TOKEN}"}, timeout=10)
    return [e["resource"] for e in bundle.json().get("entry", [])]


@pytest.mark.parametrize("risk", list(ANSWERS))
def test_the_card_launches_the_app_and_the_next_call_gives_the_risk_card(servers, test_page, risk):
    from playwright.sync_api import expect, sync_playwright

    service, fhir = servers
    patient = f"smart-{risk}"
    before = [c["source"]["topic"]["code"] for c in _cards(service, fhir, patient)]
    assert "LBPStarTBackScreen" in before and "LBPStarTBackRisk" not in before
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    agree, bother = ANSWERS[risk]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=debian_browser("chromium", "chromium"), args=["--no-sandbox"]
        )
        try:
            context = browser.new_context(viewport={"width": 900, "height": 1300})
            page = context.new_page()
            errors: list[str] = []
            context.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(f"{test_page}?patient={patient}")
            page.wait_for_function(
                "/^(cards|error)/.test(document.getElementById('status').textContent)", timeout=30_000
            )
            assert page.inner_text("#status").startswith("cards"), (page.inner_text("#status"), errors)
            screen = page.locator("section.card", has_text="STarT Back")
            with page.expect_popup() as popup:
                screen.locator("button.link.smart").click()
            app = popup.value
            app.wait_for_selector("#startback:not([hidden])", timeout=30_000)
            assert app.inner_text("#patient-banner") != "Connecting to the EHR…"
            # The card's appContext reached the app through the token response.
            assert app.inner_text("#episode").startswith("Back pain since ")
            fieldsets = app.locator("fieldset.item")
            assert fieldsets.count() == 9
            for index, choice in enumerate([*("Agree" if a else "Disagree" for a in agree), bother]):
                fieldsets.nth(index).get_by_label(choice, exact=True).check()
            if risk == "medium":
                app.screenshot(path=str(SCREENSHOTS / "smart-1-questionnaire.png"), full_page=True)
            app.get_by_role("button", name="Score and save to the record").click()
            # The app's own policy forbids evaluated scripts: wait on the element, not with a page function.
            expect(app.locator("#status")).to_have_text(re.compile("^(Saved|Not saved)"), timeout=30_000)
            assert app.inner_text("#status") == "Saved to the record.", (app.inner_text("#status"), errors)
            assert app.inner_text("#risk") == f"{risk.capitalize()} risk"
            saved_references = (app.get_attribute("#saved", "data-references") or "").split()
            app.screenshot(path=str(SCREENSHOTS / f"smart-2-result-{risk}.png"), full_page=True)
        finally:
            browser.close()

    # Written with the app's token: the response and its three Observations, derived from it.
    (response,) = _search(fhir, f"QuestionnaireResponse?subject=Patient/{patient}")
    assert saved_references[0] == f"QuestionnaireResponse/{response['id']}" and len(saved_references) == 4
    observations = _search(fhir, f"Observation?subject=Patient/{patient}&code=http://loinc.org|91352-5")
    assert [o["derivedFrom"] for o in observations] == [[{"reference": f"QuestionnaireResponse/{response['id']}"}]]
    write_log = [r for r in fhir.requests if r.get("method") == "POST" and r.get("path", "").endswith("/Observation")]
    assert write_log and all(r["status"] == 201 for r in write_log)

    after = _cards(service, fhir, patient)
    (risk_card,) = [c for c in after if c["source"]["topic"]["code"] == "LBPStarTBackRisk"]
    assert risk_card["summary"].startswith(RISK_SUMMARY[risk])
    assert "LBPStarTBackScreen" not in [c["source"]["topic"]["code"] for c in after]


def test_on_an_open_test_server_the_app_runs_from_fhir_service_url_and_patient_id(servers):
    """The open-server mode (no authorization server: `fhirServiceUrl` + `patientId` on the launch URL), as
    for the public test servers the CDS Hooks sandbox offers."""
    from playwright.sync_api import expect, sync_playwright

    service, _ = servers
    open_fhir = LocalFhirServer()  # no token, no SMART: anyone may read and write
    open_fhir.start()
    try:
        bundle = json.loads(
            json.dumps(load_bundle(FIXTURES / "lbp-startback-due.json")).replace("lbp-startback-due", "smart-open")
        )
        assert requests.post(open_fhir.base_url, json=bundle, timeout=30).status_code < 300
        agree, bother = ANSWERS["medium"]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=debian_browser("chromium", "chromium"), args=["--no-sandbox"]
            )
            try:
                app = browser.new_page()
                app.goto(f"{service}/smart/startback/launch?fhirServiceUrl={open_fhir.base_url}&patientId=smart-open")
                app.wait_for_selector("#startback:not([hidden])", timeout=30_000)
                assert app.inner_text("#episode") == ""  # no card launched it: no appContext
                fieldsets = app.locator("fieldset.item")
                for index, choice in enumerate([*("Agree" if a else "Disagree" for a in agree), bother]):
                    fieldsets.nth(index).get_by_label(choice, exact=True).check()
                app.get_by_role("button", name="Score and save to the record").click()
                expect(app.locator("#status")).to_have_text("Saved to the record.", timeout=30_000)
            finally:
                browser.close()
        found = requests.get(
            f"{open_fhir.base_url}/Observation?subject=Patient/smart-open&code=http://loinc.org|91352-5", timeout=10
        )
        (risk,) = [e["resource"] for e in found.json()["entry"]]
        assert risk["valueCodeableConcept"]["coding"][0]["code"] == "LA8982-6"  # medium
    finally:
        open_fhir.stop()


def test_the_launch_page_says_what_it_needs_when_opened_without_a_launch(servers):
    from playwright.sync_api import expect, sync_playwright

    service, _ = servers
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=debian_browser("chromium", "chromium"), args=["--no-sandbox"]
        )
        try:
            page = browser.new_page()
            page.goto(f"{service}/smart/startback/launch")
            expect(page.locator("#status")).to_contain_text("opened by the EHR (with iss and launch)")
        finally:
            browser.close()
