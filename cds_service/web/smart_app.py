"""The STarT Back SMART app (issue 31, item 1), served by the service and linked from the STarT Back screening
card as a CDS Hooks `smart` link.

- `GET /smart/startback/launch`: the launch URL. The EHR launch (SMART App Launch 2.0: `iss` + `launch`) or,
  for open test servers, `fhirServiceUrl` + `patientId`; the vendored SMART client (fhirclient) does the
  discovery, the authorization code flow with PKCE and the token.
- `GET /smart/startback/app`: the redirect URL and the app: the nine items as plain HTML radio groups (each a
  fieldset with its legend: nine two- or five-way choices need no renderer, and no 2 MB form library), drawn
  from the Questionnaire resource in the knowledge.
- `GET /smart/startback/Questionnaire`: that Questionnaire (FHIR R4 JSON).
- `POST /smart/startback/score`: a QuestionnaireResponse in, its score out, by the rules' own scoring code, with
  the Observations the app writes back. Nothing is stored here and nothing of the body is logged: the app
  writes to the EHR's FHIR server with the EHR's token, which never reaches this service.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template

from cds_service.cds_hooks.http_body import json_body
from cds_service.errors import ProtocolError
from cds_service.fhir.startback_app import questionnaire, response_problems, score, score_observations
from cds_service.web.state import state_of

# Read the patient, and create the response and its Observations (SMART v2 scopes; `launch` for the EHR launch).
SCOPES = "launch openid fhirUser patient/Patient.r patient/QuestionnaireResponse.c patient/Observation.c"
# Scripts and styles are the app's own files; the SMART client talks to the EHR's servers (any origin); an EHR
# may show the app in a frame.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' https: http:; "
    "form-action 'self'; base-uri 'none'"
)

app = Blueprint("startback_app", __name__, url_prefix="/smart/startback", template_folder="templates")


def _page(template: str, **values: Any) -> Response:
    settings = state_of(current_app).settings
    html = render_template(template, client_id=settings.smart_client_id, scope=SCOPES, **values)
    return Response(html, mimetype="text/html", headers={"Content-Security-Policy": PAGE_POLICY})


@app.get("/launch")
def launch() -> Response:
    return _page("smart_launch.html")


@app.get("/app")
def questionnaire_page() -> Response:
    return _page("smart_app.html", form=questionnaire())


@app.get("/Questionnaire")
def questionnaire_resource() -> Any:
    return current_app.response_class(
        current_app.json.dumps(questionnaire()), mimetype="application/fhir+json", status=200
    )


@app.post("/score")
def score_response() -> Any:
    response = json_body()
    problems = response_problems(response)
    if problems:
        raise ProtocolError("the QuestionnaireResponse cannot be scored: " + "; ".join(problems))
    kb = state_of(current_app).pipeline.kb
    result = score(response, kb)
    variant = kb.cards.cards["rules"]["lbp-startback-risk"]["variants"][result.risk]
    body: dict[str, Any] = {
        "risk": result.risk,
        "total": int(result.total or 0),
        "distress": int(result.distress or 0),
        "nextStep": variant["summary"],
    }
    subject = response.get("subject")
    patient_ref = subject.get("reference") if isinstance(subject, Mapping) else None
    if isinstance(response.get("id"), str) and isinstance(patient_ref, str) and patient_ref.startswith("Patient/"):
        # A response the EHR's server holds: the Observations to write, derivedFrom it.
        try:
            when = datetime.fromisoformat(str(response.get("authored")))
        except ValueError:
            when = state_of(current_app).clock()
        body["observations"] = score_observations(
            result,
            patient=patient_ref.removeprefix("Patient/"),
            response_ref=f"QuestionnaireResponse/{response['id']}",
            when=when if when.tzinfo else when.replace(tzinfo=UTC),
            kb=kb,
        )
    return jsonify(body)
