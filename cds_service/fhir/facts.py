"""FHIR R4 JSON to facts (cds_service.domain.facts): what the assembler calls for each resource a rule reads.

Building them is split in two so that large records stay fast: selection (cds_service.fhir.selection) picks
the resources a rule could act on from the raw JSON (a set lookup per coding), and only those are validated
with fhir.resources (cds_service.fhir.validation) and turned into facts here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from cds_service.domain.facts import (
    EXCLUDED_STATUSES,
    EXCLUDED_VERIFICATION,
    AllergyFact,
    AnswerFact,
    Concept,
    ConditionFact,
    DoseFact,
    EncounterFact,
    MedicationFact,
    ObservationComponentFact,
    ObservationFact,
    OrderFact,
    PatientFact,
    ProcedureFact,
    Quantity,
    as_list,
    joined_text,
    parse_datetime,
)
from cds_service.fhir.validation import validate
from cds_service.knowledge.answers import YesNo

log = logging.getLogger(__name__)


def _status_code(value: Any) -> str | None:
    """The code of a status CodeableConcept; the system is implied by the element, so it is not required."""
    if not isinstance(value, dict):
        return None
    for coding in as_list(value.get("coding")):
        if isinstance(coding, dict) and isinstance(code := coding.get("code"), str):
            return code
    return None


def _quantity(value: Any) -> Quantity | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("value"), int | float):
        return None
    unit = str(value.get("code") or value.get("unit") or "")
    return Quantity(float(value["value"]), unit, str(value.get("system") or ""))


def _period_start(value: Any) -> datetime | None:
    return parse_datetime(value.get("start")) if isinstance(value, Mapping) else None


def _reference(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(reference := value.get("reference"), str):
        return reference
    return None


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


def answer_facts(resource: Mapping[str, Any], yes_or_no: YesNo) -> tuple[AnswerFact, ...]:
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
            yes = word in yes_or_no.yes.words or bool(yes_or_no.yes.codes.intersection(said.codings))
            no = word in yes_or_no.no.words or bool(yes_or_no.no.codes.intersection(said.codings))
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


def read_patient(resource: Mapping[str, Any]) -> PatientFact | None:
    """The Patient resource as a fact, when it validates (PatientRecord.read_patient)."""
    return patient_fact(resource) if validate(resource) else None
