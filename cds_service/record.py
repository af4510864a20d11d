"""The patient record the rules consume: small immutable facts read from FHIR R4 JSON.

Rules never see raw JSON or HTTP; they see these facts. Building them is split in two so that large
records stay fast: ``is_relevant`` picks the resources a rule could act on from the raw JSON (a set
lookup per coding), and only those are validated with fhir.resources and turned into facts.
Entered-in-error and refuted items never become facts; inactive and resolved ones are kept with their
status so that rules can reason about history (a resolved cancer is still a history of cancer).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any, Generic, TypeVar

import orjson
from pydantic import ValidationError

from .fhir_models import model_for
from .terminology import canonical_system

log = logging.getLogger(__name__)

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
        if resource is None or not validate(resource):
            return None
        return patient_fact(resource)

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


# --- reading FHIR JSON -------------------------------------------------------------------------------


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


def _status_code(value: Any) -> str | None:
    """The code of a status CodeableConcept; the system is implied by the element, so it is not required."""
    if not isinstance(value, dict):
        return None
    for coding in as_list(value.get("coding")):
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return coding["code"]
    return None


def _quantity(value: Any) -> Quantity | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("value"), int | float):
        return None
    unit = str(value.get("code") or value.get("unit") or "")
    return Quantity(float(value["value"]), unit, str(value.get("system") or ""))


def _period_start(value: Any) -> datetime | None:
    return parse_datetime(value.get("start")) if isinstance(value, Mapping) else None


def _reference(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("reference"), str):
        return value["reference"]
    return None


def joined_text(parts: Iterable[str]) -> str:
    """Text and displays as one string for matching, each once: what Concept.search_text and text_of share."""
    return " | ".join(dict.fromkeys(p for p in parts if p))


def text_of(resource: Mapping[str, Any], element: str = "code") -> str:
    """A CodeableConcept's text and every coding's display, straight from raw JSON (selection's hot path
    reads this before any validation); the same string Concept.search_text gives for a read resource."""
    value = resource.get(element)
    if not isinstance(value, Mapping):
        return ""
    parts = [str(value.get("text") or "")]
    parts += [str(c.get("display") or "") for c in as_list(value.get("coding")) if isinstance(c, Mapping)]
    return joined_text(parts)


def is_excluded(resource: Mapping[str, Any]) -> bool:
    """Entered-in-error and refuted items never count for anything."""
    status = resource.get("status")
    if isinstance(status, str) and status in EXCLUDED_STATUSES:
        return True
    return _status_code(resource.get("verificationStatus")) in EXCLUDED_VERIFICATION


K = TypeVar("K")
V = TypeVar("V")


class Remembered(Generic[K, V]):
    """Answers of a pure function, by exact input: the same content comes back on every hook call for a chart
    (patient-view, order-select, order-sign), so an answer already given is given again. Bounded; oldest
    entries go first. This changes speed, never an answer.

    Shared by a worker's threads: finding the oldest entry and storing a new one happen under a lock. Without
    it, a thread could take the oldest key while another stored one, and the dictionary's iterator raised
    RuntimeError (a 500 for that call) once the memo was full; the bound was overrun too."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.answers: dict[K, V] = {}
        self._lock = threading.Lock()

    def answer(self, key: K, compute: Callable[[], V]) -> V:
        known = self.answers.get(key)
        if known is None:
            known = compute()  # outside the lock: a slow answer must not hold up the other threads
            with self._lock:
                if len(self.answers) >= self.limit:
                    self.answers.pop(next(iter(self.answers)))
                self.answers[key] = known
        return known


# Validation verdicts by exact content: validation is the costliest step per resource.
VERDICT_CACHE_SIZE = 20_000
_VERDICTS: Remembered[bytes, tuple[str, ...]] = Remembered(VERDICT_CACHE_SIZE)


def problems(resource: Mapping[str, Any]) -> tuple[str, ...]:
    """Why one resource fails the fhir.resources R4B model: field paths and error kinds, never values (they
    may be PHI). Empty when it is valid. Verdicts are cached by exact content."""
    try:
        key = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS, default=str)
    except orjson.JSONEncodeError:  # past orjson's nesting limit, or an integer over 64 bits: the slow way
        try:
            key = json.dumps(resource, sort_keys=True, separators=(",", ":"), default=str).encode()
        except (RecursionError, ValueError):
            return ("(resource nested too deeply to read)",)
    return _VERDICTS.answer(key, lambda: _problems(resource))


