"""The layering ARCHITECTURE.md describes, read from the imports: the rules see facts, value sets and
knowledge data only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cds_service"
RULE_MAY_IMPORT = {"record", "terminology", "package_data", "rules"}


def _internal_imports(path: Path) -> set[str]:
    """The cds_service modules a file imports, by their top-level name ("record", "rules", "app")."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = node.module.split(".")[0] if node.module else None
            if path.parent.name == "rules" and node.level == 1:
                found.add("rules")
            elif base:
                found.add(base)
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cds_service."):
            found.add(node.module.split(".")[1])
    return found


@pytest.mark.parametrize("module", sorted(p.name for p in (PACKAGE / "rules").glob("*.py")))
def test_rules_import_only_facts_terminology_and_knowledge(module):
    assert _internal_imports(PACKAGE / "rules" / module) <= RULE_MAY_IMPORT


def test_the_layer_check_sees_a_forbidden_import(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    bad = rules / "bad.py"
    bad.write_text("from ..patient_data import Selector\nfrom .knowledge import Knowledge\n")
    assert _internal_imports(bad) == {"patient_data", "rules"}


def test_memory_does_not_reach_into_the_engine():
    tree = ast.parse((PACKAGE / "memory.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "rules.engine" not in modules
