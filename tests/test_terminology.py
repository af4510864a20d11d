"""The shipped value sets are what their definitions say: rebuilt from the ICD-10-CM tree (simple-icd-10-cm),
the VSAC expansions and the curated codes, they come out identical. A hand edit of an expansion, or a
definition changed without `make valuesets`, fails here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from cds_service.domain.facts import Concept, normalise_icd10cm
from cds_service.knowledge.loader import VALUESET_DIR
from cds_service.knowledge.terminology import valuesets

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def _build_script():
    spec = importlib.util.spec_from_file_location("build_valuesets", ROOT / "scripts" / "build_valuesets.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (SHARED / "reference" / "terminology").is_dir(), reason="needs ../shared beside the repo")
def test_shipped_value_sets_equal_a_fresh_build(tmp_path: Path) -> None:
    _build_script().main(["--shared", str(SHARED), "--out", str(tmp_path)])
    fresh = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    shipped = {p.name: json.loads(p.read_text()) for p in VALUESET_DIR.glob("*.json")}
    assert sorted(fresh) == sorted(shipped)
    for name, body in fresh.items():
        assert shipped[name] == body, f"{name} differs from its definition: run `make valuesets`"


@pytest.mark.parametrize(
    ("valueset", "code"),
    [
        ("malignancy", "Z85.3"),  # personal history of breast cancer: history-of codes count
        ("malignancy", "C50.911"),  # a deep descendant of C50
        ("fracture_or_osteoporosis", "S32.010A"),  # 7th character of the S32.0 family
        ("fracture_or_osteoporosis", "M80.08XA"),
        ("low_back_pain", "M54.5"),  # retired in 2021, still sent by EHRs
        ("low_back_pain", "M54.59"),
        ("hiv", "B20"),  # a category that is also its own block
    ],
)
def test_categories_cover_their_descendants_and_retired_parents(valueset: str, code: str) -> None:
    assert (ICD, code) in valuesets()[valueset].codes


def test_a_benign_neoplasm_is_not_in_the_malignancy_set() -> None:
    assert (ICD, "D25.9") not in valuesets()["malignancy"].codes


@pytest.mark.parametrize(
    ("sent", "read"), [("S32010A", "S32.010A"), ("m54.50", "M54.50"), (" Z853 ", "Z85.3"), ("B20", "B20")]
)
def test_icd10cm_codes_are_read_as_the_value_sets_hold_them(sent: str, read: str) -> None:
    assert normalise_icd10cm(sent) == read
    concept = Concept.from_json({"coding": [{"system": ICD, "code": sent}]})
    assert concept.codings == ((ICD, read),)


def test_snomed_codes_are_not_touched_by_icd_normalisation() -> None:
    concept = Concept.from_json({"coding": [{"system": "http://snomed.info/sct", "code": "279039007"}]})
    assert concept.codings == (("http://snomed.info/sct", "279039007"),)
