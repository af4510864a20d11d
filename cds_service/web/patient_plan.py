"""The patient's own plan (issue 31, item 2): `GET /patient-plan`, a printable page in plain words, and
`GET /patient-plan.pdf`, the same text as a PDF, both from knowledge/patient_plan.json. The first-line card
links here. Nothing of any patient's record is on either, so both are public and the same for everyone."""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, Response, render_template, send_file

from cds_service.knowledge.loader import read_knowledge

PDF_NAME = "patient-plan.pdf"  # built by `make patient-plan` (devtools/patient_plan_pdf.py), shipped in static/
# The page's only style is its own stylesheet; nothing runs on it.
PAGE_POLICY = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"

plan = Blueprint("patient_plan", __name__, template_folder="templates", static_folder="static")


@cache
def _plan() -> Any:
    return read_knowledge("patient_plan.json")  # read once: the knowledge does not change while the service runs


@plan.get("/patient-plan")
def patient_plan_page() -> Any:
    html = render_template("patient_plan.html", plan=_plan())
    return Response(html, mimetype="text/html", headers={"Content-Security-Policy": PAGE_POLICY})


@plan.get("/patient-plan.pdf")
def patient_plan_pdf() -> Any:
    assert plan.static_folder is not None
    return send_file(f"{plan.static_folder}/{PDF_NAME}", mimetype="application/pdf", download_name=PDF_NAME)
