"""Lengths of what the service stores, in one place: storage.py sizes its columns from them, and protocol.py
and feedback.py refuse longer input (or a NUL character, which PostgreSQL cannot store) with a 400 before
anything is written, so SQLite and PostgreSQL answer the same way."""

from __future__ import annotations

ID_MAX = 128  # patientId, encounterId, hookInstance, reason codes
UUID_MAX = 64  # card uuids, rule ids, service ids, fingerprints
URI_MAX = 256  # order references, coding systems, the calling EHR's identity
LOCAL_CALLER = "local"  # the identity of every call when authentication is off


def check_text(value: str, name: str, max_length: int | None) -> str | None:
    """Why ``value`` cannot be stored, or None when it can."""
    if "\x00" in value:
        return f"{name} contains a NUL character"
    if max_length is not None and len(value) > max_length:
        return f"{name} is longer than {max_length} characters"
    return None
