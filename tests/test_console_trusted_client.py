"""With authentication on, the console's Try page calls the service as a trusted client of its own: behind
the console credential, the pipeline answers in process (an EHR's JWT is signed for one URL and one use, so a
page cannot reuse one), the FHIR server field is filled from the settings and the registry, and feedback is
stored under the console's own identity. Only JSON is accepted, so another site cannot post with the
browser's console credential."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from cds_service.console import CONSOLE_CALLER
from cds_service.storage.store import Store
from cds_service.web.app import create_app

from .conftest import FAKE_FHIR, TOKEN, hook_request
from .served import production_service
from .test_browser import chromium
from .test_console import SCREENSHOTS
from .test_identity import ONLY_A
from .test_trust import auth_settings

CONSOLE_TOKEN = "console-admin-7e2d"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"reviewer:{CONSOLE_TOKEN}".encode()).decode()}


@pytest.fixture
def secured_console(tmp_path):
    ehrs = [{**ONLY_A[0], "fhir_servers": [FAKE_FHIR]}]
    settings = auth_settings(
        tmp_path,
        ehrs,
        console_enabled=True,
        console_token=CONSOLE_TOKEN,
        database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}",
    )
    return create_app(settings)


def test_behind_its_credential_the_console_gets_cards_and_stores_feedback_as_its_own_caller(secured_console):
    client = secured_console.test_client()
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    answered = client.post("/console/call/lbp-order-sign", json=body, headers=BASIC)
    assert answered.status_code == 200, answered.get_json()
    (card,) = answered.get_json()["cards"]
    assert card["indicator"] == "warning"
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:00:00Z"}
    stored = client.post("/console/feedback/lbp-order-sign", json={"feedback": [item]}, headers=BASIC)
    assert stored.get_json() == {"stored": 1}  # the card is known: it was logged under the console's identity
    store = secured_console.extensions["cds"].store
    assert store.overrides_since(CONSOLE_CALLER, "lbp-acute", datetime(2026, 1, 1, tzinfo=UTC)) == set()
    # The EHR endpoint still wants an EHR's JWT: the console credential opens the console only.
    assert client.post("/cds-services/lbp-order-sign", json=body, headers=BASIC).status_code == 401


def test_the_console_endpoints_need_the_credential_and_json(secured_console):
    client = secured_console.test_client()
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    assert client.post("/console/call/lbp-order-sign", json=body).status_code == 401
    as_form = client.post(
        "/console/call/lbp-order-sign", data=json.dumps(body), content_type="text/plain", headers=BASIC
    )
    assert as_form.status_code == 415  # a cross-site form cannot send JSON without a preflight
    assert client.post("/console/call/no-such", json=body, headers=BASIC).status_code == 404
    bad = client.post("/console/call/lbp-order-sign", json={"hook": "order-sign"}, headers=BASIC)
    assert bad.status_code == 400 and "hookInstance is required" in bad.get_json()["issue"][0]["diagnostics"]


def test_the_page_names_the_registered_fhir_server_with_authentication_on(secured_console):
    page = secured_console.test_client().get("/console", headers=BASIC).get_data(as_text=True)
    config = json.loads(re.search(r'<script type="application/json" id="console-config">(.*?)</script>', page, re.S)[1])
    assert config["fhirServer"] == FAKE_FHIR and config["authRequired"] is True
    assert {s["id"] for s in config["discovery"]["services"]} == {
        "lbp-patient-view",
        "lbp-order-select",
        "lbp-order-sign",
    }


@pytest.fixture(scope="module")
def secured_service(local_fhir, tmp_path_factory) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("secured-console")
    registry = folder / "trusted-ehrs.json"
    registry.write_text(json.dumps({"ehrs": [{**ONLY_A[0], "fhir_servers": [local_fhir.base_url]}]}))
    database = f"sqlite:///{folder / 'cds.sqlite3'}"
    settings = {
        "CDS_AUTH_REQUIRED": "true",
        "CDS_TRUSTED_EHRS_FILE": str(registry),
        "CDS_PUBLIC_BASE_URL": "https://cds.example.org",
        "CDS_REPLAY_DB": str(folder / "jti.sqlite3"),
        "CDS_ALLOW_INSECURE_FHIR_HTTP": "true",
        "CDS_CONSOLE_ENABLED": "true",
        "CDS_CONSOLE_TOKEN": CONSOLE_TOKEN,
        "CDS_DATABASE_URL": database,
    }
    with production_service(folder, settings) as base:
        yield base, database


@pytest.mark.integration
def test_in_chromium_try_a_hook_with_authentication_on_gets_cards_and_stores_feedback(secured_service, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    base, database = secured_service
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            context = browser.new_context(
                viewport={"width": 1200, "height": 1000},
                http_credentials={"username": "reviewer", "password": CONSOLE_TOKEN},
            )
            page = context.new_page()
            page.goto(f"{base}/console")
            assert page.input_value("#fhir-server").endswith("/fhir")  # filled from the registry
            page.fill("#fhir-token", TOKEN)
            page.fill("#patient", "lbp-acute")
            page.select_option("#hook", "order-sign")
            page.select_option("#drafts", ["lumbar-mri"])
            page.click("#call")
            expect(page.locator("#status")).to_have_text(re.compile("answered|Error"), timeout=30_000)
            assert re.match(r"lbp-order-sign answered with 1 card", page.inner_text("#status")), page.inner_text(
                "#status"
            )
            card = page.locator("article.card")
            card.locator("select.override-reason").select_option("planning-intervention")
            card.locator("button.dismiss").click()
            expect(page.locator("#feedback-status")).to_have_text(
                "Feedback (overridden): HTTP 200, stored 1", timeout=15_000
            )
            page.screenshot(path=str(SCREENSHOTS / "06-try-with-authentication-on.png"), full_page=True)
        finally:
            browser.close()
    now = datetime.now(UTC)
    report = Store(database).report(now - timedelta(hours=1), now + timedelta(hours=1))
    assert report["lbp-imaging-no-red-flag"]["override_reasons"] == {"planning-intervention": 1}
