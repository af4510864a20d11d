"""Which raw FHIR resources the rules could act on, decided from the raw JSON before validation.

A large record (thousands of Observations) must not be validated wholesale on the request path:
a resource is worth validating only if one of its codes is in a value set some rule uses, or its text
names something matched by text (bed rest, a systemic steroid).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..patient_data import Selector
from ..record import codings_of, text_of
from .knowledge import Knowledge

CODE_ELEMENT = {
    "Condition": "code",
    "Observation": "code",
    "ServiceRequest": "code",
    "DeviceRequest": "codeCodeableConcept",
    "MedicationRequest": "medicationCodeableConcept",
}


def selector_for(kb: Knowledge) -> Selector:
    codes = kb.relevant_codes()
    names = (*kb.steroid_ingredients, *kb.nsaid_names)

    def is_relevant(resource: Mapping[str, Any]) -> bool:
        kind = resource.get("resourceType")
        element = CODE_ELEMENT.get(str(kind))
        if element is None:
            return False
        if not codes.isdisjoint(codings_of(resource, element)):
            return True
        if kind in {"ServiceRequest", "DeviceRequest"}:
            text = text_of(resource, element)
            return any(p.search(text) for p in kb.bed_rest_patterns)
        if kind == "MedicationRequest":
            if "medicationReference" in resource:
                return True  # the name is in a contained or referenced Medication: keep and let rules look
            text = text_of(resource, element).lower()
            return any(name in text for name in names)
        return False

    return Selector(is_relevant)
