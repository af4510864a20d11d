"""One typed settings object, read from environment variables (prefix ``CDS_``).

Every setting the running service reads lives here, so that the Dockerfile, ``make run`` and the tests
configure the same thing the same way. The development tools read their own (``CDS_FIXTURES_DIR``,
``CDS_FHIR_SERVER_DIR``, ``CDS_FHIR_PORT``: devtools/ and ``cds-service dev``). Defaults are the safe
production choice; development conveniences (plain http FHIR servers, no authentication) must be switched
on explicitly.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from cds_service.domain.windows import ClinicalWindows
from cds_service.knowledge.loader import read_knowledge

# The clinical settings a site may tune start from the reviewed values (knowledge/thresholds.json).
_CLINICAL = {name: item["value"] for name, item in read_knowledge("thresholds.json")["thresholds"].items()}


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class Settings:
    # HTTP
    host: str = "127.0.0.1"  # where `cds-service serve` listens (the image sets 0.0.0.0)
    port: int = 8000
    max_request_bytes: int = 5 * 1024 * 1024
    cors_origins: tuple[str, ...] = ("*",)
    public_base_url: str = ""  # how EHRs reach us (behind a proxy): JWT `aud`, and the cards' links to our pages
    smart_client_id: str = "lbp-startback"  # the STarT Back SMART app's client id at the EHR's authorization server

    # Outbound FHIR access (SSRF guard: only these base URL prefixes are ever contacted)
    allowed_fhir_servers: tuple[str, ...] = ()
    allow_insecure_fhir_http: bool = False
    fhir_connect_timeout_s: float = 3.0
    fhir_read_timeout_s: float = 10.0
    fhir_max_pages: int = 20
    fhir_max_resources: int = 5000
    fhir_retries: int = 2
    fhir_max_retry_after_s: float = 2.0
    fhir_concurrency: int = 12  # every prefetch key of the largest service (11, patient-view) fetched at once
    # One budget per hook call for all FHIR reading (connect, headers, body, retries, pages): when it runs out
    # the service answers with what it has (cards name what was not checked) or 412 for required data.
    hook_deadline_s: float = 3.0
    fhir_max_response_bytes: int = 50 * 1024 * 1024  # per FHIR response, decompressed, checked while reading

    # Clinical windows
    fever_lookback_days: int = int(_CLINICAL["fever_days"])
    fever_threshold_celsius: float = float(_CLINICAL["fever_celsius"])
    long_term_steroid_days: int = int(_CLINICAL["long_term_steroid_days"])

    # Authentication of calling EHRs (issue: trust). On unless explicitly turned off.
    auth_required: bool = True
    trusted_ehrs_file: Path | None = None
    jwt_leeway_s: int = 30
    jwt_max_lifetime_s: int = 300  # exp - iat; the public CDS Hooks sandbox sends exactly 300
    jwks_refresh_interval_s: float = 60.0
    replay_db: Path = Path(tempfile.gettempdir()) / "cds-lbp-seen-jti.sqlite3"

    # Memory: card log, feedback, suppression (SQLite file by default; PostgreSQL by URL)
    database_url: str = "sqlite:///cds-lbp.sqlite3"
    # The card log written by a thread of each worker in batches, off the request path (one commit for many
    # calls); false: each call writes its own transaction before it answers. README, "Feedback and memory".
    card_log_background: bool = True
    # How long the writer waits for more calls before it commits a batch: calls one after another share a
    # commit too. A crash loses the entries of this window; a flush (feedback, reports, /readyz) cuts it short.
    card_log_linger_ms: float = 20.0
    database_wait_s: float = 30.0  # at start-up, how long to wait for a PostgreSQL server that is still starting
    memory_enabled: bool = True
    suppression_days: float = 30.0
    retention_days: int = 365
    purge_interval_s: float = 3600.0  # each worker purges on this timer (0: only `cds-service purge`)

    # A worker whose resident memory stays above this after a request (a very large FHIR answer: Python keeps
    # the freed memory) finishes its requests in flight and is replaced by a fresh one (0: never).
    worker_max_rss_mb: float = 250.0

    # Browser console for integrators and clinical reviewers (/console): off unless switched on. With
    # authentication on it requires CDS_CONSOLE_TOKEN (HTTP Basic password or Bearer token).
    console_enabled: bool = False
    console_token: str = ""

    # Logging
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``CDS_<FIELD>`` variables; unknown or malformed values fail loudly at start-up."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"CDS_{f.name.upper()}")
            if raw is None:
                continue
            default = getattr(cls, f.name, None)
            try:
                if isinstance(default, bool):
                    values[f.name] = _bool(raw)
                elif isinstance(default, int):
                    values[f.name] = int(raw)
                elif isinstance(default, float):
                    values[f.name] = float(raw)
                elif isinstance(default, tuple):
                    values[f.name] = _split(raw)
                elif f.name in {"trusted_ehrs_file", "replay_db"}:
                    values[f.name] = Path(raw) if raw else None
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise ValueError(f"CDS_{f.name.upper()}: {exc}") from exc
        if values.get("card_log_linger_ms", 0.0) < 0:
            raise ValueError("CDS_CARD_LOG_LINGER_MS: must be 0 (commit at once) or more")
        return cls(**values)

    @property
    def windows(self) -> ClinicalWindows:
        """The three tunable clinical windows as the rules take them."""
        return ClinicalWindows(self.fever_lookback_days, self.fever_threshold_celsius, self.long_term_steroid_days)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)
