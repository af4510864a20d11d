"""Value sets: loaded once at start-up into sets keyed by (system, code).

The files under ``knowledge/valuesets/`` are built from the curated terminology by
``scripts/build_valuesets.py``; a file either lists codes by system (``compose``) or names other value
sets to take the union of (``include``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

VALUESET_DIR = Path(__file__).parent / "knowledge" / "valuesets"

# The same code system reaches us under more than one URI (FHIR canonical URL, OID, older web address).
# Members are stored under every alias so that matching stays one set lookup per coding.
SYSTEM_ALIASES: dict[str, tuple[str, ...]] = {
    "http://snomed.info/sct": ("urn:oid:2.16.840.1.113883.6.96",),
    "http://loinc.org": ("urn:oid:2.16.840.1.113883.6.1",),
    "http://hl7.org/fhir/sid/icd-10-cm": ("urn:oid:2.16.840.1.113883.6.90",),
    "http://www.nlm.nih.gov/research/umls/rxnorm": ("urn:oid:2.16.840.1.113883.6.88",),
    "http://www.ama-assn.org/go/cpt": ("urn:oid:2.16.840.1.113883.6.12",),
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": (
        "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "http://www.nlm.nih.gov/research/umls/hcpcs",
        "urn:oid:2.16.840.1.113883.6.285",
    ),
}


@dataclass(frozen=True)
class ValueSet:
    name: str
    title: str
    codes: frozenset[tuple[str, str]]
    displays: Mapping[tuple[str, str], str] = field(default_factory=dict, compare=False, repr=False)

    def matches(self, codings: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
        """The first of ``codings`` that is a member, or None."""
        for coding in codings:
            if coding in self.codes:
                return coding
        return None


def _load_raw(directory: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def load_valuesets(directory: Path = VALUESET_DIR) -> dict[str, ValueSet]:
    raw = _load_raw(directory)
    resolved: dict[str, ValueSet] = {}

    def resolve(name: str, seen: tuple[str, ...] = ()) -> ValueSet:
        if name in resolved:
            return resolved[name]
        if name in seen:
            raise ValueError(f"value set include cycle: {' -> '.join((*seen, name))}")
        if name not in raw:
            raise KeyError(f"unknown value set {name!r}")
        body = raw[name]
        displays: dict[tuple[str, str], str] = {}
        for system, entries in body.get("compose", {}).items():
            for alias in (system, *SYSTEM_ALIASES.get(system, ())):
                displays.update(((alias, code), display) for code, display in entries.items())
        for part in body.get("include", []):
            displays.update(resolve(part, (*seen, name)).displays)
        resolved[name] = ValueSet(name, body.get("title", name), frozenset(displays), displays)
        return resolved[name]

    for name in raw:
        resolve(name)
    return resolved


def display_for(codings: Iterable[tuple[str, str]], sets: Iterable[ValueSet]) -> str | None:
    """A human name for a coded concept that arrived without display text."""
    for coding in codings:
        for valueset in sets:
            if valueset.displays.get(coding):
                return valueset.displays[coding]
    return None


@cache
def valuesets() -> dict[str, ValueSet]:
    """The packaged value sets, read once per process."""
    return load_valuesets()
