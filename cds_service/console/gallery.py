"""The card gallery: every golden scenario (fhir_fixtures/scenarios.json) answered in process, each card with
the guideline statement it implements, its citation and the resources that triggered it, so that a reviewer
reads all the advice the service gives in one place. Nothing is logged: the gallery never touches memory or
the card log, so the answers report stays the EHRs' own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cds_service.cards.render import CardContext, render, rule_source
from cds_service.cds_hooks.protocol import CdsService, parse_hook_request
from cds_service.devtools.fixture_requests import build_request, prefetch_for
from cds_service.devtools.fixtures import load_bundle, resources
from cds_service.domain.findings import Finding
from cds_service.domain.windows import ClinicalWindows
from cds_service.fhir.patient_data import PatientDataAssembler
from cds_service.knowledge.model import Knowledge
from cds_service.rules.engine import evaluate, orders_in_question, unreadable_orders


@dataclass(frozen=True)
class GalleryCard:
    card: dict[str, Any]
    rule: str
    statement: str
    citation: dict[str, str]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class GalleryEntry:
    name: str
    patient: str
    hook: str
    draft_orders: str | None
    cards: tuple[GalleryCard, ...]


def scenarios(directory: Path) -> list[dict[str, Any]]:
    path = directory / "scenarios.json"
    return json.loads(path.read_text())["scenarios"] if path.is_file() else []


def _request(scenario: dict[str, Any], directory: Path, service: CdsService) -> dict[str, Any]:
    drafts = scenario.get("draft_orders")
    bundle = json.loads((directory / "draft-orders" / f"{drafts}.json").read_text()) if drafts else None
    body = build_request(scenario["hook"], scenario["patient"], None, None, bundle)
    if scenario.get("selections") is not None:
        body["context"]["selections"] = scenario["selections"]
    pool = resources(load_bundle(directory / f"{scenario['patient']}.json"))
    body["prefetch"] = prefetch_for(service, body["context"], pool)
    return body


def _gallery_card(finding: Finding, card: dict[str, Any], kb: Knowledge) -> GalleryCard:
    statement, citation = rule_source(finding.rule, kb)
    return GalleryCard(card, finding.rule, statement, citation, finding.evidence)


def build(
    directory: Path,
    services: dict[str, CdsService],
    assembler: PatientDataAssembler,
    kb: Knowledge,
    windows: ClinicalWindows,
    now: datetime,
) -> list[GalleryEntry]:
    by_hook = {s.hook: s for s in services.values()}
    entries = []
    for scenario in scenarios(directory):
        service = by_hook[scenario["hook"]]
        request = parse_hook_request(_request(scenario, directory, service), service)
        record = assembler.assemble(service, request, None)
        orders = orders_in_question(request.hook, record, request.selections)
        findings = evaluate(request.hook, record, orders, kb, now, windows)
        findings += unreadable_orders(request.hook, record, request.selections)
        ctx = CardContext(request.hook, request.patient_id, request.encounter_id, request.user_id, record)
        rendered = render(findings, ctx, kb)
        entries.append(
            GalleryEntry(
                name=scenario["name"],
                patient=scenario["patient"],
                hook=scenario["hook"],
                draft_orders=scenario.get("draft_orders"),
                cards=tuple(_gallery_card(f, card, kb) for f, card in zip(findings, rendered, strict=True)),
            )
        )
    return entries
