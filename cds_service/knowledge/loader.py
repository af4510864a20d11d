"""The one way package data is found: knowledge files and value sets, through importlib.resources, so the
editable checkout, the installed wheel and the container image all read the same files."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

# A real directory for every way this package is installed here (source tree, wheel, image): importlib
# resolves it; code that needs a folder to list (value sets) uses it as a Path.
KNOWLEDGE_DIR = Path(str(files("cds_service") / "knowledge"))
VALUESET_DIR = KNOWLEDGE_DIR / "valuesets"


def read_json(path: Path) -> Any:
    """One knowledge or value set file's JSON, by path: every knowledge file is read through here."""
    return json.loads(path.read_text(encoding="utf-8"))


def read_knowledge(name: str) -> Any:
    """A knowledge file's JSON, by file name ("cards.json")."""
    return read_json(KNOWLEDGE_DIR / name)
