"""Who may open the console: the holder of CDS_CONSOLE_TOKEN, sent as an HTTP Basic password (any user name;
the browser asks for it) or as a Bearer token (scripts). Compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac


def supplied_secret(authorization: str) -> str:
    """The secret an Authorization header carries ('' when none, or when it is malformed)."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


def admitted(authorization: str, token: str) -> bool:
    """True when the header carries the console token. No token configured: only reachable with
    authentication off (start-up refuses otherwise), i.e. a developer's machine."""
    if not token:
        return True
    return hmac.compare_digest(supplied_secret(authorization).encode(), token.encode())
