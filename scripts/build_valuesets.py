"""Build the service's value set files from the curated terminology in ../shared.

The service ships its own copy of every code it matches on (cds_service/knowledge/valuesets/), so a
deployment never needs the shared folder. Run this script again when the curated terminology
changes, then review the diff: it is the clinical content of the service.

    python scripts/build_valuesets.py [--shared ../shared]

The value sets named in cds_service/knowledge/valueset_definitions.json are built from ICD-10-CM
categories expanded through the official hierarchy (simple-icd-10-cm, which ships the CMS code set and
its tree), published VSAC expansions and curated codes. Expansion happens here, at build time: the
library costs about 180 MB and 2 s to load, which no service worker should pay; the shipped files hold
the expanded codes and name the categories they came from, and a test checks that they still agree.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "cds_service" / "knowledge" / "valuesets"
DEFINITIONS = ROOT / "cds_service" / "knowledge" / "valueset_definitions.json"
VENDORED_VSAC = ROOT / "terminology" / "vsac"

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
HCPCS_FHIR = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"

VSAC = {
    "cancer": "ValueSet-2.16.840.1.113762.1.4.1111.161.json",
    "urinary_retention": "ValueSet-2.16.840.1.113762.1.4.1164.52.json",
    "opioids": "ValueSet-2.16.840.1.113762.1.4.1196.226.json",
    "weight_loss": "ValueSet-2.16.840.1.113762.1.4.1248.177.json",
    "malignant_bone_disease": "ValueSet-2.16.840.1.113762.1.4.1248.24.json",
    "osteoporosis": "ValueSet-2.16.840.1.113762.1.4.1248.256.json",
    "ankylosing_spondylitis": "ValueSet-2.16.840.1.113883.3.464.1003.113.12.1045.json",
    "osteoporosis_with_fracture": "ValueSet-2.16.840.1.113883.3.464.1003.113.12.1050.json",
    "neurologic_impairment": "ValueSet-2.16.840.1.113883.3.464.1003.114.12.1012.json",
    "hiv": "ValueSet-2.16.840.1.113883.3.464.1003.120.12.1003.json",
    "transplant": "ValueSet-2.16.840.1.113883.3.464.1003.198.12.1075.json",
    "physical_therapy_evaluation": "ValueSet-2.16.840.1.113883.3.526.3.1022.json",
    "immunocompromised": "ValueSet-2.16.840.1.113883.3.666.5.1940.json",
}

# Value sets built from rows of codes.csv: name -> (title, [(category, system or None, codes or None)]).
# A None list takes every row of that category.
CURATED: dict[str, tuple[str, list[tuple[str, str | None, list[str] | None]]]] = {
    "axial_spondyloarthritis": ("Axial spondyloarthritis", [("axspa", None, None)]),
    "lumbar_imaging_curated": (
        "Lumbar spine imaging (SNOMED CT procedures, CPT 721xx)",
        [
            ("imaging", None, None),
            ("cpt", CPT, ["72100", "72110", "72114", "72120", "72131", "72132", "72133", "72148", "72149", "72158"]),
        ],
    ),
    "epidural_injection": ("Epidural steroid injection, lumbar", [("cpt", CPT, ["62322", "62323", "64483", "64484"])]),
    "facet_injection": ("Facet joint injection, lumbar", [("cpt", CPT, ["64493", "64494", "64495"])]),
    "radiofrequency_ablation": ("Radiofrequency ablation of facet nerves, lumbar", [("cpt", CPT, ["64635", "64636"])]),
    "trigger_point_injection": ("Trigger point injection", [("cpt", CPT, ["20552", "20553"])]),
    "tens": ("TENS", [("cpt", CPT, ["64550"]), ("tens_hcpcs", None, None)]),
    "lumbar_support": (
        "Lumbar support / lumbar-sacral orthosis",
        [("hcpcs_orthosis", None, None), ("conservative", None, ["77476009"])],
    ),
    "ibuprofen": ("Ibuprofen", [("meds", None, ["5640", "310965", "197805", "197806", "197807", "206905"])]),
    "nsaid": (
        "NSAIDs (ibuprofen, naproxen)",
        [("meds", None, ["5640", "310965", "197805", "197806", "197807", "206905", "7258", "849574"])],
    ),
    "duloxetine": ("Duloxetine", [("meds", None, ["72625", "596926", "596930", "596934"])]),
    "startback": ("STarT Back Screening Tool", [("startback", None, None)]),
    "exercise_therapy": (
        "Exercise therapy and physiotherapy",
        [("conservative", None, ["229065009", "390864007", "308447003", "444831000124102", "91251008", "229064008"])],
    ),
}

# Value sets that are unions of others, so a rule can ask one question.
UNIONS = {
    "axial_spondyloarthritis_all": ["axial_spondyloarthritis", "ankylosing_spondylitis"],
}


def normalise_system(system: str) -> str:
    # The CSV names HCPCS by the CMS web page; FHIR data use the http form of the same URI.
    return HCPCS_FHIR if system == HCPCS else system


def write(
    out: Path,
    name: str,
    title: str,
    source: str,
    codes: dict[str, dict[str, str]],
    icd10cm_categories: list[str] | None = None,
    icd10cm_exclude: list[str] | None = None,
) -> None:
    body: dict = {"name": name, "title": title, "source": source}
    if icd10cm_categories:
        body["icd10cm_categories"] = icd10cm_categories
    if icd10cm_exclude:
        body["icd10cm_exclude"] = icd10cm_exclude
    body["compose"] = {system: dict(sorted(entries.items())) for system, entries in sorted(codes.items())}
    (out / f"{name}.json").write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write (a test builds into a scratch folder)")
    args = parser.parse_args(argv)
    build(args.shared / "reference" / "terminology", args.out)


def build(terminology: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    built: dict[str, dict[str, dict[str, str]]] = {}

    vsac: dict[str, dict[str, dict[str, str]]] = {}
    for name, filename in VSAC.items():
        data = json.loads((terminology / "vsac" / filename).read_text())
        codes: dict[str, dict[str, str]] = defaultdict(dict)
        for entry in data["expansion"]["contains"]:
            codes[normalise_system(entry["system"])][entry["code"]] = entry.get("display", "")
        built[name] = vsac[name] = codes
        write(out, name, data.get("title") or data["name"], f"VSAC {data['url']} version {data.get('version')}", codes)
    for path in sorted(VENDORED_VSAC.glob("*.json")):
        data = json.loads(path.read_text())
        codes = defaultdict(dict)
        for system, entries in data["codes"].items():
            codes[normalise_system(system)].update(entries)
        built[path.stem] = vsac[path.stem] = codes
        source = f"VSAC {data['url']} version {data['version']} (published in {data['published_in']})"
        write(out, path.stem, data["title"], source, codes)

    rows = list(csv.DictReader((terminology / "codes.csv").open()))
    for name, (title, selectors) in CURATED.items():
        codes = defaultdict(dict)
        for category, system, wanted in selectors:
            for row in rows:
                if row["category"] != category or (system and row["system"] != system):
                    continue
                if wanted is None or row["code"] in wanted:
                    codes[normalise_system(row["system"])][row["code"]] = row["display"]
        if name == "lumbar_imaging_curated":
            codes = add_lumbar_loinc(terminology, rows, codes)
        built[name] = codes
        write(out, name, title, "shared/reference/terminology/codes.csv (curated)", codes)

    for name, parts in UNIONS.items():
        missing = [part for part in parts if part not in built]
        if missing:
            raise SystemExit(f"union {name} names unknown value sets: {missing}")
        body = {"name": name, "title": "union of " + ", ".join(parts), "include": parts}
        (out / f"{name}.json").write_text(json.dumps(body, indent=1) + "\n")
        built[name] = {}

    definitions = json.loads(DEFINITIONS.read_text())["valuesets"]
    for name, definition in definitions.items():
        codes, source = from_definition(definition, vsac, rows)
        for other in definition.get("exclude", []):
            # A code is one category's, not two: HIV is also in VSAC's immunocompromised conditions.
            for system, entries in built[other].items():
                for code in entries:
                    codes.get(system, {}).pop(code, None)
        built[name] = codes
        categories, excluded = definition.get("icd10cm"), definition.get("icd10cm_exclude")
        write(out, name, definition["title"], source, codes, categories, excluded)

    for stale in out.glob("*.json"):
        if stale.stem not in built:
            stale.unlink()


def icd10cm_expansion(categories: list[str]) -> dict[str, str]:
    """Every code under each named chapter, block, category or code, with its description."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as cm

    codes: dict[str, str] = {}
    for item in categories:
        if not cm.is_valid_item(item):
            raise SystemExit(f"{item!r} is not an ICD-10-CM chapter, block, category or code")
        for code in (item, *cm.get_descendants(item)):
            # Some blocks share their name with their only category ("B20"): keep anything that is a code.
            if cm.is_category_or_subcategory(code) or cm.is_extended_subcategory(code):
                codes[cm.add_dot(code)] = cm.get_description(code)
    return codes