@dataclass(frozen=True)
class InvalidResource:
    resource_type: str
    resource_id: Any  # as sent (an id may be missing)
    invalid_fields: tuple[str, ...]  # field paths and error kinds, never values


def log_invalid(item: InvalidResource) -> None:
    log.warning(
        "skipping invalid FHIR resource",
        extra={
            "resource_type": item.resource_type,
            "resource_id": item.resource_id,
            "invalid_fields": list(item.invalid_fields),
        },
    )


def validate(resource: Mapping[str, Any]) -> bool:
    """Validate one resource with the fhir.resources R4B model; a failure is logged and skipped, never fatal."""
    found = problems(resource)
    if found:
        log_invalid(InvalidResource(str(resource.get("resourceType")), resource.get("id"), found))
    return not found


def _problems(resource: Mapping[str, Any]) -> tuple[str, ...]:
    model = model_for(str(resource.get("resourceType")))
    if model is None:
        return ()
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return tuple(dict.fromkeys(f"{'.'.join(str(p) for p in e['loc'])} ({e['type']})" for e in exc.errors()))
    except (ValueError, TypeError, RecursionError) as exc:
        return (type(exc).__name__,)
    return ()


def ref_of(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id', '')}"


def condition_fact(resource: Mapping[str, Any]) -> ConditionFact:
    return ConditionFact(
        ref=ref_of(resource),
        code=Concept.from_json(resource.get("code")),
        clinical_status=_status_code(resource.get("clinicalStatus")),
        verification_status=_status_code(resource.get("verificationStatus")),
        onset=parse_datetime(resource.get("onsetDateTime")) or _period_start(resource.get("onsetPeriod")),
        recorded=parse_datetime(resource.get("recordedDate")),
        abated=parse_datetime(resource.get("abatementDateTime"))
        or (parse_datetime(p.get("end")) if isinstance(p := resource.get("abatementPeriod"), Mapping) else None),
    )


def _value_fields(obj: Mapping[str, Any]) -> tuple[Quantity | None, Concept | None, int | None]:
    code = Concept.from_json(obj["valueCodeableConcept"]) if "valueCodeableConcept" in obj else None
    integer = obj.get("valueInteger") if isinstance(obj.get("valueInteger"), int) else None
    return _quantity(obj.get("valueQuantity")), code, integer


def observation_fact(resource: Mapping[str, Any]) -> ObservationFact:
    quantity, value_code, value_integer = _value_fields(resource)
    components = []
    for comp in as_list(resource.get("component")):
        if isinstance(comp, Mapping):
            c_quantity, c_code, c_integer = _value_fields(comp)
            components.append(
                ObservationComponentFact(Concept.from_json(comp.get("code")), c_quantity, c_code, c_integer)
            )
    effective = (
        parse_datetime(resource.get("effectiveDateTime"))
        or parse_datetime(resource.get("effectiveInstant"))
        or _period_start(resource.get("effectivePeriod"))
        or parse_datetime(resource.get("issued"))
    )
    boolean = resource.get("valueBoolean")
    return ObservationFact(
        ref=ref_of(resource),
        code=Concept.from_json(resource.get("code")),
        status=resource.get("status"),
        effective=effective,
        quantity=quantity,
        value_code=value_code,
        value_boolean=boolean if isinstance(boolean, bool) else None,
        value_integer=value_integer,
        components=tuple(components),
        interpretation=tuple(
            str(coding["code"])
            for concept in as_list(resource.get("interpretation"))
            if isinstance(concept, Mapping)
            for coding in as_list(concept.get("coding"))
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str)
        ),
    )


def order_fact(resource: Mapping[str, Any], *, is_draft: bool) -> OrderFact:
    reasons = tuple(Concept.from_json(r) for r in as_list(resource.get("reasonCode")))
    reason_refs = tuple(ref for r in as_list(resource.get("reasonReference")) if (ref := _reference(r)))
    code = (
        resource.get("code")
        if resource.get("resourceType") == "ServiceRequest"
        else resource.get("codeCodeableConcept")
    )
    return OrderFact(
        ref=ref_of(resource),
        resource_type=str(resource.get("resourceType")),
        status=resource.get("status"),
        intent=resource.get("intent"),
        code=Concept.from_json(code),
        reasons=reasons,
        reason_refs=reason_refs,
        authored=parse_datetime(resource.get("authoredOn")),
        is_draft=is_draft,
        resource=resource,
    )


