"""Every SHALL row of the CDS Hooks 2.0 service requirements checklist is traced to tests that exist (or says
why it does not apply), so a requirement cannot quietly lose its test."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKLIST = ROOT.parent / "shared" / "reference" / "cds-hooks" / "cds-hooks-2.0-service-requirements.csv"
TRACE = json.loads((Path(__file__).parent / "requirements_trace.json").read_text())


@pytest.mark.skipif(not CHECKLIST.exists(), reason="needs ../shared beside the repo")
def test_every_shall_row_for_a_service_is_traced_or_explained() -> None:
    rows = list(csv.DictReader(CHECKLIST.open()))
    shall = {r["ID"] for r in rows if r["Conformance"] == "SHALL" and "Service" in r["Actors"]}
    covered = set(TRACE["traced"]) | set(TRACE["not_applicable"])
    assert shall - covered == set()
    assert not set(TRACE["traced"]) & set(TRACE["not_applicable"])


def test_every_traced_test_exists() -> None:
    names: dict[str, set[str]] = {}
    for tests in TRACE["traced"].values():
        for node in tests:
            path, name = node.split("::")
            if path not in names:
                tree = ast.parse((ROOT / path).read_text())
                names[path] = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
            assert name in names[path], node
