"""The floor: the least any CDS service served this way can cost. It parses the request body as JSON with
the parser the service uses (orjson; FLOOR_PARSER=stdlib for the standard library, the second reference
line) and returns a constant answer of a typical card's size."""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
from flask import Flask, Response, request

from cds_service.web.gc_tuning import tune_for_short_calls

app = Flask(__name__)
_ANSWER = (
    Path(os.environ.get("FLOOR_ANSWER_FILE", "")).read_bytes()
    if os.environ.get("FLOOR_ANSWER_FILE")
    else b'{"cards":[]}'
)


_PARSE = json.loads if os.environ.get("FLOOR_PARSER") == "stdlib" else orjson.loads


@app.post("/cds-services/<service_id>")
def answer(service_id: str) -> Response:
    _PARSE(request.get_data())
    return Response(_ANSWER, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response(b'{"status":"ok"}', mimetype="application/json")


tune_for_short_calls()  # as the service's workers do: the floor must not pay for a collector the service tuned
