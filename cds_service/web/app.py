"""Flask application factory: HTTP concerns only (routing, limits, CORS, errors, request logs)."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import orjson
from flask import Blueprint, Flask, current_app, g, has_request_context, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from cds_service import console, logs, metrics
from cds_service.cards.memory import Memory, MemoryPolicy
from cds_service.cards.render import validate_order_templates
from cds_service.cds_hooks.http_body import json_body
from cds_service.cds_hooks.limits import LOCAL_CALLER
from cds_service.cds_hooks.protocol import CdsService, load_services, parse_hook_request
from cds_service.domain.clock import Clock, wall_clock
from cds_service.errors import AuthenticationFailed, ProtocolError, ServiceError
from cds_service.fhir.client import FhirClient
from cds_service.fhir.models import preload
from cds_service.fhir.patient_data import PatientDataAssembler
from cds_service.fhir.selection import selector_for
from cds_service.knowledge.model import knowledge
from cds_service.pipeline.feedback import parse_feedback, store_feedback
from cds_service.pipeline.hook_pipeline import HookPipeline
from cds_service.rules.registry import check_knowledge
from cds_service.security.trust import (
    Caller,
    DegradingReplayRecord,
    KeySets,
    ReplayGuard,
    Verifier,
    caller_key,
    load_registry,
)
from cds_service.settings import Settings
from cds_service.storage.retention import RetentionJob
from cds_service.storage.store import Store
from cds_service.web import patient_plan, smart_app
from cds_service.web.state import EXTENSION, ServiceState, state_of

log = logging.getLogger("cds_service.http")
READY_FLUSH_S = 5.0  # how long /readyz waits for the queued card log (a probe's timeout is a few seconds)
api = Blueprint("cds_hooks", __name__)


def operation_outcome(status: int, message: str, code: str = "invalid") -> Any:
    """Errors as OperationOutcome-shaped JSON (as the CDS Hooks 3.0 ballot recommends)."""
    severity = "error" if status < 500 else "fatal"
    if status < 500 and has_request_context():
        # For the request log line: why the call was refused, in the same words the caller got.
        g.error_reason = message
    body = {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code, "diagnostics": message}]}
    response = jsonify(body)
    response.status_code = status
    return response


def error_response(exc: ServiceError) -> Any:
    """The one mapping from the service's errors to HTTP: each class names its status and issue code."""
    response = operation_outcome(exc.status, exc.message, exc.code)
    if exc.reason != exc.message and has_request_context():
        g.error_reason = f"{exc.message}: {exc.reason}"  # the log line's reason (never a token), not the caller's
    if exc.retry_after_s is not None:
        response.headers["Retry-After"] = str(exc.retry_after_s)
    if exc.challenge is not None:
        response.headers["WWW-Authenticate"] = exc.challenge
    return response


def create_app(settings: Settings | None = None, *, clock: Clock = wall_clock) -> Flask:
    """`clock`: the time every date-dependent decision reads (tests of records with absolute dates pass the
    recording's time)."""
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json = FastJson(app)  # orjson: the responses (and, in cds_hooks.http_body, the requests) at C speed

    kb = knowledge()
    preload()
    executor = ThreadPoolExecutor(max_workers=settings.fhir_concurrency, thread_name_prefix="fhir")
    selector = selector_for(kb, settings.fever_lookback_days, clock)
    assembler = PatientDataAssembler(settings, FhirClient(settings), executor, selector)
    validate_order_templates(kb)
    check_knowledge()
    store = Store(
        settings.database_url,
        wait_s=settings.database_wait_s,
        background_card_log=settings.card_log_background,
        card_log_linger_s=settings.card_log_linger_ms / 1000,
    )
    retention = RetentionJob(store, settings.retention_days, settings.purge_interval_s, clock)
    retention.start()
    memory = Memory(store, MemoryPolicy.load(settings.suppression_days)) if settings.memory_enabled else None
    pipeline = HookPipeline(settings, assembler, kb, store, memory, clock)
    state = ServiceState(
        settings=settings,
        services=load_services(),
        pipeline=pipeline,
        store=store,
        retention=retention,
        verifier=_verifier(settings, store),
        clock=clock,
    )
    app.extensions[EXTENSION] = state

    app.register_blueprint(api)
    app.register_blueprint(patient_plan.plan)
    app.register_blueprint(smart_app.app)
    console.register(
        app,
        settings,
        store=store,
        services=dict(state.services),
        assembler=assembler,
        kb=kb,
        windows=pipeline.windows,
        pipeline=pipeline,
        fhir_servers=_console_fhir_servers(settings, state.verifier),
        clock=clock,
    )
    _register_http_behaviour(app, settings)
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _console_fhir_servers(settings: Settings, verifier: Verifier | None) -> tuple[str, ...]:
    """The FHIR servers the console may name: the settings' allow-list, then every trusted EHR's servers."""
    registered = [s for ehr in verifier.registry.values() for s in ehr.fhir_servers] if verifier else []
    return tuple(dict.fromkeys([*settings.allowed_fhir_servers, *registered]))


