"""The body of a CDS Hooks (or console) request, read once for every endpoint that takes JSON: within the size
limit whatever the transfer encoding, decoded with orjson, every refusal a ProtocolError with the words an
integrator reads."""

from __future__ import annotations

from typing import Any

import orjson
from flask import current_app, request

from cds_service.errors import ProtocolError


def _body_bytes() -> bytes | None:
    """The whole body, or None when it is over the size limit. A declared length over the limit is refused by
    Werkzeug before this; a chunked body has none, and Werkzeug's stream would end it silently at the limit
    (a cut body parsed as if whole), so one byte past the limit is read from the server's own stream."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        raw = request.environ["wsgi.input"].read(limit + 1) or b""
        return None if len(raw) > limit else raw
    return request.get_data(cache=False) or b""


def json_body() -> Any:
    """The request's decoded JSON body; a ProtocolError otherwise (415 for a non-JSON type, 413 over the limit,
    400 for bad JSON). Only JSON types are read: a cross-site form cannot send one without a CORS preflight, so
    another page cannot post with credentials the browser holds (the console's)."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ProtocolError(
            "the request body must be JSON (Content-Type: application/json)", status=415, code="not-supported"
        )
    raw = _body_bytes()
    if raw is None:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        raise ProtocolError(f"the request body is larger than {limit} bytes", status=413, code="too-costly")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc):
            raise ProtocolError("the request body is nested too deeply") from exc
        if "surrogate" in str(exc):  # a lone "\\ud800": no database or log could encode it
            raise ProtocolError("the request body contains a lone UTF-16 surrogate (\\ud800-\\udfff)") from exc
        raise ProtocolError(f"the request body is not valid JSON at line {exc.lineno} column {exc.colno}") from exc
