"""The patient's own plan (issue 31, item 2): every guideline instruction it quotes is the guideline's own
words, every number in them is on the page and in the PDF, the text reads at a level a patient can use, the
shipped PDF is exactly what the knowledge builds, nothing of a record is on it, and the first-line card links
to it (only when the service knows its public address)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pyphen
import pytest
from pypdf import PdfReader

from cds_service.devtools import patient_plan_pdf
from cds_service.knowledge.loader import read_knowledge
from cds_service.web.app import create_app
from cds_service.web.patient_plan import PDF_NAME

from .conftest import dev_settings, hook_request

GUIDELINE = Path(__file__).resolve().parents[2] / "shared" / "guideline" / "low-back-pain-guideline.txt"
PLAN = read_knowledge("patient_plan.json")
NUMBER = re.compile(r"\d+(?:-\d+)?%?")
# Plain-language health material is written at about US school grade 6-8 (NIH, AMA): at most 8 here.
GRADE_LIMIT = 8.0


def _quotes() -> list[str]:
    return [q for s in (*PLAN["sections"], PLAN["urgent"]) for q in s["guideline"]]


def _numbers(text: str) -> set[str]:
    return set(NUMBER.findall(text))


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("—", "-"))


@pytest.fixture(scope="module")
def pdf_text() -> str:
    reader = PdfReader(io.BytesIO(patient_plan_pdf.build()))
    return _words(" ".join(page.extract_text() for page in reader.pages))


@pytest.mark.skipif(not GUIDELINE.is_file(), reason="needs ../shared beside the repo")
def test_every_quote_is_the_guidelines_own_words():
    guideline = _words(GUIDELINE.read_text())
    assert _quotes()
    for quote in _quotes():
        assert _words(quote) in guideline, quote


def test_every_number_the_quoted_guideline_gives_is_on_the_page_and_in_the_pdf(pdf_text):
    page = _words(create_app(dev_settings()).test_client().get("/patient-plan").get_data(as_text=True))
    wanted = set().union(*(_numbers(q) for q in _quotes()))
    assert {"20-30", "3-4", "90%", "6", "12"} <= wanted
    for number in sorted(wanted):
        assert re.search(rf"(?<![\d-]){re.escape(number)}(?![\d-])", page), number
        assert re.search(rf"(?<![\d-]){re.escape(number)}(?![\d-])", pdf_text), number


def test_the_pdf_says_what_the_page_says_urgent_symptoms_first(pdf_text):
    for point in (*PLAN["urgent"]["points"], *(p for s in PLAN["sections"] for p in s["points"])):
        assert _words(point.replace("—", "-")) in pdf_text, point
    assert pdf_text.index(PLAN["urgent"]["points"][0]) < pdf_text.index(PLAN["sections"][0]["points"][0])


def test_the_plan_reads_at_a_level_a_patient_can_use():
    """Flesch-Kincaid grade from words, sentences (each list item one) and syllables (pyphen's dictionary)."""
    hyphen = pyphen.Pyphen(lang="en_US")
    points = [*PLAN["urgent"]["points"], *(p for s in PLAN["sections"] for p in s["points"])]
    text = " ".join([PLAN["intro"], *points])
    words = re.findall(r"[A-Za-z][A-Za-z']*", text)
    sentences = len(re.findall(r"[.!?](?:\s|$)", text)) + sum(1 for p in points if not p.endswith("."))
    syllables = sum(hyphen.inserted(w.lower()).count("-") + 1 for w in words)
    grade = 0.39 * len(words) / sentences + 11.8 * syllables / len(words) - 15.59
    assert grade <= GRADE_LIMIT, grade


def test_the_shipped_pdf_is_exactly_what_the_knowledge_builds():
    assert patient_plan_pdf.OUT.read_bytes() == patient_plan_pdf.build(), "run `make patient-plan`"


def test_the_page_and_the_pdf_are_served_to_anyone_with_nothing_of_a_record():
    client = create_app(dev_settings()).test_client()
    page = client.get("/patient-plan")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "script-src" not in page.headers["Content-Security-Policy"]  # nothing runs on it
    html = page.get_data(as_text=True)
    assert "Patient/" not in html and "<script" not in html
    pdf = client.get("/patient-plan.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data == patient_plan_pdf.OUT.read_bytes()
    assert PDF_NAME in pdf.headers["Content-Disposition"]


def test_the_first_line_card_links_to_the_plan_only_when_the_service_knows_its_address():
    body = hook_request("patient-view", "lbp-acute")
    base = "https://cds.example.org"

    def first_line(settings) -> dict:
        cards = create_app(settings).test_client().post("/cds-services/lbp-patient-view", json=body).get_json()["cards"]
        return next(c for c in cards if c["source"]["topic"]["code"] == "LBPFirstLinePlan")

    (link,) = first_line(dev_settings(public_base_url=base))["links"]
    assert link == {"label": link["label"], "url": f"{base}/patient-plan", "type": "absolute"}
    assert "links" not in first_line(dev_settings())  # never built from the request's Host
