"""fhir.resources models for FHIR R4 data.

fhir.resources 8 ships R5 (its default), R4B and STU3, but no plain R4; the R4B models read the R4
resources this service uses (Patient, Condition, Observation, ServiceRequest, DeviceRequest,
MedicationRequest, MedicationStatement, Procedure, Encounter, QuestionnaireResponse, AllergyIntolerance)
because those did not change between R4 and R4B.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

_MODULES = {
    "Patient": "patient",
    "Condition": "condition",
    "Observation": "observation",
    "ServiceRequest": "servicerequest",
    "DeviceRequest": "devicerequest",
    "MedicationRequest": "medicationrequest",
    "MedicationStatement": "medicationstatement",
    "Procedure": "procedure",
    "Encounter": "encounter",
    "QuestionnaireResponse": "questionnaireresponse",
    "AllergyIntolerance": "allergyintolerance",
    "Bundle": "bundle",
    "OperationOutcome": "operationoutcome",
}


@cache
def model_for(resource_type: str) -> Any | None:
    """The R4B model class for a resource type, or None for types this service does not read."""
    module = _MODULES.get(resource_type)
    if module is None:
        return None
    return getattr(importlib.import_module(f"fhir.resources.R4B.{module}"), resource_type)


def preload() -> None:
    """Import every model at start-up so the first request does not pay for it."""
    for resource_type in _MODULES:
        model_for(resource_type)
