"""The browser console (/console): off by default (404), behind its admin credential when on (401), and in
a real browser (Debian's Chromium driven by Playwright) against the production command and the real local
FHIR server: try a hook for the imaging and the bed-rest card, an override with a reason and an accepted
suggestion reaching the feedback store, the gallery listing every golden scenario with exactly its cards, the
answers charts showing the numbers the JSON report holds. Screenshots go to build/console-screenshots/."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from cds_service.cards.render import rule_names
from cds_service.console.answers import LABELS
from cds_service.knowledge.model import knowledge
from cds_service.storage.store import Store
from cds_service.web.app import create_app

from .conftest import TOKEN, dev_settings, hook_request, scenarios
from .served import production_service
from .test_browser import SCREENSHOTS as _BROWSER_SCREENSHOTS
from .test_browser import chromium

SCREENSHOTS = _BROWSER_SCREENSHOTS.parent / "console-screenshots"
CONSOLE_TOKEN = "console-admin-4f1b9c"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"reviewer:{CONSOLE_TOKEN}".encode()).decode()}


# --- access ---------------------------------------------------------------------------------------------------


def test_the_console_is_off_by_default_and_then_404():
    client = create_app(dev_settings()).test_client()
    for path in ("/console", "/console/gallery", "/console/answers", "/console/static/console.js"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_with_authentication_on_the_console_cannot_start_without_its_token(tmp_path):
    from .test_trust import auth_settings

    with pytest.raises(RuntimeError, match="CDS_CONSOLE_TOKEN"):
        create_app(auth_settings(tmp_path, [], console_enabled=True))


@pytest.fixture
def console_client():
    return create_app(dev_settings(console_enabled=True, console_token=CONSOLE_TOKEN)).test_client()


@pytest.mark.parametrize("path", ["/console", "/console/gallery", "/console/answers", "/console/static/console.js"])
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(b"reviewer:wrong").decode(),
        "Bearer wrong",
        "Basic not-base64!",
        f"Token {CONSOLE_TOKEN}",
    ],
)
def test_enabled_without_the_credential_is_401_with_a_basic_challenge(console_client, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = console_client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert response.get_json()["issue"][0]["code"] == "login"


@pytest.mark.parametrize(
    "authorization",
    ["Basic " + base64.b64encode(f"any-name:{CONSOLE_TOKEN}".encode()).decode(), f"bearer {CONSOLE_TOKEN}"],
)
def test_the_console_token_opens_it_as_basic_password_or_bearer(console_client, authorization):
    response = console_client.get("/console", headers={"Authorization": authorization})
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_hook_endpoints_do_not_take_the_console_token_as_an_ehr_credential(tmp_path):
    from .test_trust import auth_settings

    client = create_app(auth_settings(tmp_path, [], console_enabled=True, console_token=CONSOLE_TOKEN)).test_client()
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {CONSOLE_TOKEN}"}).status_code == 401


# --- gallery and answers, in process --------------------------------------------------------------------------


class _Gallery(HTMLParser):
    """Scenario titles, and the rule of every card under each, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.scenarios: list[tuple[str, list[str]]] = []
        self._title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "h2" and (attributes.get("id") or "").startswith("scenario-"):
            self._title = True
            self.scenarios.append(("", []))
        if tag == "article" and attributes.get("data-rule"):
            self.scenarios[-1][1].append(attributes["data-rule"] or "")

    def handle_data(self, data: str) -> None:
        if self._title:
            name, rules = self.scenarios[-1]
            self.scenarios[-1] = (name + data, rules)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._title = False


def test_the_gallery_shows_every_golden_scenario_with_exactly_its_expected_cards(console_client):
    page = _Gallery()
    page.feed(console_client.get("/console/gallery", headers=BASIC).get_data(as_text=True))
    expected = [(s["name"], sorted(e["rule"] for e in s["expect"])) for s in scenarios()]
    assert [(name, sorted(rules)) for name, rules in page.scenarios] == expected


def test_the_gallery_writes_nothing_to_the_card_log(console_client):
    console_client.get("/console/gallery", headers=BASIC)
    store = console_client.application.extensions["cds"].store
    now = datetime.now(UTC)
    assert store.report(now - timedelta(days=1), now + timedelta(days=1)) == {}


def test_a_date_range_that_is_not_one_is_a_400(console_client):
    for query in ("from=2026-13-01", "from=2026-05-02&to=2026-05-01", "from=2010-01-01&to=2026-01-01"):
        response = console_client.get(f"/console/answers?{query}", headers=BASIC)
        assert response.status_code == 400, query
        assert "date range" in response.get_json()["issue"][0]["diagnostics"]


# --- in a real browser ----------------------------------------------------------------------------------------


