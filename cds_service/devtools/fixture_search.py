"""A tiny FHIR search over fixture resources, for building prefetch and for `responses` stubs.

It understands exactly the queries the service's prefetch templates use (type, patient, status,
code with system|code lists, _id reads) and fails loudly on anything else, so a new template cannot
silently be answered wrongly in tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit


def _patient_of(resource: dict[str, Any]) -> str | None:
    if resource["resourceType"] == "Patient":
        return str(resource["id"])
    ref = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return ref.split("/", 1)[1] if ref.startswith("Patient/") else None


def _codings(resource: dict[str, Any]) -> set[str]:
    out = set()
    for element in ("code", "codeCodeableConcept", "medicationCodeableConcept"):
        for coding in (resource.get(element) or {}).get("coding", []):
            out.add(f"{coding.get('system')}|{coding.get('code')}")
    return out


def search(resources: Iterable[dict[str, Any]], query: str) -> dict[str, Any]:
    """Answer ``Type?params`` or ``Type/id`` like a FHIR server would (searchset Bundle or resource)."""
    path, _, qs = query.partition("?")
    parts = path.strip("/").split("/")
    pool = list(resources)
    if len(parts) == 2:
        for resource in pool:
            if resource["resourceType"] == parts[0] and resource["id"] == parts[1]:
                return resource
        return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
    kind = parts[0]
    matches = [r for r in pool if r["resourceType"] == kind]
    for key, value in parse_qsl(qs):
        if key == "patient":
            matches = [r for r in matches if _patient_of(r) == value.removeprefix("Patient/")]
        elif key == "status":
            matches = [r for r in matches if r.get("status") in value.split(",")]
        elif key == "code":
            wanted = set(value.split(","))
            matches = [r for r in matches if _codings(r) & wanted]
        elif key == "_count":
            continue
        else:
            raise AssertionError(f"test FHIR search does not understand {key!r}")
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in matches],
    }


def path_and_query(url: str, base: str) -> str:
    parts = urlsplit(url)
    path = parts.path.removeprefix(urlsplit(base).path)
    return path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
