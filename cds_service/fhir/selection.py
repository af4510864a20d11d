"""Which raw FHIR resources the rules could act on, decided from the raw JSON before validation.

A large record (thousands of Observations) must not be validated wholesale on the request path:
a resource is worth validating only if one of its codes is in a value set some rule uses, or its text
names something matched by text (bed rest, a systemic steroid, a red flag or back pain on a Condition
that carries only text or an unknown code).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cds_service.domain.codes import CANONICAL_SYSTEM, canonical_system
from cds_service.domain.facts import ICD10CM_SYSTEMS, as_list, normalise_icd10cm, parse_datetime
from cds_service.domain.memo import Remembered
from cds_service.fhir.facts import text_of
from cds_service.knowledge.answers import YesNo
from cds_service.knowledge.model import Knowledge

TEXT_VERDICTS = 20_000  # order texts remembered per selector (Remembered: oldest first out)

CODE_ELEMENT = {
    "Condition": "code",
    "Observation": "code",
    "ServiceRequest": "code",
    "DeviceRequest": "codeCodeableConcept",
    "MedicationRequest": "medicationCodeableConcept",
    "MedicationStatement": "medicationCodeableConcept",
    "Procedure": "code",
    "AllergyIntolerance": "code",
}


REWRITTEN_SYSTEMS = frozenset({*CANONICAL_SYSTEM, *ICD10CM_SYSTEMS})


def _has_code(resource: Mapping[str, Any], element: str, codes: frozenset[tuple[str, str]]) -> tuple[str, str] | None:
    # Decoded JSON is made of plain dicts: isinstance(dict) is much cheaper than an ABC check on this hot path.
    value = resource.get(element)
    if not isinstance(value, dict):
        return None
    for coding in as_list(value.get("coding")):
        if isinstance(coding, dict):
            system, code = coding.get("system"), coding.get("code")
            if not isinstance(system, str) or not isinstance(code, str):
                continue
            if (system, code) in codes:
                return (system, code)
            if system in REWRITTEN_SYSTEMS:  # an OID alias, or an ICD-10-CM code written another way
                system = canonical_system(system)
                code = normalise_icd10cm(code) if system in ICD10CM_SYSTEMS else code
                if (system, code) in codes:
                    return (system, code)
    return None


@dataclass(frozen=True)
class Relevance:
    """What makes a raw resource worth reading, compiled once from the knowledge."""

    kb: Knowledge
    codes: frozenset[tuple[str, str]]
    names: re.Pattern[str]  # uncoded medicine orders read by name
    fever_days: int
    clock: Callable[[], datetime] = field(compare=False)
    # Whether an order's text names a medicine or bed rest, per text: the same order texts come back on every
    # call for a chart.
    names_a_medicine: Remembered[str, bool] = field(default_factory=lambda: Remembered(TEXT_VERDICTS), compare=False)
    names_an_order: Remembered[str, bool] = field(default_factory=lambda: Remembered(TEXT_VERDICTS), compare=False)
    names_a_lab: Remembered[str, bool] = field(default_factory=lambda: Remembered(TEXT_VERDICTS), compare=False)

    def since(self) -> datetime:
        return self.clock() - timedelta(days=self.fever_days)

    @property
    def answers(self) -> YesNo:
        return self.kb.answers

    def is_relevant(self, resource: Mapping[str, Any]) -> bool:
        return is_relevant(resource, self)


def selector_for(kb: Knowledge, fever_days: int, clock: Callable[[], datetime]) -> Relevance:
    """`fever_days`: a body temperature older than the fever window (as `clock` reads the time) can change no
    advice, so it is not read."""
    # Lower-casing then a case-sensitive alternation is ten times faster than re.IGNORECASE here.
    # Uncoded orders are read by name: steroids, NSAIDs, second-line medicines, anticoagulants.
    contraindicating = [n for rule in kb.medicines.safety.nsaid for n in rule.medication_names]
    read_by_name = (
        *kb.red_flags.steroid_ingredients,
        *kb.medicines.nsaid_names,
        *kb.medicines.second_line_names,
        *contraindicating,
        *kb.red_flags.medicines,
    )
    names = re.compile("|".join(re.escape(n.lower()) for n in read_by_name))
    return Relevance(kb, kb.relevant_codes(), names, fever_days, clock)


def names_an_order(text: str, kb: Knowledge) -> bool:
    lowered = text.lower()
    return (
        any(p.search(text) for p in kb.orders.bed_rest_patterns)
        or kb.orders.lumbar_imaging_text.names_lumbar_imaging(text)
        or any(i.text is not None and i.text.search(lowered) for i in kb.low_value.interventions)
    )


def is_relevant(resource: Mapping[str, Any], relevance: Relevance) -> bool:
    kind = resource.get("resourceType")
    if kind in {"AllergyIntolerance", "QuestionnaireResponse"}:
        # Few per patient: any allergy may rule out a one-click medicine, any answer may be a red flag.
        return True
    if kind == "Encounter":
        # A visit matters only for its reasons (a red flag as the reason for an emergency visit).
        reasons = [r for r in as_list(resource.get("reasonCode")) if isinstance(r, dict)]
        return any(
            _has_code({"code": r}, "code", relevance.codes) or relevance.kb.text.might_match(text_of({"code": r}))
            for r in reasons
        )
    element = CODE_ELEMENT.get(str(kind))
    if element is None:
        return False
    kb = relevance.kb
    found = _has_code(resource, element, relevance.codes)
    if found is None and kind == "Observation" and "component" in resource:
        # A vital-signs panel carries its temperature in a component.
        components = (c for c in as_list(resource.get("component")) if isinstance(c, dict))
        found = next((f for c in components if (f := _has_code(c, "code", relevance.codes))), None)
    if found is not None:
        if kind == "Observation" and found in kb.red_flags.body_temperature:
            when = parse_datetime(resource.get("effectiveDateTime") or resource.get("issued"))
            return when is None or when >= relevance.since()
        return True
    if kind in {"Condition", "Procedure"}:
        return kb.text.might_match(text_of(resource, element))
    if kind == "Observation":
        # A red-flag laboratory result sent with a local code or none: read by its name (ESR, CRP, T-score).
        text = text_of(resource, element)
        return relevance.names_a_lab.answer(text, lambda: any(lab.recognises((), text) for lab in kb.red_flags.labs))
    if kind in {"ServiceRequest", "DeviceRequest"}:
        # Orders with a local code or none: bed rest, lumbar imaging or a low-value intervention in words.
        text = text_of(resource, element)
        return relevance.names_an_order.answer(text, lambda: names_an_order(text, kb))
    if kind in {"MedicationRequest", "MedicationStatement"}:
        if "medicationReference" in resource:
            return True  # the name is in a contained or referenced Medication: keep and let rules look
        text = text_of(resource, element)
        return relevance.names_a_medicine.answer(text, lambda: relevance.names.search(text.lower()) is not None)
    return False