@contextmanager
def running_console(folder: Path, fhir_server: str, token: str | None) -> Iterator[tuple[str, str]]:
    """The production command with the console on (behind `token`, or open when None), authentication off,
    reading the given FHIR server; yields its base URL and database URL."""
    database = f"sqlite:///{folder / 'cds.sqlite3'}"
    settings = {
        "CDS_AUTH_REQUIRED": "false",
        "CDS_CONSOLE_ENABLED": "true",
        "CDS_ALLOW_INSECURE_FHIR_HTTP": "true",
        "CDS_ALLOWED_FHIR_SERVERS": fhir_server,
        "CDS_DATABASE_URL": database,
        **({"CDS_CONSOLE_TOKEN": token} if token else {}),
    }
    with production_service(folder, settings) as base:
        yield base, database


@pytest.fixture(scope="module")
def console_service(local_fhir, tmp_path_factory) -> Iterator[tuple[str, str]]:
    with running_console(tmp_path_factory.mktemp("console-service"), local_fhir.base_url, CONSOLE_TOKEN) as served:
        yield served


@pytest.fixture(scope="module")
def browser_page(console_service) -> Iterator:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        context = browser.new_context(
            viewport={"width": 1200, "height": 1000},
            http_credentials={"username": "reviewer", "password": CONSOLE_TOKEN},
        )
        page = context.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            browser.close()


def _call(page, base: str, *, patient: str, hook: str, drafts: list[str]) -> None:
    page.goto(f"{base}/console")
    page.fill("#fhir-token", TOKEN)
    page.fill("#patient", patient)
    page.select_option("#hook", hook)
    page.select_option("#drafts", drafts)
    page.click("#call")
    # Locator waits, not wait_for_function: the console's CSP (no eval) applies to the test too.
    expect(page.locator("#status")).to_have_text(re.compile("answered|Error"), timeout=30_000)


def _feedback(database: str) -> dict[str, dict]:
    """The store's report for the last hour: what the feedback the page sent became."""
    now = datetime.now(UTC)
    return Store(database).report(now - timedelta(hours=1), now + timedelta(hours=1))


def test_try_a_hook_shows_the_imaging_card_and_an_override_with_its_reason_is_stored(browser_page, console_service):
    base, database = console_service
    page = browser_page
    _call(page, base, patient="lbp-acute", hook="order-sign", drafts=["lumbar-mri"])
    assert re.match(r"lbp-order-sign answered with 1 card \(\d+ prefetch keys sent\)", page.inner_text("#status")), (
        page.inner_text("#status"),
        page.errors,
    )
    assert not re.search(r"\(0 prefetch keys", page.inner_text("#status"))  # prefetch came from the FHIR server
    card = page.locator("article.card")
    assert "warning" in card.get_attribute("class")
    assert card.locator(".detail strong").count() >= 1  # Markdown rendered, not shown raw
    assert card.locator(".source a").get_attribute("href").startswith("https://")
    assert card.locator("button.suggestion").count() >= 1
    page.screenshot(path=str(SCREENSHOTS / "01-try-imaging-card.png"), full_page=True)

    card.locator("select.override-reason").select_option("red-flag-undocumented")
    card.locator("input.comment").fill("seen in clinic")
    card.locator("button.dismiss").click()
    expect(page.locator("#feedback-status")).not_to_have_text("", timeout=15_000)
    assert page.inner_text("#feedback-status") == "Feedback (overridden): HTTP 200, stored 1"
    report = _feedback(database)
    assert report["lbp-imaging-no-red-flag"]["override_reasons"] == {"red-flag-undocumented": 1}
    assert report["lbp-imaging-no-red-flag"]["free_text"] == 1


def test_a_plain_dismiss_posts_no_reason_and_holds_nothing_back(browser_page, console_service):
    """No reason is preselected: Dismiss without choosing one stores an override with no reason, the page says
    beforehand that nothing will be held back, and the same order gets its card again."""
    base, database = console_service
    page = browser_page
    _call(page, base, patient="lbp-ten-weeks", hook="order-sign", drafts=["lumbar-mri"])
    card = page.locator("article.card")
    assert card.locator("select.override-reason").input_value() == ""
    assert "holds nothing back" in card.locator(".holds-back").inner_text()
    card.locator("select.override-reason").select_option("beyond-six-weeks")
    assert "holds back the imaging card for the same imaging order, 30 days" in card.locator(".holds-back").inner_text()
    card.locator("select.override-reason").select_option("")
    page.screenshot(path=str(SCREENSHOTS / "05-plain-dismiss.png"), full_page=True)
    before = _feedback(database).get("lbp-imaging-no-red-flag", {})
    card.locator("button.dismiss").click()
    expect(page.locator("#feedback-status")).to_have_text("Feedback (overridden): HTTP 200, stored 1", timeout=15_000)
    after = _feedback(database)["lbp-imaging-no-red-flag"]
    assert after["overridden"] == before.get("overridden", 0) + 1
    reasons = before.get("override_reasons", {})
    assert after["override_reasons"] == {**reasons, "(no reason)": reasons.get("(no reason)", 0) + 1}  # none stored

    _call(page, base, patient="lbp-ten-weeks", hook="order-sign", drafts=["lumbar-mri"])
    assert page.locator("article.card").count() == 1  # nothing held back: the card shows again


