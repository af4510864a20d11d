"""Code systems: one code system reaches a service under more than one URI (FHIR canonical URL, OID, older web
address); codings are read under the canonical one, so that a value set holds each member once."""

from __future__ import annotations

# The same code system reaches us under more than one URI (FHIR canonical URL, OID, older web address).
# Codings are read under the canonical URI (record.Concept), so members are stored once.
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


CANONICAL_SYSTEM: dict[str, str] = {
    alias: canonical for canonical, aliases in SYSTEM_ALIASES.items() for alias in aliases
}


def canonical_system(system: str) -> str:
    return CANONICAL_SYSTEM.get(system, system)
