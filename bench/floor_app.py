"""The floor: the least any CDS service served this way can cost. It parses the request body as JSON
(the same library the service uses) and returns a constant answer of a typical card's size."""

from __future__ import annotations

import json
import os
from pathlib import Path

from flask import Flask, Response, request

app = Flask(__name__)
_ANSWER = (
    Path(os.environ.get("FLOOR_ANSWER_FILE", "")).read_bytes()
    if os.environ.get("FLOOR_ANSWER_FILE")
    else b'{"cards":[]}'
)


@app.post("/cds-services/<service_id>")
def answer(service_id: str) -> Response:
    json.loads(request.get_data())
    return Response(_ANSWER, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response(b'{"status":"ok"}', mimetype="application/json")