def test_try_a_hook_by_keyboard_without_random_uuid_shows_the_bed_rest_card_and_stores_an_acceptance(
    browser_page, console_service
):
    base, database = console_service
    # As on plain http with an internal host name (not a secure context): no crypto.randomUUID.
    page = browser_page.context.new_page()
    page.add_init_script("delete Crypto.prototype.randomUUID")
    page.goto(f"{base}/console")
    assert page.evaluate("typeof crypto.randomUUID") == "undefined"
    page.fill("#fhir-token", TOKEN)
    page.fill("#patient", "lbp-acute")
    page.select_option("#hook", "order-select")
    page.select_option("#drafts", ["bed-rest-text"])
    page.focus("#jwt")
    page.keyboard.press("Tab")  # to the Call button
    assert page.evaluate("document.activeElement.id") == "call"
    page.keyboard.press("Enter")
    # Locator waits, not wait_for_function: the console's CSP (no eval) applies to the test too.
    expect(page.locator("#status")).to_have_text(re.compile("answered|Error"), timeout=30_000)
    card = page.locator("article.card")
    assert card.count() == 1, page.inner_text("#status")
    assert "bed rest" in card.locator(".summary").inner_text().lower()
    page.screenshot(path=str(SCREENSHOTS / "02-try-bed-rest-card.png"), full_page=True)
    card.locator("button.suggestion").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#feedback-status")).not_to_have_text("", timeout=15_000)
    assert page.inner_text("#feedback-status") == "Feedback (accepted): HTTP 200, stored 1"
    assert _feedback(database)["lbp-bed-rest"]["accepted"] == 1


def test_the_gallery_in_the_browser_lists_every_scenario_with_rendered_cards(browser_page, console_service):
    base, _ = console_service
    page = browser_page
    page.goto(f"{base}/console/gallery")
    assert page.locator("section.scenario").count() == len(scenarios())
    assert page.locator("article.card").count() == sum(len(s["expect"]) for s in scenarios())
    assert page.locator("article.card .detail strong").count() >= 1  # Markdown rendered by the page's script
    assert page.errors == []  # type: ignore[attr-defined]
    page.screenshot(path=str(SCREENSHOTS / "03-gallery.png"))


def _chart(page, chart_id: str) -> dict:
    """What Chart.js was given to draw on that canvas: labels and each dataset's label and numbers."""
    return page.evaluate(
        """(id) => { const c = window.Chart.getChart(id);
                     return { labels: c.data.labels, datasets: c.data.datasets.map((d) => [d.label, d.data]) }; }""",
        chart_id,
    )


def test_the_answers_charts_draw_the_numbers_of_the_json_report_with_readable_rule_names(browser_page, console_service):
    base, database = console_service
    page = browser_page
    today = datetime.now(UTC).date()
    page.goto(f"{base}/console/answers")
    page.fill("#from", (today - timedelta(days=6)).isoformat())
    page.fill("#to", today.isoformat())
    page.click("form.period button")
    page.wait_for_load_state()
    report = Store(database).report(
        datetime.combine(today - timedelta(days=6), datetime.min.time(), UTC),
        datetime.combine(today, datetime.max.time(), UTC),
    )
    assert report  # the calls above were logged
    names = rule_names(knowledge())
    rules = _chart(page, "chart-rules")
    assert rules["labels"] == [names[rule] for rule in sorted(report)]  # words, not machine ids
    drawn = dict(rules["datasets"])
    for i, rule in enumerate(sorted(report)):
        assert {o: drawn[label][i] for o, label in LABELS.items()} == {o: report[rule][o] for o in LABELS}, rule
        row = page.locator(f'#per-rule tr[data-rule="{rule}"]')
        assert row.locator("th").inner_text() == names[rule]
        assert [row.locator(f'td[data-outcome="{o}"]').inner_text() for o in LABELS] == [
            str(report[rule][o]) for o in LABELS
        ]
    reasons = _chart(page, "chart-reasons")
    assert sorted(reasons["datasets"][0][1]) == sorted(
        n for r in report.values() for n in r["override_reasons"].values()
    )
    assert page.locator("svg text.value").count() == 0  # no hand-drawn numbers under empty bars
    assert page.errors == []  # type: ignore[attr-defined]
    page.screenshot(path=str(SCREENSHOTS / "04-answers.png"), full_page=True)