def _dose(dosage: Mapping[str, Any]) -> DoseFact:
    timing_value = dosage.get("timing")
    timing: Mapping[str, Any] = timing_value if isinstance(timing_value, Mapping) else {}
    repeat_value = timing.get("repeat")
    repeat: Mapping[str, Any] = repeat_value if isinstance(repeat_value, Mapping) else {}
    low = high = None
    for dose_and_rate in as_list(dosage.get("doseAndRate")):
        if not isinstance(dose_and_rate, Mapping):
            continue
        if "doseQuantity" in dose_and_rate:
            low = high = _quantity(dose_and_rate["doseQuantity"])
        elif isinstance(dose_and_rate.get("doseRange"), Mapping):
            low = _quantity(dose_and_rate["doseRange"].get("low"))
            high = _quantity(dose_and_rate["doseRange"].get("high"))
        break
    max_per_period = None
    ratio = dosage.get("maxDosePerPeriod")
    if isinstance(ratio, Mapping):
        numerator = _quantity(ratio.get("numerator"))
        denominator = _quantity(ratio.get("denominator"))
        if numerator and denominator:
            max_per_period = (numerator, denominator.value, denominator.unit)

    def _int(value: Any) -> int | None:
        return value if isinstance(value, int) else None

    def _num(value: Any) -> float | None:
        return float(value) if isinstance(value, int | float) else None

    return DoseFact(
        dose_low=low,
        dose_high=high,
        frequency=_int(repeat.get("frequency")),
        frequency_max=_int(repeat.get("frequencyMax")),
        period=_num(repeat.get("period")),
        period_unit=repeat.get("periodUnit"),
        as_needed=bool(dosage.get("asNeededBoolean")) or "asNeededCodeableConcept" in dosage,
        max_per_period=max_per_period,
        text=str(dosage.get("text") or ""),
        sequence=_int(dosage.get("sequence")),
    )


DAYS_PER_UNIT = {"d": 1.0, "day": 1.0, "days": 1.0, "wk": 7.0, "week": 7.0, "mo": 30.0, "month": 30.0, "a": 365.0}


def _days(quantity: Quantity | None) -> float | None:
    if quantity is None:
        return None
    per = DAYS_PER_UNIT.get(quantity.unit.strip().lower())
    return quantity.value * per if per is not None else None


def supply_days(resource: Mapping[str, Any]) -> float | None:
    """How many days of medicine an order covers: the expected supply duration times the fills
    (first fill plus repeats), else the dosage's bounds; None when the order does not say."""
    dispense = resource.get("dispenseRequest")
    if isinstance(dispense, Mapping):
        per_fill = _days(_quantity(dispense.get("expectedSupplyDuration")))
        if per_fill is not None:
            repeats = dispense.get("numberOfRepeatsAllowed")
            return per_fill * (1 + (repeats if isinstance(repeats, int) and repeats > 0 else 0))
    for dosage in as_list(resource.get("dosageInstruction")):
        timing = dosage.get("timing") if isinstance(dosage, Mapping) else None
        repeat = timing.get("repeat") if isinstance(timing, Mapping) else None
        if not isinstance(repeat, Mapping):
            continue
        bounded = _days(_quantity(repeat.get("boundsDuration")))
        if bounded is not None:
            return bounded
        period = repeat.get("boundsPeriod")
        if isinstance(period, Mapping):
            start, end = parse_datetime(period.get("start")), parse_datetime(period.get("end"))
            if start and end and end >= start:
                return (end - start).total_seconds() / 86400
    return None


def _medication_concept(resource: Mapping[str, Any]) -> Concept:
    """The medicine's code, else the name a reference carries in its display (`CellCept 500 mg tablet`)."""
    if "medicationCodeableConcept" in resource:
        return Concept.from_json(resource.get("medicationCodeableConcept"))
    reference = resource.get("medicationReference")
    display = reference.get("display") if isinstance(reference, Mapping) else None
    return Concept(text=display) if isinstance(display, str) else Concept()


