"""Assemble one PatientRecord from what the EHR sent, fetching what is missing.

Order of business, per the CDS Hooks 2.0 spec ("Prefetch Template" and "FHIR Resource Access"):
1. use each prefetch key the service declared; a key that is missing, ``null`` or an OperationOutcome
   counts as missing, and a prefetched searchset with a ``next`` link is followed;
2. fetch every missing key from ``fhirServer`` with the EHR's bearer token, all queries concurrently;
3. a *required* key that cannot be obtained means no safe advice is possible: ``DataUnavailable``
   (the HTTP layer answers 412); an *optional* one becomes a ``DataGap`` that the cards name.
Only resources a rule can act on are validated and turned into facts (see ``cds_service.fhir.facts``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from cds_service import metrics
from cds_service.cds_hooks.protocol import CdsService, HookRequest, PrefetchKey
from cds_service.domain import facts
from cds_service.errors import DataUnavailable, FhirAccessError, Unobtainable
from cds_service.fhir import facts as mapping
from cds_service.fhir import validation
from cds_service.fhir.client import FhirClient, SearchResult, check_fhir_server
from cds_service.fhir.shape import normalise
from cds_service.knowledge.answers import YesNo
from cds_service.settings import Settings

log = logging.getLogger(__name__)


# Prefetch content whose facts are kept per process (ReadCache): about 600 typical charts of 28 KB. Measured
# with 1,200 distinct charts (make bench's W6 shape), a full cache keeps about 20 MB alive per worker.
READ_CACHE_BYTES = 16 * 1024 * 1024


class Selector(Protocol):
    """Which raw resources are worth validating: the rules' interest (rules.selection builds one)."""

    def is_relevant(self, resource: Mapping[str, Any]) -> bool: ...

    @property
    def answers(self) -> YesNo:
        """Yes and no as records say them, for questionnaire answers."""
        ...


def _has_next(bundle: Mapping[str, Any]) -> bool:
    return any(
        isinstance(link, Mapping) and link.get("relation") == "next" for link in facts.as_list(bundle.get("link"))
    )


