"""The knowledge as a FHIR R4 package (issue 32): value sets, one PlanDefinition per rule, the orders the cards
suggest as ActivityDefinitions, the thresholds as a Library and the override reasons as a CodeSystem, in the
NPM package layout FHIR tooling reads (`package/package.json`, one JSON file per resource, `.index.json`).

Built from the knowledge files and the rule registry alone, with no clock and no randomness, so the same
knowledge gives the same bytes: `make fhir-package` writes `fhir_package/`, and a test rebuilds it and fails
on any difference from the committed copy. Every resource is validated with fhir.resources (R4B models).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import importlib
import io
import json
import re
import sys
import tarfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds_service.domain.codes import canonical_system
from cds_service.knowledge.loader import VALUESET_DIR, read_json, read_knowledge
from cds_service.rules.catalog import RuleInfo, rules
from cds_service.rules.registry import RULE_IDS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = ROOT / "fhir_package"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
VSAC_SOURCE = re.compile(r"^VSAC (http://cts\.nlm\.nih\.gov/fhir/ValueSet/[0-9.]+) version (\S+)")
PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
LIBRARY_TYPE = "http://terminology.hl7.org/CodeSystem/library-type"
ACTION_TYPE = "http://terminology.hl7.org/CodeSystem/action-type"
# PlanDefinition has no element for the reasons a card offers for dismissing it: an extension of this package.
OVERRIDE_REASON_EXTENSION = "StructureDefinition/override-reason"


@dataclass(frozen=True)
class Meta:
    name: str
    version: str
    date: str
    canonical: str
    title: str
    description: str
    publisher: str
    license: str
    rules: Mapping[str, Mapping[str, str]]

    def url(self, resource_type: str, resource_id: str) -> str:
        return f"{self.canonical}/{resource_type}/{resource_id}"


def fhir_id(name: str) -> str:
    """A knowledge name as a FHIR id ([A-Za-z0-9-.]{1,64}): value set names use underscores."""
    return name.replace("_", "-")


def _meta() -> Meta:
    raw = read_knowledge("fhir_package.json")
    return Meta(**{k: v for k, v in raw.items() if not k.startswith("_")})


def _common(meta: Meta, resource_type: str, resource_id: str, title: str) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "id": resource_id,
        "url": meta.url(resource_type, resource_id),
        "version": meta.version,
        "name": re.sub(r"[^A-Za-z0-9]", "", resource_id.title()),
        "title": title,
        "status": "active",
        "date": meta.date,
        "publisher": meta.publisher,
    }


# --- value sets -------------------------------------------------------------------------------------------


def _shipped(name: str) -> dict[str, Any]:
    body: dict[str, Any] = read_json(VALUESET_DIR / f"{name}.json")
    return body


def expansion_codes(name: str, seen: tuple[str, ...] = ()) -> dict[tuple[str, str], str]:
    """(system, code) -> display of a shipped value set, includes resolved: what the rules match."""
    body = _shipped(name)
    codes = {
        (canonical_system(system), code): display
        for system, entries in body.get("compose", {}).items()
        for code, display in entries.items()
    }
    for part in body.get("include", []):
        if part not in seen:
            codes.update(expansion_codes(part, (*seen, name)))
    return codes


def _under(code: str, categories: Iterable[str]) -> bool:
    """ICD-10-CM is-a by the code's spelling: a category's descendants extend it (S32.0 -> S32.010A)."""
    return any(code.startswith(category) for category in categories)


def _concepts(codes: Mapping[tuple[str, str], str]) -> list[dict[str, Any]]:
    by_system: dict[str, list[dict[str, str]]] = {}
    for (system, code), display in sorted(codes.items()):
        by_system.setdefault(system, []).append({"code": code, "display": display} if display else {"code": code})
    return [{"system": system, "concept": concepts} for system, concepts in by_system.items()]


def _compose(meta: Meta, name: str, definitions: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The value set's definition as FHIR compose, and its provenance in words.

    Named sources as FHIR can state them: ICD-10-CM categories as is-a filters, VSAC value sets by their
    canonical (OID) and version, this package's other value sets by theirs, and the codes no filter or
    reference covers listed one by one. The result is checked against the shipped expansion; where the
    build did something compose cannot say (a VSAC subset chosen by display, say), the codes are listed."""
    body = _shipped(name)
    shipped = expansion_codes(name)
    source = str(body.get("source", ""))
    vsac = VSAC_SOURCE.match(source)
    if vsac:
        return {"include": [{"valueSet": [f"{vsac.group(1)}|{vsac.group(2)}"]}]}, source
    definition = definitions.get(name, {})
    parts = [*body.get("include", []), *definition.get("vsac", []), *definition.get("include", [])]
    parts = [p for p in dict.fromkeys(parts) if (VALUESET_DIR / f"{p}.json").is_file() and p != name]
    categories = list(body.get("icd10cm_categories", []))
    excluded_categories = list(body.get("icd10cm_exclude", definition.get("icd10cm_exclude", [])))
    referenced: dict[tuple[str, str], str] = {}
    for part in parts:
        referenced.update(expansion_codes(part))
    excluded_sets = [p for p in definition.get("exclude", []) if (VALUESET_DIR / f"{p}.json").is_file()]
    excluded: set[tuple[str, str]] = {c for p in excluded_sets for c in expansion_codes(p)}

    def out(key: tuple[str, str]) -> bool:
        return key in excluded or (key[0] == ICD10CM and _under(key[1], excluded_categories))

    covered = {k for k in shipped if (k[0] == ICD10CM and _under(k[1], categories)) or k in referenced}
    listed = {k: v for k, v in shipped.items() if k not in covered}
    # What compose says, as far as it can be checked here (the ICD-10-CM tree itself is not): every shipped
    # code is included and not excluded, and every referenced code that is not excluded is shipped.
    stated = {k for k in shipped if not out(k)} == set(shipped) and all(k in shipped for k in referenced if not out(k))
    if not stated:
        return {"include": _concepts(shipped)}, source
    include: list[dict[str, Any]] = [
        {"system": ICD10CM, "filter": [{"property": "concept", "op": "is-a", "value": c}]} for c in categories
    ]
    include += [{"valueSet": [meta.url("ValueSet", fhir_id(p))]} for p in parts]
    include += _concepts(listed)
    compose: dict[str, Any] = {"include": include}
    exclude = [
        {"system": ICD10CM, "filter": [{"property": "concept", "op": "is-a", "value": c}]} for c in excluded_categories
    ]
    exclude += [{"valueSet": [meta.url("ValueSet", fhir_id(p))]} for p in excluded_sets]
    if exclude:
        compose["exclude"] = exclude
    return compose, source