class SecurityHeaders:
    """The headers every answer carries, added where the answer starts (WSGI): a list extend per response,
    where Flask's header object checked and set them one by one (a tenth of the cost of a minimal call)."""

    HEADERS = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer"))
    _NAMES = frozenset(name.lower() for name, _ in HEADERS)

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers[:] = [h for h in headers if h[0].lower() not in self._NAMES]  # ours replace any other value
            headers.extend(self.HEADERS)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def _verifier(settings: Settings, store: Store) -> Verifier | None:
    if not settings.auth_required:
        log.warning(
            "AUTHENTICATION IS OFF: any caller can invoke these services (development setting CDS_AUTH_REQUIRED=false)"
        )
        return None
    if settings.trusted_ehrs_file is None:
        raise RuntimeError(
            "authentication is on but no registry of trusted EHRs is configured: set CDS_TRUSTED_EHRS_FILE "
            "(or CDS_AUTH_REQUIRED=false for local development only)"
        )
    if not settings.public_base_url:
        # The audience must be fixed by the operator: taken from the request's Host and X-Forwarded-Proto it
        # would accept a token addressed to any other service the caller names.
        raise RuntimeError(
            "authentication is on but CDS_PUBLIC_BASE_URL is not set: set it to the URL EHRs use to reach this "
            "service (e.g. https://cds.example.org); JWT `aud` is checked against it, never against request headers"
        )
    # Several instances share one PostgreSQL database, so the replay record lives there; SQLite is one host.
    shared = store if store.engine.dialect.name == "postgresql" else ReplayGuard(settings.replay_db)
    return Verifier(
        load_registry(settings.trusted_ehrs_file),
        DegradingReplayRecord(shared),
        KeySets(timeout_s=settings.fhir_connect_timeout_s, refresh_interval_s=settings.jwks_refresh_interval_s),
        leeway_s=settings.jwt_leeway_s,
        max_lifetime_s=settings.jwt_max_lifetime_s,
    )


def _cds() -> ServiceState:
    return state_of(current_app)


@api.get("/healthz")
def healthz() -> Any:
    """Liveness: the process answers. The storage state is shown, not judged (advice works without it)."""
    store = _cds().store
    return jsonify({"status": "ok", "storage": "degraded" if store.degraded else "ok"})


@api.get("/readyz")
def readyz() -> Any:
    """Readiness: 503 while the card log or feedback store fails (a write failed in the last minute, or the
    database cannot be read), so an orchestrator or operator sees it; hook calls still answer meanwhile."""
    store = _cds().store
    verifier: Verifier | None = _cds().verifier
    replay = verifier.replay if verifier is not None else None
    local_only = isinstance(replay, DegradingReplayRecord) and replay.shared_down_since is not None
    replay_state = {"replay": "this worker only (the shared record is down)"} if local_only else {}
    store.flush(READY_FLUSH_S)  # a card log write still queued counts: it fails before the check, not after
    failing = store.degraded or not store.readable()  # readable() asks the database: once
    if failing or local_only:
        storage = "failing" if failing else "ok"
        body = {"status": "degraded", "storage": storage, "writeFailures": store.write_failures, **replay_state}
        response = jsonify(body)
        response.status_code = 503
        return response
    return jsonify({"status": "ready", "storage": "ok"})


@api.get("/metrics")
def prometheus_metrics() -> Any:
    """The Prometheus text format (every worker's counts): calls, latency, cards, FHIR fetches, storage."""
    body, content_type = metrics.exposition()
    return current_app.response_class(body, mimetype=None, content_type=content_type)


@api.get("/cds-services")
def discovery() -> Any:
    return jsonify({"services": [s.discovery() for s in _cds().services.values()]})


def _service_and_body(service_id: str) -> tuple[CdsService, Any]:
    """The service and the decoded body; a ProtocolError (404, 415, 413 or 400) otherwise."""
    service = _cds().services.get(service_id)
    if service is None:
        raise ProtocolError(f"no CDS service with id {service_id!r}", status=404, code="not-found")
    g.service = service_id
    return service, json_body()