def _usable_prefetch(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") not in (None, "OperationOutcome")


class PatientDataAssembler:
    def __init__(self, settings: Settings, client: FhirClient, executor: Executor, selector: Selector) -> None:
        self.settings = settings
        self.client = client
        self.executor = executor
        self.selector = selector
        self.reads = ReadCache(READ_CACHE_BYTES)

    def assemble(
        self, service: CdsService, request: HookRequest, allowed_servers: tuple[str, ...] | None = None
    ) -> facts.PatientRecord:
        base: str | None = None
        if request.fhir_server is not None:
            # Refuse a disallowed server before anything is sent, whether or not we end up needing it.
            base = check_fhir_server(request.fhir_server, self.settings, allowed_servers)

        deadline = time.monotonic() + self.settings.hook_deadline_s
        raw: dict[str, Mapping[str, Any] | list[dict[str, Any]]] = {}  # a prefetched value, or fetched resources
        gaps: list[facts.DataGap] = []
        missing: list[Unobtainable] = []
        jobs = {}
        for key in service.prefetch:
            found = request.prefetch.get(key.name)
            value: Mapping[str, Any] = found if isinstance(found, Mapping) and _usable_prefetch(found) else {}
            # Content of another shape than the template's is not provided: fetched, else 412 or "not checked".
            misfit = key.mismatch(value) if value else None
            if misfit is not None:
                log.warning("prefetch does not fit its template", extra={"key": key.name, "reason": misfit})
                value = {}
            needs_paging = value.get("resourceType") == "Bundle" and _has_next(value)
            if value and not needs_paging:
                raw[key.name] = value
                continue
            if base is None:
                if needs_paging:
                    why = "prefetch has further pages but no fhirServer was given"
                elif misfit is not None:
                    why = f"the prefetch held {misfit}, and no fhirServer was given"
                else:
                    why = "not prefetched and no fhirServer was given"
                self._unobtainable(key, request.hook, why, missing, gaps)
                continue
            if needs_paging:
                jobs[key] = self.executor.submit(
                    self.client.follow, base, value, request.access_token, deadline=deadline
                )
            else:
                query = key.render(request.context)
                jobs[key] = self.executor.submit(self.client.search, base, query, request.access_token, deadline)

        for key, future in jobs.items():
            try:
                # The hard bound: whatever a server does, this call waits no longer than the budget (plus a
                # moment for the reader to notice); a reader still blocked is left to end on its own.
                result: SearchResult = future.result(timeout=max(0.0, deadline - time.monotonic()) + 0.25)
            except FuturesTimeout:
                self._unobtainable(key, request.hook, "the FHIR server did not answer in time", missing, gaps)
                continue
            except FhirAccessError as exc:
                self._unobtainable(key, request.hook, exc.reason, missing, gaps)
                continue
            if result.truncated:
                metrics.FHIR_BOUND_REACHED.inc()
                gaps.append(
                    facts.DataGap(
                        key.name, key.purpose, f"only the first {len(result.resources)} resources were checked"
                    )
                )
            raw[key.name] = result.resources

        if missing:
            raise DataUnavailable(missing)
        return self._build(request, raw, gaps)

    def _unobtainable(
        self, key: PrefetchKey, hook: str, reason: str, missing: list[Unobtainable], gaps: list[facts.DataGap]
    ) -> None:
        if key.is_required(hook):
            missing.append(Unobtainable(key.name, key.purpose, reason))
        else:
            gaps.append(facts.DataGap(key.name, key.purpose, reason))

    def _build(
        self,
        request: HookRequest,
        raw: Mapping[str, Mapping[str, Any] | list[dict[str, Any]]],
        gaps: list[facts.DataGap],
    ) -> facts.PatientRecord:
        reads = [self.reads.read(key, source, self.selector) for key, source in raw.items()]
        patient = next((r.patient for r in reversed(reads) if r.patient is not None), None)
        read = [draft_order_fact(o, request.patient_id) for o in request.draft_orders]
        drafts = tuple(d for d in read if d is not None and not isinstance(d, facts.UnreadableOrder))
        unreadable = tuple(d for d in read if isinstance(d, facts.UnreadableOrder))
        return facts.PatientRecord(
            patient_id=request.patient_id,
            patient_resource=patient,
            read_patient=mapping.read_patient,
            conditions=tuple(_unique(f for r in reads for f in r.conditions)),
            observations=tuple(_unique(f for r in reads for f in r.observations)),
            orders=tuple(_unique(f for r in reads for f in r.orders)),
            medications=tuple(_unique(f for r in reads for f in r.medications)),
            draft_orders=drafts,
            gaps=(*(g for r in reads for g in r.gaps), *gaps),
            allergies=tuple(_unique(f for r in reads for f in r.allergies)),
            unreadable_drafts=unreadable,
            procedures=tuple(_unique(f for r in reads for f in r.procedures)),
            encounters=tuple(_unique(f for r in reads for f in r.encounters)),
            answers=tuple(_unique(f for r in reads for f in r.answers)),
        )


@dataclass(frozen=True)
class KeyRead:
    """What one prefetch key's data yields: the facts the rules can act on, and what could not be read."""

    patient: Mapping[str, Any] | None
    conditions: tuple[facts.ConditionFact, ...]
    observations: tuple[facts.ObservationFact, ...]
    orders: tuple[facts.OrderFact, ...]
    medications: tuple[facts.MedicationFact, ...]
    allergies: tuple[facts.AllergyFact, ...]
    procedures: tuple[facts.ProcedureFact, ...]
    encounters: tuple[facts.EncounterFact, ...]
    answers: tuple[facts.AnswerFact, ...]
    gaps: tuple[facts.DataGap, ...]
    invalid: tuple[validation.InvalidResource, ...]  # logged again on every call that reads them


def worth_reading(resource: Mapping[str, Any], selector: Selector) -> bool:
    """Whether a rule could act on this resource, so that it is validated and read into facts."""
    # Relevance first: it rejects most of a large record with one set lookup per coding.
    return selector.is_relevant(resource) and not mapping.is_excluded(resource)


def read_key(key: str, source: Mapping[str, Any] | Sequence[Any], selector: Selector) -> KeyRead:
    """Read one key's resources (a prefetched Bundle or resource, or the resources fetched for it)."""
    conditions, observations, orders, medications, allergies, procedures = [], [], [], [], [], []
    encounters: list[facts.EncounterFact] = []
    answers: list[facts.AnswerFact] = []
    gaps: list[facts.DataGap] = []
    invalid: list[validation.InvalidResource] = []
    patient = None
    resources = list(mapping.iter_resources(source) if isinstance(source, Mapping) else source)
    # Medications a search brought with its orders or statements (_include): looked up by reference.
    included = {
        f"Medication/{r.get('id')}": r for r in resources if r.get("resourceType") == "Medication" and "code" in r
    }
    if junk := mapping.junk_entries(source):
        # Named, never dropped silently: an entry that could not be read could be the red flag.
        gaps.append(facts.DataGap(key, f"{junk} {key} bundle entries", "hold no resource and could not be read"))
    for resource in resources:
        kind = resource.get("resourceType")
        if kind == "Patient":
            patient = resource
            continue
        if not worth_reading(resource, selector):
            continue
        if found := validation.problems(resource):
            invalid.append(validation.InvalidResource(str(kind), resource.get("id"), found))
            # Said on the cards: an unreadable resource could be the red flag that changes the advice.
            gaps.append(facts.DataGap(key, mapping.ref_of(resource), "is not valid FHIR and could not be read"))
            continue
        if kind == "Condition":
            conditions.append(mapping.condition_fact(resource))
        elif kind == "Observation":
            observations.append(mapping.observation_fact(resource))
        elif kind in {"ServiceRequest", "DeviceRequest"}:
            orders.append(mapping.order_fact(resource, is_draft=False))
        elif kind == "MedicationRequest":
            medications.append(mapping.medication_fact(with_medication(resource, included), is_draft=False))
        elif kind == "MedicationStatement":
            medications.append(mapping.medication_statement_fact(with_medication(resource, included)))
        elif kind == "AllergyIntolerance":
            allergies.append(mapping.allergy_fact(resource))
        elif kind == "Procedure":
            procedures.append(mapping.procedure_fact(resource))
        elif kind == "Encounter":
            encounters.append(mapping.encounter_fact(resource))
        elif kind == "QuestionnaireResponse":
            answers.extend(mapping.answer_facts(resource, selector.answers))
            observations.extend(mapping.questionnaire_observations(resource))
    return KeyRead(
        patient,
        tuple(conditions),
        tuple(observations),
        tuple(orders),
        tuple(medications),
        tuple(allergies),
        tuple(procedures),
        tuple(encounters),
        tuple(answers),
        tuple(gaps),
        tuple(invalid),
    )


class ReadCache:
    """What each key's exact content yielded, kept for the next call that sends the same content.

    An EHR sends the same chart on every hook of a session (patient-view, each order-select as the
    clinician picks orders, order-sign): reading it again gives the same facts, so the facts are kept,
    keyed by the key's name and a SHA-256 digest of its exact serialised content (a collision is not a
    practical possibility; any change to any resource is a different key). SHA-256, not BLAKE2b: OpenSSL
    runs it on the SHA instructions of current x86 and ARM CPUs, where it hashes a typical chart in half
    the time (17 against 34 us for 26 KB on the benchmark machine, issue 17). What reading depends on
    besides the content only grows more certain with time (a temperature too old to select stays too old;
    the rules check every window again on the facts). Bounded by the content bytes its entries stand for,
    a proxy of what their facts keep alive; oldest first out. Facts are frozen, and the resources they hold
    are never modified after reading."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[tuple[str, bytes], tuple[KeyRead, int]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def read(self, key: str, source: Mapping[str, Any] | Sequence[Any], selector: Selector) -> KeyRead:
        try:
            content = orjson.dumps(source)
        except orjson.JSONEncodeError:  # past orjson's limits (nesting, big integers): read without the cache
            return _logged(read_key(key, source, selector))
        entry = (key, hashlib.sha256(content).digest())
        found = self._entries.get(entry)
        if found is not None:
            return _logged(found[0])
        result = _logged(read_key(key, source, selector))
        size = len(content)
        if size <= self.max_bytes // 4:  # one huge record must not empty the cache for everyone
            with self._lock:
                while self._bytes + size > self.max_bytes and self._entries:
                    oldest = next(iter(self._entries))
                    self._bytes -= self._entries.pop(oldest)[1]
                if entry not in self._entries:
                    self._entries[entry] = (result, size)
                    self._bytes += size
        return result


def _logged(read: KeyRead) -> KeyRead:
    for item in read.invalid:
        validation.log_invalid(item)
    return read


def _unique(items: Iterable[Any]) -> list[Any]:
    """The same resource can arrive through two prefetch keys; keep it once."""
    seen: set[str] = set()
    out = []
    for fact in items:
        if fact.ref not in seen:
            seen.add(fact.ref)
            out.append(fact)
    return out


def with_contained_medication(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    """Resolve ``medicationReference: #id`` to the contained Medication's code, as EHRs often send it."""
    return with_medication(resource, {})


def with_medication(resource: Mapping[str, Any], included: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    """Resolve ``medicationReference`` to the Medication's code: contained (``#id``), or included in the same
    search (``Medication/id``)."""
    reference = resource.get("medicationReference")
    if "medicationCodeableConcept" in resource or not isinstance(reference, Mapping):
        return resource
    target = str(reference.get("reference") or "")
    for contained in facts.as_list(resource.get("contained")):
        if isinstance(contained, Mapping) and f"#{contained.get('id')}" == target and "code" in contained:
            return {**resource, "medicationCodeableConcept": contained["code"]}
    medication = included.get(target)
    if medication is not None:
        return {**resource, "medicationCodeableConcept": medication["code"]}
    return resource


def filled_draft(reshaped: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """A reshaped draft with the 1..1 elements EHRs leave out of drafts filled in (the draft's status and
    intent, this patient as subject, a medicine named only in a contained Medication), ready to validate."""
    filled = reshaped
    filled.setdefault("status", "draft")
    filled.setdefault("intent", "order")
    filled.setdefault("subject", {"reference": f"Patient/{patient_id}"})
    if filled["resourceType"] == "MedicationRequest":
        filled = dict(with_contained_medication(filled))
        if "medicationCodeableConcept" not in filled and "medicationReference" not in filled:
            filled["medicationCodeableConcept"] = {"text": "unspecified medication"}
    return filled


def draft_order_fact(resource: Mapping[str, Any], patient_id: str) -> facts.Order | facts.UnreadableOrder | None:
    """A draft order as real EHRs send it: single objects where R4 has arrays are wrapped (fhir_shape), and
    missing 1..1 elements are filled before validation. An order that still fails is returned as unreadable,
    so the cards can say it was not checked."""
    if mapping.is_excluded(resource):
        return None
    try:
        reshaped, changed = normalise(resource)
    except RecursionError:
        return facts.UnreadableOrder(mapping.ref_of(resource), "an order", ("(nested too deeply to read)",))
    if changed:
        log.info("draft order reshaped", extra={"resource_type": resource.get("resourceType"), "reshaped": changed})
    filled = filled_draft(reshaped, patient_id)
    if not validation.validate(filled):
        concept = filled.get("medicationCodeableConcept") or filled.get("code") or filled.get("codeCodeableConcept")
        label = facts.Concept.from_json(concept).label() if isinstance(concept, Mapping) else "an order"
        return facts.UnreadableOrder(mapping.ref_of(filled), label, validation.problems(filled))
    if filled["resourceType"] == "MedicationRequest":
        return mapping.medication_fact(filled, is_draft=True)
    return mapping.order_fact(filled, is_draft=True)
