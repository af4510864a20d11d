"""The patient record the rules consume: small immutable facts, and the few pure helpers that read values.

Rules never see raw JSON or HTTP; they see these facts. The FHIR layer (cds_service.fhir.facts) builds them
from FHIR R4 JSON. Entered-in-error and refuted items never become facts; inactive and resolved ones are kept
with their status so that rules can reason about history (a resolved cancer is still a history of cancer).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

from cds_service.domain.codes import canonical_system

Coding = tuple[str, str]  # (system, code)

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10CM_SYSTEMS = frozenset({ICD10CM, "urn:oid:2.16.840.1.113883.6.90"})

ACTIVE_CLINICAL_STATUSES = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
EXCLUDED_STATUSES = frozenset({"entered-in-error"})
OPEN_ORDER_STATUSES = frozenset({"draft", "active", "on-hold"})
PROCEDURES_NOT_DONE = frozenset({"not-done", "preparation"})  # entered-in-error never reaches the rules
# FHIR's date type: YYYY, YYYY-MM or YYYY-MM-DD (http://hl7.org/fhir/R4/datatypes.html#date).
FHIR_DATE = re.compile(r"[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?")


@dataclass(frozen=True)
class Concept:
    """A CodeableConcept reduced to what matching and display need."""

    codings: tuple[Coding, ...] = ()
    text: str = ""
    displays: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, value: Any) -> Concept:
        if not isinstance(value, Mapping):
            return cls()
        codings: list[Coding] = []
        displays: list[str] = []
        for coding in as_list(value.get("coding")):
            if isinstance(coding, Mapping) and coding.get("system") and coding.get("code"):
                system, code = canonical_system(str(coding["system"])), str(coding["code"])
                codings.append((system, normalise_icd10cm(code) if system in ICD10CM_SYSTEMS else code))
            if isinstance(coding, Mapping) and coding.get("display"):
                displays.append(str(coding["display"]))
        text = str(value.get("text") or (displays[0] if displays else ""))
        return cls(tuple(codings), text, tuple(displays))

    @cached_property
    def search_text(self) -> str:
        """Everything a person wrote or a coding displayed, for text matching."""
        return joined_text((self.text, *self.displays))

    def label(self) -> str:
        if self.text:
            return self.text
        return ", ".join(f"{code} ({system})" for system, code in self.codings) or "uncoded"


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str  # UCUM code when given, else the human unit
    system: str = ""


@dataclass(frozen=True)
class PatientFact:
    id: str
    birth_date: date | None
    gender: str | None


@dataclass(frozen=True)
class ConditionFact:
    ref: str  # "Condition/123"
    code: Concept
    clinical_status: str | None
    verification_status: str | None
    onset: datetime | None
    recorded: datetime | None
    abated: datetime | None = None  # when it resolved, where the record says

    @property
    def is_active(self) -> bool:
        # A condition with no clinical status is treated as current: guessing "resolved" could hide a red flag.
        return self.clinical_status is None or self.clinical_status in ACTIVE_CLINICAL_STATUSES

    @property
    def started(self) -> datetime | None:
        return self.onset or self.recorded


@dataclass(frozen=True)
class ObservationComponentFact:
    code: Concept
    quantity: Quantity | None
    value_code: Concept | None
    value_integer: int | None


@dataclass(frozen=True)
class ObservationFact:
    ref: str
    code: Concept
    status: str | None
    effective: datetime | None
    quantity: Quantity | None
    value_code: Concept | None
    value_boolean: bool | None
    value_integer: int | None
    components: tuple[ObservationComponentFact, ...] = ()
    interpretation: tuple[str, ...] = ()  # v3 ObservationInterpretation codes (H, HH, A...) the laboratory gave


@dataclass(frozen=True)
class OrderFact:
    """A ServiceRequest or DeviceRequest, on the chart or drafted in this ordering session."""

    ref: str
    resource_type: str
    status: str | None
    intent: str | None
    code: Concept
    reasons: tuple[Concept, ...]
    reason_refs: tuple[str, ...]
    authored: datetime | None
    is_draft: bool
    resource: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.status is None or self.status in OPEN_ORDER_STATUSES


@dataclass(frozen=True)
class DoseFact:
    dose_low: Quantity | None
    dose_high: Quantity | None
    frequency: int | None
    frequency_max: int | None
    period: float | None
    period_unit: str | None
    as_needed: bool
    max_per_period: tuple[Quantity, float, str] | None  # (numerator, denominator value, denominator unit)
    text: str
    sequence: int | None = None  # lines with the same sequence apply together


@dataclass(frozen=True)
class MedicationFact:
    ref: str
    status: str | None
    medication: Concept
    medication_ref: str | None
    authored: datetime | None
    dosage: tuple[DoseFact, ...]
    reasons: tuple[Concept, ...]
    is_draft: bool
    resource: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)
    supply_days: float | None = None  # days of medicine the order covers, when the order says
    # A MedicationStatement: what the patient takes or took (reported, reconciled), not an order to advise on.
    is_statement: bool = False
    ended: datetime | None = None  # when the statement says the medicine was stopped

    @property
    def last_taken(self) -> datetime | None:
        """The latest day the record shows the medicine taken: its end, or its start plus the supply."""
        if self.ended is not None:
            return self.ended
        if self.authored is not None and self.supply_days:
            return self.authored + timedelta(days=self.supply_days)
        return self.authored

    @property
    def is_open(self) -> bool:
        return self.status is None or self.status in OPEN_ORDER_STATUSES


Order = OrderFact | MedicationFact


@dataclass(frozen=True)
class ProcedureFact:
    """A procedure done (or under way): spinal surgery, a transplant, chemotherapy given."""

    ref: str
    code: Concept
    status: str | None
    performed: datetime | None
    reasons: tuple[Concept, ...] = ()

    @property
    def done(self) -> bool:
        """A procedure not done, or only being prepared, says nothing about the patient."""
        return self.status not in PROCEDURES_NOT_DONE


@dataclass(frozen=True)
class EncounterFact:
    """A visit, read for its reasons: an emergency visit for suspected cauda equina, an oncology visit."""

    ref: str
    reasons: tuple[Concept, ...]
    start: datetime | None


@dataclass(frozen=True)
class AnswerFact:
    """A questionnaire item the patient answered yes to (its question), or an answer that names a finding."""

    ref: str  # the QuestionnaireResponse and the item: "QuestionnaireResponse/7#q3"
    concept: Concept
    authored: datetime | None


@dataclass(frozen=True)
class AllergyFact:
    ref: str
    code: Concept
    clinical_status: str | None
    verification_status: str | None

    @property
    def is_active(self) -> bool:
        # No status counts as current, as for Conditions: an allergy is never assumed away.
        return self.clinical_status is None or self.clinical_status == "active"


@dataclass(frozen=True)
class UnreadableOrder:
    """A draft order that could not be read even after normalising its shape: named on a card, never dropped."""

    ref: str
    label: str
    problems: tuple[str, ...]


@dataclass(frozen=True)
class DataGap:
    """Something the rules would have looked at but could not: said on the card, never guessed."""

    key: str  # the prefetch key, e.g. "observations"
    what: str
    reason: str


@dataclass(frozen=True)
class PatientRecord:
    patient_id: str
    # The Patient resource is validated only when a rule asks for it (few do, and it is the costliest to validate).
    patient_resource: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    # How the Patient resource becomes a fact (validated first): given by the FHIR layer that read it.
    read_patient: Callable[[Mapping[str, Any]], PatientFact | None] | None = field(
        default=None, repr=False, compare=False
    )
    conditions: tuple[ConditionFact, ...] = ()
    observations: tuple[ObservationFact, ...] = ()
    orders: tuple[OrderFact, ...] = ()
    medications: tuple[MedicationFact, ...] = ()
    draft_orders: tuple[Order, ...] = ()
    gaps: tuple[DataGap, ...] = ()
    allergies: tuple[AllergyFact, ...] = ()
    unreadable_drafts: tuple[UnreadableOrder, ...] = ()
    procedures: tuple[ProcedureFact, ...] = ()
    encounters: tuple[EncounterFact, ...] = ()
    answers: tuple[AnswerFact, ...] = ()

    def gap(self, key: str) -> DataGap | None:
        """The gap for a prefetch key ("observations", ...), if that data could not be had."""
        return next((g for g in self.gaps if g.key == key), None)

    @cached_property
    def patient(self) -> PatientFact | None:
        resource = self.patient_resource
        if resource is None or self.read_patient is None:
            return None
        return self.read_patient(resource)

    def age_on(self, today: date) -> int | None:
        """Completed years of age on `today`, or None without a readable birth date."""
        born = self.birth_date
        if born is None:
            return None
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))

    @cached_property
    def birth_date(self) -> date | None:
        """The birth date alone, read without validating the whole Patient: a malformed name or address
        must not cost the age check that decides whether adult advice applies."""
        resource = self.patient_resource
        value = resource.get("birthDate") if resource is not None else None
        if not isinstance(value, str) or not FHIR_DATE.fullmatch(value):
            return None
        parsed = parse_datetime(value)
        return parsed.date() if parsed else None


def normalise_icd10cm(code: str) -> str:
    """ICD-10-CM as the value sets hold it: upper case, with the dot after the category ("S32010A" and
    "s32.010a" both become "S32.010A"). Claims-style undotted codes are common in real EHR data."""
    code = code.strip().upper()
    if len(code) > 3 and "." not in code:
        return f"{code[:3]}.{code[3:]}"
    return code


def as_list(value: Any) -> list[Any]:
    """A JSON array, or an empty one for anything else: clients send junk, and junk must not crash a rule."""
    return value if isinstance(value, list) else []


def parse_datetime(value: Any) -> datetime | None:
    """FHIR date, dateTime or instant -> aware datetime (UTC when no zone is given)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        if len(text) == 4:
            parsed = datetime(int(text), 1, 1)
        elif len(text) == 7:
            parsed = datetime(int(text[:4]), int(text[5:7]), 1)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def joined_text(parts: Iterable[str]) -> str:
    """Text and displays as one string for matching, each once: what Concept.search_text and text_of share."""
    return " | ".join(dict.fromkeys(p for p in parts if p))