def from_definition(
    definition: dict, vsac: dict[str, dict[str, dict[str, str]]], rows: list[dict[str, str]]
) -> tuple[dict[str, dict[str, str]], str]:
    codes: dict[str, dict[str, str]] = defaultdict(dict)
    sources = []
    if definition.get("icd10cm"):
        expanded = icd10cm_expansion(definition["icd10cm"])
        for code in icd10cm_expansion(definition.get("icd10cm_exclude", [])):
            expanded.pop(code, None)
        codes[ICD10CM].update(expanded)
        sources.append("ICD-10-CM hierarchy (simple-icd-10-cm, CMS code set): " + ", ".join(definition["icd10cm"]))
    for name in definition.get("vsac", []):
        for system, entries in vsac[name].items():
            codes[system].update(entries)
        sources.append(f"VSAC {name}")
    for rule in definition.get("vsac_filter", []):
        pattern = re.compile(rule["display_matches"], re.IGNORECASE)
        excluded = re.compile(rule.get("display_excludes", "$^"), re.IGNORECASE)
        for system, entries in vsac[rule["vsac"]].items():
            for code, display in entries.items():
                if pattern.search(display) and not excluded.search(display):
                    codes[system][code] = display
        sources.append(f"VSAC {rule['vsac']} where the display matches {rule['display_matches']!r}")
    wanted = set(definition.get("curated", []))
    for row in rows:
        if row["code"] in wanted or row["category"] == definition.get("curated_category"):
            codes[normalise_system(row["system"])][row["code"]] = row["display"]
    if wanted or definition.get("curated_category"):
        sources.append("shared/reference/terminology/codes.csv (curated)")
    for system, entries in definition.get("codes", {}).items():
        codes[system].update(entries)
    if definition.get("codes"):
        sources.append(definition["codes_source"])
    return codes, "; ".join(sources)


def add_lumbar_loinc(terminology: Path, rows: list[dict[str, str]], codes: dict) -> dict:
    """Diagnostic XR, CT and MR of the lumbar spine; procedure guidance and angiography are not imaging orders."""
    for row in csv.DictReader((terminology / "loinc-lumbar-spine-imaging.csv").open()):
        if row["modality"] in {"XR", "CT", "MR"} and "guidance" not in row["display"].lower():
            codes[row["system"]][row["code"]] = row["display"]
    for row in rows:
        if (
            row["category"] == "imaging_loinc"
            and "guidance" not in row["display"].lower()
            and "epidural" not in row["display"].lower()
        ):
            codes[row["system"]][row["code"]] = row["display"]
    return codes


if __name__ == "__main__":
    main()
