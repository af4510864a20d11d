"""Lengths of what the service stores, in one place: storage/store.py sizes its columns from them, and
cds_hooks/protocol.py and pipeline/feedback.py refuse longer input (or a NUL character, which PostgreSQL
cannot store) with a 400 before anything is written, so SQLite and PostgreSQL answer the same way."""

from __future__ import annotations

import hashlib

from cds_service.errors import ProtocolError

ID_MAX = 128  # patientId, encounterId, hookInstance, reason codes
UUID_MAX = 64  # card uuids, rule ids, service ids, fingerprints
URI_MAX = 256  # order references, coding systems, the calling EHR's identity
LOCAL_CALLER = "local"  # the identity of every call when authentication is off


def require_storable(value: str, name: str, max_length: int | None) -> None:
    """A 400 (ProtocolError) naming the field when ``value`` cannot be stored as given."""
    if "\x00" in value:
        raise ProtocolError(f"{name} contains a NUL character")
    if max_length is not None and len(value) > max_length:
        raise ProtocolError(f"{name} is longer than {max_length} characters")


def fitted_key(value: str, max_length: int = URI_MAX) -> str:
    """A key we derive ourselves (an issuer, a jti) made to fit its column: itself, or its SHA-256 when longer."""
    return value if len(value) <= max_length else "sha256:" + hashlib.sha256(value.encode()).hexdigest()
