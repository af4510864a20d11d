"""The browser console (/console) for integrators and clinical reviewers: try a hook as an EHR would, read
every card the service can show, and see how clinicians answered them. Off unless CDS_CONSOLE_ENABLED; with
authentication on it requires CDS_CONSOLE_TOKEN. Server-rendered pages and one small script; the only
third-party browser code is marked, DOMPurify and Chart.js, vendored under static/vendor with their licences."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import SQLAlchemyError

from cds_service.cards.render import override_reason_names, rule_names
from cds_service.cds_hooks.http_body import json_body
from cds_service.cds_hooks.protocol import CdsService, parse_hook_request
from cds_service.console import answers, gallery
from cds_service.console.access import admitted
from cds_service.devtools.fixtures import DEFAULT_DIR, fixture_paths, load_bundle, resources
from cds_service.domain.clock import Clock, wall_clock
from cds_service.domain.windows import ClinicalWindows
from cds_service.errors import ConsoleCredentialRequired, ProtocolError, StorageUnavailable
from cds_service.fhir.patient_data import PatientDataAssembler
from cds_service.knowledge.loader import read_knowledge
from cds_service.knowledge.model import Knowledge
from cds_service.pipeline.feedback import parse_feedback, store_feedback
from cds_service.pipeline.hook_pipeline import HookPipeline
from cds_service.settings import Settings
from cds_service.storage.store import Store

HOOKS = ("patient-view", "order-select", "order-sign")
# Pages are served by the service itself: scripts and styles from here only; the try-a-hook page reads
# prefetch from whichever FHIR server the user names, as an EHR would.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def check_settings(settings: Settings) -> None:
    if settings.console_enabled and settings.auth_required and not settings.console_token:
        raise RuntimeError(
            "CDS_CONSOLE_ENABLED is set with authentication on but CDS_CONSOLE_TOKEN is not: set an admin token "
            "for the console (or leave the console off)"
        )


def _patients(directory: Path) -> list[dict[str, str]]:
    out = []
    for path in fixture_paths(directory) if directory.is_dir() else []:
        patient = next((r for r in resources(load_bundle(path)) if r.get("resourceType") == "Patient"), {})
        name = (patient.get("name") or [{}])[0]
        given = " ".join(name.get("given", []))
        out.append({"id": patient.get("id", path.stem), "name": f"{given} {name.get('family', '')}".strip()})
    return out


def holds_back(settings: Settings, kb: Knowledge) -> dict[str, dict[str, str]]:
    """Per card topic code (card.source.topic.code), per override reason: what memory will hold back after a
    dismissal with that reason (memory.json), so that the page says it before the clinician sends it. A
    reason not named, or no reason at all, holds nothing back."""
    if not settings.memory_enabled:
        return {}
    memory, rules = read_knowledge("memory.json"), kb.cards.cards["rules"]
    return {
        rules[rule]["topic_code"]: {code: memory["holds_back"][code] for code in codes}
        for rule, codes in memory["suppressing_reasons"].items()
    }


# The console's own identity in the card log: its cards and the feedback on them are its own, never an EHR's.
CONSOLE_CALLER = "console"


def _plan_definitions(fhir_servers: tuple[str, ...]) -> dict[str, str]:
    """Where a reviewer reads a rule's PlanDefinition (the knowledge's FHIR package): on the console's FHIR
    server, which `make run` loads the package into; its canonical URL names it wherever it is loaded."""
    canonical = read_knowledge("fhir_package.json")["canonical"]
    server = f"{fhir_servers[0]}/PlanDefinition/" if fhir_servers else ""
    return {"canonical": f"{canonical}/PlanDefinition/", "server": server}


def _draft_orders(directory: Path) -> dict[str, Any]:
    folder = directory / "draft-orders"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def register(
    app: Flask,
    settings: Settings,
    *,
    store: Store,
    services: dict[str, CdsService],
    assembler: PatientDataAssembler,
    kb: Knowledge,
    windows: ClinicalWindows,
    pipeline: HookPipeline,
    fhir_servers: tuple[str, ...] = (),
    clock: Clock = wall_clock,
) -> None:
    """Mount /console when it is enabled; otherwise nothing is mounted and /console is a 404.

    `fhir_servers`: what the console may name as fhirServer when it calls the pipeline itself (authentication
    on): the settings' allow-list and every trusted EHR's registered servers."""
    check_settings(settings)
    if not settings.console_enabled:
        return
    console = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static")
    directory = DEFAULT_DIR
    reason_names, names_of_rules = override_reason_names(kb), rule_names(kb)
    # Read once: the fixture patients' names and the draft orders do not change while the service runs.
    patients, draft_orders = _patients(directory), _draft_orders(directory)
    held_back_by_reason = holds_back(settings, kb)  # memory.json does not change while the service runs either
    plan_definitions = _plan_definitions(fhir_servers)

    @console.before_request
    def require_admin() -> Any:
        if admitted(request.headers.get("Authorization", ""), settings.console_token):
            return None
        raise ConsoleCredentialRequired()

    @console.after_request
    def page_policy(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    @console.get("")
    def try_a_hook() -> str:
        config = {
            "serviceBase": "/cds-services",
            "fhirServer": fhir_servers[0] if fhir_servers else "",
            "patients": patients,
            "draftOrders": draft_orders,
            "hooks": list(HOOKS),
            "authRequired": settings.auth_required,
            "holdsBack": held_back_by_reason,
            # With authentication on, the page calls the service through the console (behind its credential):
            # discovery from here, hook calls and feedback to the endpoints below.
            "discovery": {"services": [s.discovery() for s in services.values()]},
            "callBase": "/console/call",
            "feedbackBase": "/console/feedback",
        }
        return render_template("try.html", page="try", config=config, fixtures=str(directory))

    @console.post("/call/<service_id>")
    def call_in_process(service_id: str) -> Any:
        """A hook call from the Try page, answered by the pipeline in process as the console's own caller: an
        EHR's JWT cannot be had in a browser page (each is signed for one URL and one use)."""
        service = _service(service_id)
        hook_request = replace(parse_hook_request(json_body(), service), caller=CONSOLE_CALLER)
        return jsonify(pipeline.answer(service, hook_request, allowed_servers=fhir_servers or None).body)

    @console.post("/feedback/<service_id>")
    def feedback_in_process(service_id: str) -> Any:
        _service(service_id)
        return jsonify(store_feedback(store, service_id, parse_feedback(json_body()), clock(), CONSOLE_CALLER))

    def _service(service_id: str) -> CdsService:
        service = services.get(service_id)
        if service is None:
            raise ProtocolError(f"no CDS service with id {service_id!r}", status=404, code="not-found")
        return service

    @console.get("/gallery")
    def card_gallery() -> str:
        entries = gallery.build(directory, services, assembler, kb, windows, clock()) if directory.is_dir() else []
        return render_template(
            "gallery.html",
            page="gallery",
            entries=entries,
            fixtures=str(directory),
            rules=[(rule, names_of_rules[rule]) for rule in sorted({c.rule for e in entries for c in e.cards})],
            rule_names=names_of_rules,
            hooks=HOOKS,
            plan_definitions=plan_definitions,
        )

    @console.get("/answers")
    def answers_page() -> Any:
        try:
            period = answers.Period.parse(request.args.get("from"), request.args.get("to"), clock().date())
        except ValueError as exc:
            return _bad_period(str(exc))
        try:
            report = store.report(period.start, period.end)
            weeks = [(f"{w.first:%d %b} - {w.last:%d %b}", t) for w, t in answers.weekly(store, period)]
            clinicians = store.clinician_report(period.start, period.end)
        except SQLAlchemyError as exc:
            store.failed("report", exc)
            raise StorageUnavailable("the card log cannot be read now; please retry") from exc
        per_rule = [
            (names_of_rules.get(rule, rule), {o: r[o] for o in answers.OUTCOMES}) for rule, r in sorted(report.items())
        ]
        by_reason = [(reason_names.get(code, code), {"overridden": n}) for code, n in answers.reasons(report).items()]
        return render_template(
            "answers.html",
            page="answers",
            period=period,
            report=report,
            totals=answers.totals(report),
            reason_names=reason_names,
            rule_names=names_of_rules,
            by_reason=by_reason,
            weeks=weeks,
            charts=answers.chart_data(per_rule, by_reason, weeks, clinicians),
            labels=answers.LABELS,
            outcomes=answers.OUTCOMES,
            clinicians=clinicians,
        )

    def _bad_period(problem: str) -> Any:
        """A person at the date pickers gets the page back with what is wrong; a program gets the JSON error."""
        message = f"the date range is not valid: {problem}"
        if request.accept_mimetypes.best_match(["application/json", "text/html"]) != "text/html":
            raise ProtocolError(message)
        page = render_template(
            "answers_error.html",
            page="answers",
            message=message,
            first=request.args.get("from", ""),
            last=request.args.get("to", ""),
        )
        return page, 400

    app.register_blueprint(console)