def test_the_clinician_report_in_the_browser_shows_two_clinicians_with_different_imaging_rates(
    browser_page, console_service
):
    base, _ = console_service
    page = browser_page
    careful, frequent = "Practitioner/browser-dr-careful", "Practitioner/browser-dr-frequent"
    calls = [
        (frequent, "lbp-acute"),
        (frequent, "lbp-ten-weeks"),
        (careful, "lbp-cauda-equina"),
        (careful, "lbp-acute"),
    ]
    for clinician, patient in calls:
        body = hook_request("order-sign", patient, drafts="lumbar-mri")
        body["context"]["userId"] = clinician
        assert requests.post(f"{base}/cds-services/lbp-order-sign", json=body, timeout=30).status_code == 200
    page.goto(f"{base}/console/answers")
    for clinician, share in ((frequent, "100%"), (careful, "50%")):
        row = page.locator(f'#per-clinician tr[data-clinician="{clinician}"]')
        assert row.locator('td[data-column="imaging_orders"]').inner_text() == "2"
        assert row.locator('td[data-column="share"]').inner_text() == share
    shares = _chart(page, "chart-clinicians")
    drawn = dict(zip(shares["labels"], shares["datasets"][0][1], strict=True))
    assert (drawn[frequent], drawn[careful]) == (100, 50)
    assert shares["datasets"][1][0] == "peers' median (%)"
    trend = _chart(page, "chart-clinician-weeks")
    assert sum(dict(trend["datasets"])[frequent]) == 2 and sum(dict(trend["datasets"])[careful]) == 1
    assert page.errors == []  # type: ignore[attr-defined]
    page.locator("#per-clinician").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "07-clinician-report.png"), full_page=True)


def test_the_gallery_filter_shows_only_the_chosen_rule_and_hook(browser_page, console_service):
    base, _ = console_service
    page = browser_page
    page.set_viewport_size({"width": 1200, "height": 1000})
    page.goto(f"{base}/console/gallery")
    everything = scenarios()
    assert page.locator("#gallery-index li").count() == len(everything)
    page.select_option("#filter-rule", "lbp-bed-rest")
    visible = page.locator("section.scenario:visible")
    expected = [s["name"] for s in everything if any(e["rule"] == "lbp-bed-rest" for e in s["expect"])]
    assert visible.locator("h2").all_inner_texts() == expected
    assert {c.get_attribute("data-rule") for c in page.locator("article.card:visible").all()} == {"lbp-bed-rest"}
    assert page.locator("#gallery-index li:visible").count() == len(expected)
    page.select_option("#filter-hook", "order-select")
    both = [n for n in expected if next(s for s in everything if s["name"] == n)["hook"] == "order-select"]
    assert page.locator("section.scenario:visible h2").all_inner_texts() == both
    assert page.inner_text("#filter-status") == f"{len(both)} scenario{'' if len(both) == 1 else 's'} shown"
    # An EHR sidebar's width: the card is drawn at 25rem (400 px) whatever the window.
    assert page.locator("article.card:visible").first.bounding_box()["width"] == 400
    page.screenshot(path=str(SCREENSHOTS / "08-gallery-filter.png"), full_page=True)
    page.select_option("#filter-rule", "")
    page.select_option("#filter-hook", "")
    assert page.locator("section.scenario:visible").count() == len(everything)


def test_a_bad_date_on_the_answers_page_is_a_page_that_says_what_is_wrong(console_client):
    response = console_client.get("/console/answers?from=2026-13-01", headers={**BASIC, "Accept": "text/html"})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Please correct the dates: the date range is not valid" in html
    assert 'value="2026-13-01"' in html  # the form comes back with what was typed
    assert "OperationOutcome" not in html


def test_the_answers_page_counts_a_card_and_its_retried_answer_once(console_client):
    client = console_client
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    (card,) = client.post("/cds-services/lbp-order-sign", json=body).get_json()["cards"]
    answer = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:05:31Z"}
    client.post("/cds-services/lbp-order-sign/feedback", json={"feedback": [answer, answer]})
    html = client.get("/console/answers", headers=BASIC).get_data(as_text=True)
    row = re.search(r'<tr data-rule="lbp-imaging-no-red-flag">(.*?)</tr>', html)
    assert row, html
    assert re.search(r'data-outcome="shown">1<', row.group(1))
    assert re.search(r'data-outcome="overridden">1<', row.group(1))


def test_a_console_file_is_never_cached_the_security_headers_replace_flasks_own(console_client):
    response = console_client.get("/console/static/console.js", headers={"Authorization": f"Bearer {CONSOLE_TOKEN}"})
    assert response.status_code == 200
    assert response.headers.getlist("Cache-Control") == ["no-store"]  # Flask sends files with no-cache otherwise
    assert response.headers["X-Content-Type-Options"] == "nosniff"