@api.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Any:
    service, body = _service_and_body(service_id)
    hook_request = parse_hook_request(body, service)
    g.hook, g.hook_instance = hook_request.hook, hook_request.hook_instance
    caller: Caller | None = g.get("caller")
    if caller is not None:
        hook_request = replace(hook_request, caller=caller_key(caller))
    # With authentication on, the FHIR servers a caller may name are those registered for that EHR.
    allowed = caller.ehr.fhir_servers if caller else None
    # A disallowed FHIR server or required data not obtainable raise a ServiceError: the one handler answers.
    result = _cds().pipeline.answer(service, hook_request, allowed_servers=allowed)
    g.cards = len(result.body["cards"])
    g.held_back = list(result.held_back)
    return jsonify(result.body)


def _audience(settings: Settings) -> str:
    """The URL the EHR called, as `aud` must name it: the configured public base URL (required when
    authentication is on, checked at start-up) and the path; never the Host or forwarded headers."""
    return settings.public_base_url.rstrip("/") + request.path


@api.post("/cds-services/<service_id>/feedback")
def receive_feedback(service_id: str) -> Any:
    _, body = _service_and_body(service_id)
    caller: Caller | None = g.get("caller")
    who = caller_key(caller) if caller else LOCAL_CALLER
    return jsonify(store_feedback(_cds().store, service_id, parse_feedback(body), _cds().clock(), who))


class FastJson(DefaultJSONProvider):
    """Flask's JSON provider on orjson (keys kept in the order built: the spec's card field order)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=str).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Any:
        obj = args[0] if len(args) == 1 else (args or kwargs)
        return self._app.response_class(orjson.dumps(obj, default=str), mimetype=self.mimetype)  # type: ignore[arg-type]


def _register_http_behaviour(app: Flask, settings: Settings) -> None:
    origins = settings.cors_origins

    @app.before_request
    def start_timer() -> Any:
        g.started = time.perf_counter()
        if request.method == "OPTIONS":
            # CORS preflight: browsers (e.g. the CDS Hooks sandbox) send one before every call.
            response = current_app.response_class(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
            return response
        verifier: Verifier | None = _cds().verifier
        if verifier is not None and request.path.startswith("/cds-services"):
            try:
                g.caller = verifier.verify(request.headers.get("Authorization"), _audience(settings))
            except AuthenticationFailed as exc:
                log.warning("authentication failed", extra={"reason": exc.reason, "path": request.path})
                raise
            # Any other ServiceError (the shared replay guard could not be read: 503, never accepted) goes to
            # the one handler as it is.
        return None

    @app.after_request
    def finish(response: Any) -> Any:
        # `g` and `request` are context-local proxies: bound once here, read as plain objects below.
        state, req = g._get_current_object(), request._get_current_object()  # type: ignore[attr-defined]
        origin = req.headers.get("Origin")
        if origin and ("*" in origins or origin in origins):
            response.headers["Access-Control-Allow-Origin"] = origin if "*" not in origins else "*"
            response.headers["Vary"] = "Origin"
        duration_ms = (time.perf_counter() - getattr(state, "started", time.perf_counter())) * 1000
        fields = {
            "method": req.method,
            "path": req.path,
            "service": getattr(state, "service", None),
            "hook": getattr(state, "hook", None),
            "hookInstance": getattr(state, "hook_instance", None),
            "status": response.status_code,
            "duration_ms": round(duration_ms, 2),
            "cards": getattr(state, "cards", None),
        }
        if reason := getattr(state, "error_reason", None):
            fields["reason"] = reason
        if held_back := getattr(state, "held_back", None):
            fields["held_back"] = held_back
        log.info("request", extra=fields)
        if req.endpoint == "cds_hooks.call_service":
            service = getattr(state, "service", None)
            known = _cds().services.get(service) if service else None
            label, hook = (known.id, known.hook) if known else ("unknown", "unknown")  # never the caller's words
            metrics.HOOK_CALLS.labels(label, hook, str(response.status_code)).inc()
            metrics.HOOK_LATENCY.labels(label).observe(duration_ms / 1000)
        return response

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> Any:
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}.get(
            exc.code or 500, "invalid"
        )
        messages = {
            404: "no such endpoint; discovery is at /cds-services",
            405: f"method {request.method} is not allowed here",
            413: f"the request body is larger than {settings.max_request_bytes} bytes",
        }
        return operation_outcome(exc.code or 500, messages.get(exc.code or 0, exc.description or "error"), code)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        # Never a stack trace or request data in the answer; the log has the type for the operator.
        log.error("unhandled error", exc_info=exc)
        return operation_outcome(500, "internal error; the service log has details", "exception")