def medication_statement_fact(resource: Mapping[str, Any]) -> MedicationFact:
    """A MedicationStatement read as a medicine the patient takes or took: from its effective time (else the
    date it was asserted) to the effective period's end."""
    period = resource.get("effectivePeriod")
    start = (
        parse_datetime(resource.get("effectiveDateTime"))
        or _period_start(period)
        or parse_datetime(resource.get("dateAsserted"))
    )
    end = parse_datetime(period.get("end")) if isinstance(period, Mapping) else None
    return MedicationFact(
        ref=ref_of(resource),
        status=resource.get("status"),
        medication=_medication_concept(resource),
        medication_ref=_reference(resource.get("medicationReference")),
        authored=start,
        dosage=tuple(_dose(d) for d in as_list(resource.get("dosage")) if isinstance(d, Mapping)),
        reasons=tuple(Concept.from_json(r) for r in as_list(resource.get("reasonCode"))),
        is_draft=False,
        resource=resource,
        supply_days=(end - start).total_seconds() / 86400 if start and end and end >= start else None,
        is_statement=True,
        ended=end,
    )


def medication_fact(resource: Mapping[str, Any], *, is_draft: bool) -> MedicationFact:
    return MedicationFact(
        ref=ref_of(resource),
        status=resource.get("status"),
        medication=_medication_concept(resource),
        medication_ref=_reference(resource.get("medicationReference")),
        authored=parse_datetime(resource.get("authoredOn")),
        dosage=tuple(_dose(d) for d in as_list(resource.get("dosageInstruction")) if isinstance(d, Mapping)),
        reasons=tuple(Concept.from_json(r) for r in as_list(resource.get("reasonCode"))),
        is_draft=is_draft,
        resource=resource,
        supply_days=supply_days(resource),
    )


def procedure_fact(resource: Mapping[str, Any]) -> ProcedureFact:
    return ProcedureFact(
        ref=ref_of(resource),
        code=Concept.from_json(resource.get("code")),
        status=resource.get("status"),
        performed=parse_datetime(resource.get("performedDateTime")) or _period_start(resource.get("performedPeriod")),
        reasons=tuple(Concept.from_json(r) for r in as_list(resource.get("reasonCode"))),
    )


def encounter_fact(resource: Mapping[str, Any]) -> EncounterFact:
    return EncounterFact(
        ref=ref_of(resource),
        reasons=tuple(Concept.from_json(r) for r in as_list(resource.get("reasonCode"))),
        start=_period_start(resource.get("period")),
    )


# Answers that mean yes: LOINC LA33-6 "Yes", SNOMED CT 373066001 "Yes", and the words.
YES_ANSWERS = frozenset({("http://loinc.org", "LA33-6"), ("http://snomed.info/sct", "373066001")})
NO_ANSWERS = frozenset({("http://loinc.org", "LA32-8"), ("http://snomed.info/sct", "373067005")})
YES_WORDS = frozenset({"yes", "y", "true"})
NO_WORDS = frozenset({"no", "n", "false"})


def _answered_items(resource: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], list[Mapping[str, Any]]]]:
    """Every item of a QuestionnaireResponse with its answers, at any depth (items nest in items and in
    answers), to a depth of 20."""

    def walk(items: Any, depth: int) -> Iterator[tuple[Mapping[str, Any], list[Mapping[str, Any]]]]:
        if depth > 20:
            return
        for item in as_list(items):
            if not isinstance(item, Mapping):
                continue
            answers = [a for a in as_list(item.get("answer")) if isinstance(a, Mapping)]
            yield item, answers
            yield from walk(item.get("item"), depth + 1)
            for answer in answers:
                yield from walk(answer.get("item"), depth + 1)

    return walk(resource.get("item"), 0)


def answer_facts(resource: Mapping[str, Any]) -> tuple[AnswerFact, ...]:
    """What a QuestionnaireResponse says about the patient: each question answered yes (read as the question's
    text), and each coded or written answer other than yes or no (read as itself), at any depth."""
    ref, authored = ref_of(resource), parse_datetime(resource.get("authored"))
    found: list[AnswerFact] = []
    for item, answers in _answered_items(resource):
        question = str(item.get("text") or "")
        for answer in answers:
            said = _answer_concept(answer)
            if said is None:
                continue
            # A boolean answer reads as the word "true" or "false" (_answer_concept).
            word = said.text.strip().lower()
            yes = word in YES_WORDS or bool(YES_ANSWERS.intersection(said.codings))
            no = word in NO_WORDS or bool(NO_ANSWERS.intersection(said.codings))
            where = _item_ref(ref, item)
            if yes and question:
                found.append(AnswerFact(where, Concept(text=question), authored))
            elif not yes and not no:
                found.append(AnswerFact(where, said, authored))
    return tuple(found)


