"""One source of truth for clinical numbers: thresholds.json drives the rules and the card words together,
each number cites a source that exists, quotes the guideline exactly, and is read by something."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service.cards.render import CardContext, render
from cds_service.knowledge import loader as package_data
from cds_service.knowledge import model as knowledge_module
from cds_service.knowledge.model import knowledge
from cds_service.rules.engine import evaluate

from .builders import condition, patient, patient_record

ROOT = Path(__file__).resolve().parent.parent
GUIDELINE = ROOT.parent / "shared" / "guideline" / "low-back-pain-guideline.txt"
THRESHOLDS = json.loads((package_data.KNOWLEDGE_DIR / "thresholds.json").read_text())["thresholds"]
CONTEXT = CardContext("patient-view", "built-patient", "enc-1", "Practitioner/dr-1")


def _clear_caches() -> None:
    knowledge_module.knowledge.cache_clear()


@pytest.fixture
def edit_threshold(tmp_path, monkeypatch) -> Iterator[Callable[[str, float], None]]:
    """Point the service at a copy of its knowledge files with one threshold changed (no Python touched)."""
    copy = tmp_path / "knowledge"
    shutil.copytree(package_data.KNOWLEDGE_DIR, copy)
    monkeypatch.setattr(package_data, "KNOWLEDGE_DIR", copy)

    def edit(name: str, value: float) -> None:
        path = copy / "thresholds.json"
        data = json.loads(path.read_text())
        data["thresholds"][name]["value"] = value
        path.write_text(json.dumps(data))
        _clear_caches()

    yield edit
    monkeypatch.undo()
    _clear_caches()


def _patient_view_cards(weeks: float, age: float = 40) -> list[dict[str, Any]]:
    resources = [patient(age), condition(days_ago=weeks * 7, icd="M54.50")]
    record = patient_record(resources)
    findings = evaluate("patient-view", record, (), knowledge(), datetime.now(UTC))
    return render(findings, CONTEXT, knowledge())


def _summaries(rendered: list[dict[str, Any]]) -> list[str]:
    return [c["summary"] for c in rendered]


def test_lowering_review_weeks_in_the_data_moves_the_rule_and_the_words(edit_threshold):
    assert not any("review due" in s for s in _summaries(_patient_view_cards(weeks=11)))
    edit_threshold("review_weeks", 10)
    assert "Back pain for 10+ weeks: review due; improvement not recorded" in _summaries(_patient_view_cards(weeks=11))


def test_changing_the_imaging_window_changes_the_imaging_card_summary(edit_threshold):
    from .builders import lumbar_mri

    def imaging_summary() -> str:
        record = patient_record([patient(40), condition(days_ago=50, icd="M54.50")], drafts=[lumbar_mri()])
        findings = evaluate("order-sign", record, record.draft_orders, knowledge(), datetime.now(UTC))
        return render(findings, CardContext("order-sign", "built-patient", None, None), knowledge())[0]["summary"]

    assert imaging_summary().startswith("Lumbar imaging after 6 weeks")  # 50 days is past 6 weeks
    edit_threshold("imaging_early_weeks", 8)
    assert (
        imaging_summary() == "Lumbar imaging without red flags is not recommended in the first 8 weeks of low back pain"
    )


def test_an_unknown_threshold_key_stops_start_up(tmp_path, monkeypatch):
    copy = tmp_path / "knowledge"
    shutil.copytree(package_data.KNOWLEDGE_DIR, copy)
    data = json.loads((copy / "thresholds.json").read_text())
    data["thresholds"]["review_weks"] = data["thresholds"].pop("review_weeks")
    (copy / "thresholds.json").write_text(json.dumps(data))
    monkeypatch.setattr(package_data, "KNOWLEDGE_DIR", copy)
    _clear_caches()
    try:
        with pytest.raises(RuntimeError, match=r"thresholds\.json does not fit the rules.*review_weks"):
            knowledge()
    finally:
        monkeypatch.undo()
        _clear_caches()


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_every_threshold_cites_a_known_source(name):
    citations = package_data.read_knowledge("citations.json")
    assert THRESHOLDS[name]["citation"] in citations
    assert THRESHOLDS[name]["source"] and THRESHOLDS[name]["unit"]


def test_every_threshold_a_module_declares_it_reads_is_in_its_code():
    """The catalogue's declarations (rules/catalog.py) are checked against the source, so they cannot drift."""
    import cds_service.rules.engine  # noqa: F401 - registers every rule
    from cds_service.rules import catalog

    sources = {p.stem: p.read_text() for p in (ROOT / "cds_service" / "rules").rglob("*.py")}
    code = "\n".join(text for stem, text in sources.items() if stem != "catalog")
    declared = catalog.thresholds_read()
    assert declared, "nothing declared"
    for name in declared:
        assert re.search(rf"\.{name}\b", code), f"{name} is declared but no rule reads kb.thresholds.{name}"


@pytest.mark.skipif(not GUIDELINE.exists(), reason="../shared/guideline is not beside this checkout")
@pytest.mark.parametrize("name", sorted(n for n, t in THRESHOLDS.items() if t["citation"] == "guideline"))
def test_guideline_quotations_are_verbatim_and_hold_the_value(name):
    text = " ".join(GUIDELINE.read_text().split())
    (quote,) = re.findall(r"'([^']+)'", THRESHOLDS[name]["source"])
    assert quote in text
    value = THRESHOLDS[name]["value"]
    # The reviewed value is the one the guideline states (13 weeks is its "3 months").
    assert f"{value:g}" in quote or (name == "multidisciplinary_weeks" and "3-6 months" in quote)
