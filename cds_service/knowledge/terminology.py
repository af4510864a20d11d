"""Value sets: loaded once at start-up into sets keyed by (system, code).

The files under ``knowledge/valuesets/`` are built from the curated terminology by
``scripts/build_valuesets.py``; a file either lists codes by system (``compose``) or names other value
sets to take the union of (``include``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from cds_service.domain.codes import CANONICAL_SYSTEM
from cds_service.knowledge.loader import VALUESET_DIR, read_json


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


class ValueSetLibrary(Mapping[str, ValueSet]):
    """The value set files of a folder, each read the first time it is asked for.

    Some files are only building blocks of others (a VSAC expansion folded into a red-flag set by the
    build): reading all of them would cost memory in every worker for codes no rule asks about."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.names = tuple(sorted(path.stem for path in directory.glob("*.json")))
        self._loaded: dict[str, ValueSet] = {}

    def __getitem__(self, name: str) -> ValueSet:
        return self._resolve(name, ())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def _resolve(self, name: str, seen: tuple[str, ...]) -> ValueSet:
        if name in self._loaded:
            return self._loaded[name]
        if name in seen:
            raise ValueError(f"value set include cycle: {' -> '.join((*seen, name))}")
        if name not in self.names:
            raise KeyError(f"unknown value set {name!r}")
        body = read_json(self.directory / f"{name}.json")
        displays: dict[tuple[str, str], str] = {}
        for system, entries in body.get("compose", {}).items():
            canonical = CANONICAL_SYSTEM.get(system, system)
            displays.update(((canonical, code), display) for code, display in entries.items())
        for part in body.get("include", []):
            displays.update(self._resolve(part, (*seen, name)).displays)
        self._loaded[name] = ValueSet(name, body.get("title", name), frozenset(displays), displays)
        return self._loaded[name]


def load_valuesets(directory: Path = VALUESET_DIR) -> ValueSetLibrary:
    return ValueSetLibrary(directory)


def display_for(codings: Iterable[tuple[str, str]], sets: Iterable[ValueSet]) -> str | None:
    """A human name for a coded concept that arrived without display text."""
    for coding in codings:
        for valueset in sets:
            if valueset.displays.get(coding):
                return valueset.displays[coding]
    return None


@cache
def valuesets() -> ValueSetLibrary:
    """The packaged value sets, read once per process."""
    return load_valuesets()