LOINC_CODE = re.compile(r"[0-9]{1,7}-[0-9]")


def _item_ref(ref: str, item: Mapping[str, Any]) -> str:
    """One questionnaire item's reference: the response and the item's linkId (each item is its own fact)."""
    return f"{ref}#{item.get('linkId')}" if isinstance(item.get("linkId"), str) else ref


def questionnaire_observations(resource: Mapping[str, Any]) -> tuple[ObservationFact, ...]:
    """Items whose linkId is a LOINC code (as LHC-Forms and forms built from the STarT Back panel 91349-1 write
    them) read as the Observations they stand for: the STarT Back items and scores answered in a questionnaire
    count as if recorded one by one."""
    ref, authored = ref_of(resource), parse_datetime(resource.get("authored"))
    status = "final" if resource.get("status") in {"completed", "amended"} else resource.get("status")
    found: list[ObservationFact] = []
    for item, answers in _answered_items(resource):
        # R4 response items carry no code: the linkId is the LOINC code where the form was built from LOINC.
        link = str(item.get("linkId") or "").strip("/").rsplit("/", 1)[-1]
        if not answers or not LOINC_CODE.fullmatch(link):
            continue
        answer = answers[0]
        quantity = _quantity(answer.get("valueQuantity"))
        if quantity is None and isinstance(answer.get("valueDecimal"), int | float):
            quantity = Quantity(float(answer["valueDecimal"]), "")
        coded, boolean, integer = answer.get("valueCoding"), answer.get("valueBoolean"), answer.get("valueInteger")
        found.append(
            ObservationFact(
                ref=_item_ref(ref, item),
                code=Concept(codings=(("http://loinc.org", link),), text=str(item.get("text") or "")),
                status=status,
                effective=authored,
                quantity=quantity,
                value_code=Concept.from_json({"coding": [coded]}) if isinstance(coded, Mapping) else None,
                value_boolean=boolean if isinstance(boolean, bool) else None,
                value_integer=integer if isinstance(integer, int) and not isinstance(integer, bool) else None,
            )
        )
    return tuple(found)


def _answer_concept(answer: Mapping[str, Any]) -> Concept | None:
    if isinstance(answer.get("valueBoolean"), bool):
        return Concept(text=str(answer["valueBoolean"]).lower())
    if isinstance(coding := answer.get("valueCoding"), Mapping):
        return Concept.from_json({"coding": [coding]})
    if isinstance(text := answer.get("valueString"), str):
        return Concept(text=text)
    return None


def allergy_fact(resource: Mapping[str, Any]) -> AllergyFact:
    return AllergyFact(
        ref=ref_of(resource),
        code=Concept.from_json(resource.get("code")),
        clinical_status=_status_code(resource.get("clinicalStatus")),
        verification_status=_status_code(resource.get("verificationStatus")),
    )


def patient_fact(resource: Mapping[str, Any]) -> PatientFact:
    birth = parse_datetime(resource.get("birthDate"))
    return PatientFact(
        id=str(resource.get("id", "")), birth_date=birth.date() if birth else None, gender=resource.get("gender")
    )


def junk_entries(bundle: Any) -> int:
    """How many entries of a Bundle hold no resource at all (so nothing can be read from them)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return 0
    return sum(
        1 for e in as_list(bundle.get("entry")) if not isinstance(e, dict) or not isinstance(e.get("resource"), dict)
    )


def iter_resources(bundle_or_resource: Any) -> Iterable[Mapping[str, Any]]:
    """Resources of a searchset Bundle (or a lone resource), skipping search `outcome` entries."""
    if not isinstance(bundle_or_resource, dict):
        return
    if bundle_or_resource.get("resourceType") != "Bundle":
        yield bundle_or_resource
        return
    for entry in as_list(bundle_or_resource.get("entry")):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        search = entry.get("search")
        if isinstance(search, dict) and search.get("mode") == "outcome":
            continue
        yield entry["resource"]