def value_set(meta: Meta, name: str, definitions: Mapping[str, Any]) -> dict[str, Any]:
    body = _shipped(name)
    compose, source = _compose(meta, name, definitions)
    codes = expansion_codes(name)
    resource = _common(meta, "ValueSet", fhir_id(name), str(body.get("title", name)))
    resource["description"] = f"Built by scripts/build_valuesets.py from: {source}" if source else resource["title"]
    resource["compose"] = compose
    resource["expansion"] = {
        "identifier": f"urn:uuid:{_stable_uuid(meta, name)}",
        "timestamp": meta.date,
        "total": len(codes),
        "contains": [
            {"system": system, "code": code, **({"display": display} if display else {})}
            for (system, code), display in sorted(codes.items())
        ],
    }
    return resource


def _stable_uuid(meta: Meta, name: str) -> str:
    """The same expansion gets the same identifier: a name-based (version 5) uuid."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meta.url('ValueSet', fhir_id(name))}|{meta.version}"))


# --- rules, orders, thresholds ----------------------------------------------------------------------------


def _fill(text: str, values: Mapping[str, Any]) -> str:
    """Threshold placeholders filled; the ones the record fills ({order}, {episode}) stay as written."""
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: str(values.get(m.group(1), m.group(0))), text)


def _citation(citation: Mapping[str, str]) -> dict[str, Any]:
    artifact: dict[str, Any] = {"type": "citation", "display": citation["label"]}
    if citation.get("url"):
        artifact["url"] = citation["url"]
    return artifact


def plan_definition(meta: Meta, info: RuleInfo, knowledge: Mapping[str, Any]) -> dict[str, Any]:
    cards, citations, reasons = knowledge["cards"], knowledge["citations"], knowledge["override_reasons"]
    spec = cards["rules"][info.id]
    values = {name: t["value"] for name, t in knowledge["thresholds"]["thresholds"].items()}
    words = meta.rules[info.id]
    resource = _common(meta, "PlanDefinition", info.id, spec["topic_display"])
    resource["type"] = {"coding": [{"system": PLAN_TYPE, "code": "eca-rule", "display": "ECA Rule"}]}
    resource["description"] = spec["statement"]
    resource["topic"] = [{"coding": [{"system": cards["topic_system"], "code": spec["topic_code"]}]}]
    cited = [spec["citation"], *(v["citation"] for v in spec.get("variants", {}).values() if "citation" in v)]
    resource["relatedArtifact"] = [_citation(citations[c]) for c in dict.fromkeys(cited)]
    if info.thresholds:
        resource["library"] = [meta.url("Library", "thresholds")]
    condition: dict[str, Any] = {"kind": "applicability", "expression": {"description": words["applies_when"]}}
    if words.get("fhirpath"):
        condition["expression"] |= {"language": "text/fhirpath", "expression": _canonical(words["fhirpath"], meta)}
    else:
        condition["expression"]["language"] = "text/plain"
        condition["expression"]["expression"] = words["applies_when"]
    action: dict[str, Any] = {
        "title": _fill(spec.get("summary") or spec["topic_display"], values),
        "description": _fill(spec.get("detail") or spec["statement"], values),
        "trigger": [{"type": "named-event", "name": hook} for hook in sorted(info.hooks)],
        "condition": [condition],
    }
    offered = spec.get("override_reasons", [])
    if offered:
        action["extension"] = [
            {
                "url": f"{meta.canonical}/{OVERRIDE_REASON_EXTENSION}",
                "valueCoding": {"system": reasons["system"], "code": code, "display": reasons["reasons"][code]},
            }
            for code in offered
        ]
    sub: list[dict[str, Any]] = [
        {
            "title": _fill(s["label"], values),
            "definitionCanonical": meta.url("ActivityDefinition", fhir_id(s["create"])),
        }
        for s in spec.get("suggestions", [])
        if s.get("create")
    ]
    sub += [
        {"title": _fill(s["label"], values), "type": {"coding": [{"system": ACTION_TYPE, "code": "remove"}]}}
        for s in spec.get("suggestions", [])
        if s.get("delete_target")
    ]
    for variant, vspec in spec.get("variants", {}).items():
        shown = {"id": variant, "title": _fill(vspec.get("summary") or spec.get("summary") or variant, values)}
        if vspec.get("detail"):
            shown["description"] = _fill(vspec["detail"], values)
        sub.append(shown)
    if sub:
        action["action"] = sub
    resource["action"] = [action]
    return resource


def _canonical(text: str, meta: Meta) -> str:
    return text.replace("{canonical}", meta.canonical)


def activity_definition(meta: Meta, name: str, template: Mapping[str, Any]) -> dict[str, Any]:
    code = template.get("code") or template.get("medicationCodeableConcept") or {}
    resource = _common(meta, "ActivityDefinition", fhir_id(name), str(code.get("text") or name))
    resource["kind"] = template["resourceType"]
    resource["intent"] = "proposal"
    if template["resourceType"] == "MedicationRequest":
        resource["productCodeableConcept"] = template["medicationCodeableConcept"]
        resource["dosage"] = template.get("dosageInstruction", [])
    else:
        resource["code"] = template["code"]
    notes = [n["text"] for n in template.get("note", []) if n.get("text")]
    resource["description"] = " ".join(notes) or resource["title"]
    return resource


def thresholds_library(meta: Meta, knowledge: Mapping[str, Any]) -> dict[str, Any]:
    thresholds, citations = knowledge["thresholds"]["thresholds"], knowledge["citations"]
    resource = _common(meta, "Library", "thresholds", "Thresholds of the low back pain rules")
    resource["type"] = {"coding": [{"system": LIBRARY_TYPE, "code": "asset-collection"}]}
    resource["description"] = (
        "Every number a rule reads, as a parameter: its value and unit in the documentation, with the statement "
        "it comes from; the same values as JSON in the content."
    )
    resource["parameter"] = [
        {
            "name": name,
            "use": "in",
            "min": 1,
            "max": "1",
            "type": "Quantity" if t.get("unit") else "decimal",
            "documentation": f"{t['value']} {t.get('unit', '')}".strip() + f". {t['source']}",
        }
        for name, t in thresholds.items()
    ]
    resource["relatedArtifact"] = [
        _citation(citations[c]) for c in dict.fromkeys(t["citation"] for t in thresholds.values())
    ]
    values = {name: {k: t[k] for k in ("value", "unit") if k in t} for name, t in thresholds.items()}
    data = json.dumps(values, indent=2, ensure_ascii=False).encode()
    resource["content"] = [{"contentType": "application/json", "data": base64.b64encode(data).decode()}]
    return resource


def override_reason_codes(meta: Meta, reasons: Mapping[str, Any]) -> dict[str, Any]:
    resource = _common(meta, "CodeSystem", "override-reason", "Reasons a clinician gives for dismissing a card")
    resource["url"] = reasons["system"]  # the system the cards' overrideReasons already name
    resource["content"] = "complete"
    resource["caseSensitive"] = True
    resource["concept"] = [{"code": code, "display": display} for code, display in reasons["reasons"].items()]
    resource["count"] = len(resource["concept"])
    return resource


# --- the package ------------------------------------------------------------------------------------------


def _knowledge() -> dict[str, Any]:
    return {
        "cards": read_knowledge("cards.json"),
        "citations": read_knowledge("citations.json"),
        "override_reasons": read_knowledge("override_reasons.json"),
        "thresholds": read_knowledge("thresholds.json"),
        "definitions": read_knowledge("valueset_definitions.json")["valuesets"],
    }


def resources() -> list[dict[str, Any]]:
    """Every resource of the package, in a fixed order, each validated with fhir.resources."""
    meta, knowledge = _meta(), _knowledge()
    missing = sorted(RULE_IDS - set(meta.rules))
    if missing:
        raise RuntimeError(f"fhir_package.json has no conditions for rule(s) {missing}")
    names = sorted(path.stem for path in VALUESET_DIR.glob("*.json"))
    out = [value_set(meta, name, knowledge["definitions"]) for name in names]
    out += [plan_definition(meta, rules()[rule], knowledge) for rule in sorted(RULE_IDS)]
    templates = knowledge["cards"]["order_templates"]
    out += [activity_definition(meta, name, templates[name]) for name in sorted(templates)]
    out += [thresholds_library(meta, knowledge), override_reason_codes(meta, knowledge["override_reasons"])]
    for resource in out:
        validate(resource)
    return out


def validate(resource: Mapping[str, Any]) -> None:
    """fhir.resources' R4B model of the resource's type; ValueError (pydantic's) when it is not valid."""
    kind = str(resource["resourceType"])
    model = getattr(importlib.import_module(f"fhir.resources.R4B.{kind.lower()}"), kind)
    model.model_validate(resource)


def _text(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def package_files() -> dict[str, bytes]:
    """Path inside the package (`package/...`) -> bytes: the same knowledge always gives the same bytes."""
    meta = _meta()
    files: dict[str, bytes] = {}
    index = []
    for resource in resources():
        filename = f"{resource['resourceType']}-{resource['id']}.json"
        files[f"package/{filename}"] = _text(resource)
        entry: dict[str, Any] = {k: resource[k] for k in ("resourceType", "id", "url", "version") if k in resource}
        if resource["resourceType"] == "PlanDefinition":
            entry["type"] = "eca-rule"
        index.append({"filename": filename, **entry})
    files["package/.index.json"] = _text({"index-version": 1, "files": index})
    files["package/package.json"] = _text(
        {
            "name": meta.name,
            "version": meta.version,
            "title": meta.title,
            "description": meta.description,
            "canonical": meta.canonical,
            "fhirVersions": ["4.0.1"],
            "type": "fhir.ig",
            "license": meta.license,
            "author": meta.publisher,
            "dependencies": {"hl7.fhir.r4.core": "4.0.1"},
        }
    )
    return dict(sorted(files.items()))


def write(directory: Path = PACKAGE_DIR) -> list[Path]:
    """Write the package unpacked into `directory` (committed, so that reviewers read it in the repository)
    and as `directory/<name>-<version>.tgz` (what FHIR tools install); stale resource files are removed."""
    files = package_files()
    target = directory / "package"
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob("*.json"):
        if f"package/{stale.name}" not in files:
            stale.unlink()
    written = []
    for relative, data in files.items():
        path = directory / relative
        path.write_bytes(data)
        written.append(path)
    return written


def tarball(files: Mapping[str, bytes]) -> bytes:
    """The package as FHIR tools install it (a gzipped tar of package/), byte for byte reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def differences(directory: Path = PACKAGE_DIR) -> list[str]:
    """What differs between the committed package and one built now (empty when they agree)."""
    files = package_files()
    on_disk = {f"package/{p.name}": p.read_bytes() for p in (directory / "package").glob("*.json")}  # .index.json too
    problems = [f"{name} is missing" for name in files if name not in on_disk]
    problems += [f"{name} is not built from the knowledge any more" for name in on_disk if name not in files]
    problems += [f"{name} differs" for name in files if name in on_disk and on_disk[name] != files[name]]
    return problems


def transaction(directory: Path = PACKAGE_DIR) -> dict[str, Any]:
    """The committed package as a FHIR transaction: each resource PUT at its own id, so loading twice is
    loading once."""
    entries = []
    for path in sorted((directory / "package").glob("*.json")):
        if path.name in {"package.json", ".index.json"}:
            continue
        resource = json.loads(path.read_text())
        entries.append(
            {
                "fullUrl": resource["url"],
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the knowledge as a FHIR R4 package")
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR, help="folder of the unpacked package")
    parser.add_argument("--tgz", type=Path, help="also write the package as a .tgz here")
    parser.add_argument("--check", action="store_true", help="only say whether the committed package is current")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences(args.out)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("the FHIR package is out of date: run `make fhir-package`", file=sys.stderr)
        return 1 if problems else 0
    written = write(args.out)
    print(f"wrote {len(written)} files to {args.out / 'package'}")
    if args.tgz:
        args.tgz.parent.mkdir(parents=True, exist_ok=True)
        args.tgz.write_bytes(tarball(package_files()))
        print(f"wrote {args.tgz}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
