"""The record entries a card is based on, named in words a clinician reads ("MRI lumbar spine (draft order)",
"Low back pain (condition, onset 2026-11-22)") instead of FHIR ids, which mean nothing at the bedside."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cds_service.domain.facts import (
    AllergyFact,
    AnswerFact,
    Concept,
    ConditionFact,
    EncounterFact,
    MedicationFact,
    ObservationFact,
    OrderFact,
    PatientRecord,
    ProcedureFact,
)

# What each resource type is to a clinician; an entry the record does not hold is named by its kind alone.
KINDS = {
    "Condition": "condition",
    "Observation": "result",
    "ServiceRequest": "order",
    "DeviceRequest": "device order",
    "MedicationRequest": "medicine order",
    "MedicationStatement": "medicine taken",
    "MedicationAdministration": "medicine given",
    "MedicationDispense": "medicine dispensed",
    "Procedure": "procedure",
    "Encounter": "visit",
    "QuestionnaireResponse": "questionnaire answer",
    "AllergyIntolerance": "allergy",
    "Patient": "patient's details",  # age and sex: the rules read nothing else from it
    "DiagnosticReport": "report",
}

Fact = (
    ConditionFact
    | ObservationFact
    | OrderFact
    | MedicationFact
    | ProcedureFact
    | EncounterFact
    | AnswerFact
    | AllergyFact
)


@dataclass(frozen=True)
class EntryName:
    what: str  # the entry's own words: its code's text or display ("" when it has none)
    kind: str  # "condition", "draft order", ...
    when: str  # "onset 2026-11-22", "ordered 2026-12-01" or ""

    @property
    def where(self) -> str:
        """Kind and date alone, for a line that already says what was found: "condition, onset 2026-11-22"."""
        return ", ".join(p for p in (self.kind, self.when) if p)

    @property
    def full(self) -> str:
        """The entry with its kind and date: "Low back pain (condition, onset 2026-11-22)"."""
        if self.what:
            return f"{self.what} ({self.where})"
        if self.kind == KINDS["Patient"]:
            return f"the {self.kind}"
        article = "an" if self.kind[:1] in set("aeiou") else "a"
        return f"{article} {self.kind}" + (f" ({self.when})" if self.when else "")


# SNOMED CT fully specified names end in a semantic tag ("Low back pain (finding)") that reads as noise on a card.
SEMANTIC_TAG = re.compile(r"\s*\((?:finding|disorder|procedure|situation|observable entity|regime/therapy)\)$")


def _words(text: str) -> str:
    return SEMANTIC_TAG.sub("", text)


def _text(concept: Concept) -> str:
    """What the entry says, without a SNOMED semantic tag; for a code without display or text, the code itself
    (clinicians read ICD-10)."""
    return _words(concept.text) or (concept.codings[0][1] if concept.codings else "")


def _day(value: datetime | None) -> str:
    return value.date().isoformat() if value else ""


def _named(fact: Fact, kind: str) -> EntryName:
    match fact:
        case ConditionFact():
            return EntryName(_text(fact.code), kind, f"onset {_day(fact.onset)}" if fact.onset else _recorded(fact))
        case ObservationFact():
            return EntryName(_text(fact.code), kind, _day(fact.effective))
        case OrderFact():
            return EntryName(_text(fact.code), f"draft {kind}" if fact.is_draft else kind, _ordered(fact.authored))
        case MedicationFact():
            draft = fact.is_draft and not fact.is_statement
            return EntryName(_text(fact.medication), f"draft {kind}" if draft else kind, _ordered(fact.authored))
        case ProcedureFact():
            return EntryName(_text(fact.code), kind, _day(fact.performed))
        case EncounterFact():
            return EntryName(", ".join(_text(r) for r in fact.reasons if _text(r)), kind, _day(fact.start))
        case AnswerFact():
            return EntryName(_text(fact.concept), kind, _day(fact.authored))
        case AllergyFact():
            return EntryName(_text(fact.code), kind, "")


def _recorded(fact: ConditionFact) -> str:
    return f"recorded {_day(fact.recorded)}" if fact.recorded else ""


def _ordered(authored: datetime | None) -> str:
    return f"ordered {_day(authored)}" if authored else ""


def _facts(record: PatientRecord) -> tuple[Fact, ...]:
    return (
        *record.draft_orders,
        *record.conditions,
        *record.observations,
        *record.orders,
        *record.medications,
        *record.procedures,
        *record.encounters,
        *record.answers,
        *record.allergies,
    )


def name_entries(refs: list[str] | tuple[str, ...], record: PatientRecord | None) -> dict[str, EntryName]:
    """Each reference ("Condition/7", "QuestionnaireResponse/3#q2") named from the record; one the record does
    not hold (or no record) is named by its kind alone, never by its id."""
    wanted = set(refs)
    found: dict[str, EntryName] = {}
    for fact in _facts(record) if record is not None and wanted else ():
        if fact.ref in wanted and fact.ref not in found:
            found[fact.ref] = _named(fact, _kind(fact.ref))
    for unreadable in record.unreadable_drafts if record is not None else ():
        if unreadable.ref in wanted and unreadable.ref not in found:
            found[unreadable.ref] = EntryName(unreadable.label, f"draft {_kind(unreadable.ref)}", "")
    for ref in wanted - found.keys():
        found[ref] = EntryName("", _kind(ref), "")
    return found


def _kind(ref: str) -> str:
    return KINDS.get(ref.split("/", 1)[0], "record entry")
