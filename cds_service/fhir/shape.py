"""Reading FHIR JSON the way real EHRs write it: a single object where R4 has an array.

The public CDS Hooks sandbox sends a draft MedicationRequest with `category` and `reasonCode` as single
objects; strict validation rejects the whole order and its advice is lost. This normaliser wraps such an
object in a list wherever the resource's model (fhir.resources R4B) says the element repeats, at any
depth (`code.coding`, `dosageInstruction[].doseAndRate`...). It is driven by the models' cardinality,
not by a list of field names, and reports the paths it changed; it never invents or drops a value.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class


@cache
def _model(name: str) -> Any | None:
    try:
        return get_fhir_model_class(name)
    except (KeyError, ValueError, AttributeError):
        return None


def _element_type(annotation: Any) -> tuple[bool, str | None]:
    """(repeats, the element's FHIR type name) from a field annotation such as Optional[List[CodeableConceptType]]."""
    repeats = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return repeats, None
            annotation = args[0]
        elif origin in (list, typing.List):  # noqa: UP006 - the models use typing.List
            repeats = True
            annotation = typing.get_args(annotation)[0]
        else:
            break
    name = getattr(annotation, "__name__", "")
    return repeats, (name.removesuffix("Type") if name.endswith("Type") else None)


@cache
def _fields(model_name: str) -> dict[str, tuple[bool, str | None]]:
    model = _model(model_name)
    if model is None:
        return {}
    return {(f.alias or name): _element_type(f.annotation) for name, f in model.model_fields.items()}


def normalise(resource: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``resource`` with single objects wrapped where the model has arrays, and the paths changed."""
    changed: list[str] = []
    kind = resource.get("resourceType")
    out = _walk(resource, str(kind), str(kind), changed) if isinstance(kind, str) else dict(resource)
    return out, changed


def _walk(value: Mapping[str, Any], model_name: str, path: str, changed: list[str]) -> dict[str, Any]:
    fields = _fields(model_name)
    out: dict[str, Any] = {}
    for key, item in value.items():
        repeats, element = fields.get(key, (False, None))
        if repeats and isinstance(item, Mapping):
            item = [item]
            changed.append(f"{path}.{key}")
        nested = element if element and element != "Resource" and _fields(element) else None
        if nested and isinstance(item, list):
            item = [_walk(i, nested, f"{path}.{key}", changed) if isinstance(i, Mapping) else i for i in item]
        elif nested and isinstance(item, Mapping):
            item = _walk(item, nested, f"{path}.{key}", changed)
        out[key] = item
    return out
