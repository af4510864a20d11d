"""`make patient-plan`: the patient's plan (knowledge/patient_plan.json) as a PDF, with fpdf2 (a maintained
pure-Python PDF library), into cds_service/web/static/patient-plan.pdf. Built here, not per request: the
plan holds nothing of a patient, so one file serves everyone, and the production image carries neither the
library nor its fonts (about 55 MB). Reproducible: a fixed creation date, so the same plan gives the same
bytes; a test rebuilds it and fails when the shipped file differs."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF

from cds_service.knowledge.loader import read_knowledge

OUT = Path(__file__).resolve().parents[1] / "web" / "static" / "patient-plan.pdf"
# The core PDF fonts cover Latin-1 only: the plan's few other characters are written as their plain forms.
PLAIN = str.maketrans({"—": "-", "–": "-", "’": "'", "‘": "'", "“": '"', "”": '"', "…": "..."})


def _text(value: str) -> str:
    return value.translate(PLAIN)


def build(plan: dict[str, Any] | None = None) -> bytes:
    plan = plan or read_knowledge("patient_plan.json")
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))  # reproducible bytes
    pdf.set_title(_text(plan["title"]))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.multi_cell(0, 10, _text(plan["title"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 12)
    pdf.multi_cell(0, 6, _text(plan["intro"]), new_x="LMARGIN", new_y="NEXT")
    _section(pdf, plan["urgent"]["heading"], plan["urgent"]["points"], urgent=True)
    for section in plan["sections"]:
        _section(pdf, section["heading"], section["points"])
    pdf.ln(4)
    pdf.set_font("Helvetica", "I", 10)
    pdf.multi_cell(0, 5, _text(plan["footer"]), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _section(pdf: FPDF, heading: str, points: list[str], *, urgent: bool = False) -> None:
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 14)
    pdf.set_text_color(176, 0, 32) if urgent else pdf.set_text_color(0, 0, 0)
    pdf.multi_cell(0, 7, _text(heading), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Helvetica", "", 12)
    for point in points:
        pdf.multi_cell(0, 6, "- " + _text(point), new_x="LMARGIN", new_y="NEXT")


def main() -> int:
    OUT.write_bytes(build())
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
