"""Synthetic patients in fhir_fixtures/: reading them with their dates moved to today.

Each fixture Bundle records the day it was written in ``Bundle.timestamp``. Clinical meaning depends on
time ("onset 10 days ago" is acute; in a year it would be chronic), so every date in a fixture is moved
forward by the days between that timestamp and today when it is loaded. The scenarios then mean the
same thing on any day.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

# The synthetic patients live in the repository, not in the installed package (they are test data): a
# checkout finds them beside the package; an installed wheel or the image is told where they are
# (CDS_FIXTURES_DIR, or --dir / --fixtures on the command line).
DEFAULT_DIR = Path(os.environ.get("CDS_FIXTURES_DIR") or Path(__file__).resolve().parents[2] / "fhir_fixtures")


def fixtures_dir(path: str | Path | None) -> Path:
    """The fixture folder to use, or a clear exit when there is none (an installed package has none)."""
    directory = Path(path) if path else DEFAULT_DIR
    if not directory.is_dir():
        raise SystemExit(
            f"no fixture folder at {directory}: pass --dir/--fixtures or set CDS_FIXTURES_DIR "
            "(the fixtures live in the repository's fhir_fixtures/, not in the installed package)"
        )
    return directory


# Elements whose values are points in clinical time. birthDate is deliberately absent: ages stay as written.
DATE_FIELDS = frozenset(
    {"onsetDateTime", "recordedDate", "abatementDateTime", "effectiveDateTime", "issued", "authoredOn", "start", "end"}
)


def fixture_paths(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Patient Bundles (one per scenario), not the draft orders or the scenario list."""
    return sorted(p for p in directory.glob("*.json") if p.name != "scenarios.json")


def _shift(value: str, delta: timedelta) -> str:
    if len(value) == 10:
        return (date.fromisoformat(value) + delta).isoformat()
    moved = datetime.fromisoformat(value.replace("Z", "+00:00")) + delta
    text = moved.isoformat()
    return text.replace("+00:00", "Z") if value.endswith("Z") else text


def _walk(node: Any, delta: timedelta) -> Any:
    if isinstance(node, dict):
        return {
            k: _shift(v, delta) if k in DATE_FIELDS and isinstance(v, str) else _walk(v, delta) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_walk(item, delta) for item in node]
    return node


def load_bundle(path: Path, today: date | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(path.read_text())
    stamp = bundle.get("timestamp")
    if not stamp:
        return bundle
    written = datetime.fromisoformat(stamp.replace("Z", "+00:00")).date()
    delta = timedelta(days=((today or datetime.now(UTC).date()) - written).days)
    shifted: dict[str, Any] = _walk(bundle, delta)
    shifted["timestamp"] = stamp
    return shifted


def resources(bundle: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for entry in bundle.get("entry", []):
        yield entry["resource"]
