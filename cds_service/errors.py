"""Every error the service answers with, in one hierarchy: each class carries its HTTP status and its
OperationOutcome issue code, and web/app.py maps the base class to a response in one place (one
Flask error handler); request parsing raises them.

`message` goes to the caller; `reason` (when set) only to the log: it may name a key id or a URL the
caller must not learn from us, and never a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ServiceError(Exception):
    status = 500
    code = "exception"
    retry_after_s: int | None = None  # sent as Retry-After
    challenge: str | None = None  # sent as WWW-Authenticate

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(reason or message)
        self.message = message
        self.reason = reason or message


class ProtocolError(ServiceError):
    """A request the service cannot act on (400 unless said otherwise: 404 unknown service, 415...)."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class DisallowedFhirServer(ServiceError):
    """The request named a FHIR server this service may not contact (SSRF guard); raised before any request."""

    status = 400
    code = "security"


@dataclass(frozen=True)
class Unobtainable:
    key: str
    purpose: str
    reason: str


class DataUnavailable(ServiceError):
    """Required data was neither prefetched nor obtainable from the FHIR server (the spec's 412)."""

    status = 412
    code = "incomplete"

    def __init__(self, missing: Sequence[Unobtainable]) -> None:
        listed = "; ".join(f"{m.key} ({m.purpose}): {m.reason}" for m in missing)
        super().__init__(f"required patient data could not be obtained: {listed}")
        self.missing = list(missing)


class AuthenticationFailed(ServiceError):
    """The caller is not trusted. The caller hears only that; ``reason`` is for the log."""

    status = 401
    code = "login"

    def __init__(self, reason: str) -> None:
        super().__init__("authentication failed", reason=reason)


class ConsoleCredentialRequired(ServiceError):
    """The console was asked for without its admin credential (CDS_CONSOLE_TOKEN)."""

    status = 401
    code = "login"
    challenge = 'Basic realm="CDS console", charset="UTF-8"'

    def __init__(self) -> None:
        super().__init__("the console needs its admin credential (CDS_CONSOLE_TOKEN)")


class StorageUnavailable(ServiceError):
    """Something that must be stored (feedback) could not be: never a 200, the EHR should retry."""

    status = 503
    code = "transient"
    retry_after_s = 5


class FhirAccessError(ServiceError):
    """Data could not be read from the FHIR server. Caught by the assembler, which turns it into a named data
    gap or a DataUnavailable; ``message`` is safe to return to the caller."""

    status = 502
    code = "transient"

    def __init__(self, reason: str, *, status: int | None = None, kind: str | None = None) -> None:
        super().__init__(reason)
        self.upstream_status = status
        # For the metrics (cds_fhir_fetches): timeout, unreachable, http_3xx/4xx/5xx, too_large or invalid.
        self.kind = kind or (f"http_{status // 100}xx" if status else "invalid")
