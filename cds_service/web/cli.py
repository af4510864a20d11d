"""``cds-service``: serve, load fixtures into a FHIR server, call a hook, or run the whole thing locally.

cds-service serve [--host H] [--port P] [--workers N]
cds-service load-fixtures --fhir-server URL [--token T] [--dir DIR]
cds-service call HOOK --patient ID --fhir-server URL [--token T] [--draft-order FILE] [--service URL]
cds-service dev [--port P] [--fhir-port P]  # local FHIR server + fixtures + service (`make run`)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from cds_service.devtools import fhir_package
from cds_service.devtools.fixture_requests import build_request
from cds_service.devtools.fixtures import fixture_paths, fixtures_dir, load_bundle

SERVICE_FOR_HOOK = {
    "patient-view": "lbp-patient-view",
    "order-select": "lbp-order-select",
    "order-sign": "lbp-order-sign",
}
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def gunicorn_command(host: str, port: int, workers: int, app: str = "cds_service.web.wsgi:app") -> list[str]:
    """The one production server command: the Dockerfile, `serve` and the tests all run this (and the
    benchmark's floor, with its own `app`, so that both are served the same way)."""
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        # Threaded workers: a connection waits in the poller until it sends something, and a half-sent
        # request holds one of the worker's threads, not the worker (sync workers froze the service for
        # 30 s with two slow clients).
        "--worker-class", "gthread",
        "--threads", "8",
        "--timeout", "30",
        "--graceful-timeout", "10",
        "--error-logfile", "-",
        "--no-control-socket",  # nothing uses it, and a non-root user has no home to put it in
        "--config", "python:cds_service.web.gunicorn_conf",  # gunicorn's own error pages as JSON
        app,
    ]  # fmt: skip


def cmd_serve(args: argparse.Namespace) -> int:
    from cds_service.settings import Settings

    settings = Settings.from_env()
    command = gunicorn_command(args.host or settings.host, args.port or settings.port, args.workers)
    os.execv(command[0], command)
    return 0  # not reached


def load_fixtures(fhir_server: str, token: str | None, directory: Path) -> list[str]:
    """POST every fixture as a transaction Bundle; returns the patient ids loaded."""
    headers = dict(FHIR_JSON)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    loaded = []
    for path in fixture_paths(directory):
        bundle = load_bundle(path)
        response = requests.post(fhir_server.rstrip("/"), json=bundle, headers=headers, timeout=30)
        if response.status_code >= 300:
            raise SystemExit(
                f"{path.name}: the FHIR server answered HTTP {response.status_code}: {response.text[:500]}"
            )
        loaded.append(path.stem)
    return loaded


def load_knowledge_package(fhir_server: str) -> int:
    """The knowledge as FHIR resources (fhir_package/, `make fhir-package`) into a FHIR server, so that a
    reviewer browses /PlanDefinition and /ValueSet there; returns how many resources were loaded."""
    bundle = fhir_package.transaction()
    response = requests.post(fhir_server.rstrip("/"), json=bundle, headers=dict(FHIR_JSON), timeout=60)
    if response.status_code >= 300:
        raise SystemExit(
            f"the FHIR package: the FHIR server answered HTTP {response.status_code}: {response.text[:500]}"
        )
    return len(bundle["entry"])


def cmd_load_fixtures(args: argparse.Namespace) -> int:
    for patient in load_fixtures(args.fhir_server, args.token, fixtures_dir(args.dir)):
        print(f"loaded Patient/{patient}")
    return 0


def format_cards(answer: dict[str, Any]) -> str:
    cards = answer.get("cards", [])
    if not cards:
        return "No cards: nothing to advise for this patient and these orders."
    lines = []
    for card in cards:
        lines.append(f"[{card['indicator'].upper()}] {card['summary']}")
        lines.append(f"  source: {card['source']['label']} <{card['source'].get('url', '')}>")
        for suggestion in card.get("suggestions", []):
            actions = ", ".join(a["type"] for a in suggestion.get("actions", []))
            lines.append(f"  suggestion: {suggestion['label']} ({actions})")
        for reason in card.get("overrideReasons", []):
            lines.append(f"  override reason: {reason['display']}")
        lines.append("")
    return "\n".join(lines)


def cmd_call(args: argparse.Namespace) -> int:
    draft = json.loads(Path(args.draft_order).read_text()) if args.draft_order else None
    body = build_request(args.hook, args.patient, args.fhir_server, args.token, draft)
    url = f"{args.service.rstrip('/')}/cds-services/{SERVICE_FOR_HOOK[args.hook]}"
    response = requests.post(url, json=body, timeout=30)
    if args.json or response.status_code != 200:
        print(json.dumps(response.json() if response.content else {}, indent=2))
        return 0 if response.status_code == 200 else 1
    print(format_cards(response.json()))
    return 0


def _wait_for(url: str, timeout_s: float = 60.0) -> None:
    from cds_service.devtools.readiness import NotReady, wait_until_ready

    try:
        wait_until_ready(url, timeout_s)
    except NotReady as exc:
        raise SystemExit(str(exc)) from exc


SANDBOX_URL = "https://sandbox.cds-hooks.org/"


def sandbox_link(fhir_base: str, discovery_url: str, patient_id: str) -> str:
    """A link that opens the public CDS Hooks sandbox on this FHIR server, patient and service discovery."""
    query = urlencode({"fhirServiceUrl": fhir_base, "patientId": patient_id, "serviceDiscoveryURL": discovery_url})
    return f"{SANDBOX_URL}?{query}"


def cmd_dev(args: argparse.Namespace) -> int:
    from cds_service.devtools.local_fhir import LocalFhirServer

    fixtures = fixtures_dir(args.fixtures)  # before anything starts: nothing to clean up if it is missing
    problem = LocalFhirServer.available()
    if problem:
        raise SystemExit(f"cannot start the local FHIR server: {problem}")
    # SIGTERM (e.g. from a supervisor) stops both servers the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    from cds_service.settings import Settings

    settings = Settings.from_env()
    port = args.port or settings.port
    public = os.environ.get("CDS_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    # The local FHIR server's development SMART authorization server, with the STarT Back app registered: the
    # card's `smart` link launches it end to end (also from the public CDS Hooks sandbox pointed at it).
    redirect = f"{public.rstrip('/')}/smart/startback/app"
    fhir = LocalFhirServer(port=args.fhir_port, smart_clients={settings.smart_client_id: [redirect]})
    base = fhir.start()
    load_fixtures(base, None, fixtures)
    load_knowledge_package(base)
    # The local server is added to whatever allow-list the settings already name (a public sandbox, say).
    allowed = [s for s in os.environ.get("CDS_ALLOWED_FHIR_SERVERS", "").split(",") if s.strip()]
    env = {
        **os.environ,
        "CDS_AUTH_REQUIRED": "false",
        "CDS_ALLOW_INSECURE_FHIR_HTTP": "true",
        "CDS_ALLOWED_FHIR_SERVERS": ",".join(dict.fromkeys([base, *allowed])),
        # The cards' links to the service's own pages (the patient's plan) need its address.
        "CDS_PUBLIC_BASE_URL": public,
        # On a developer's machine (authentication off, 127.0.0.1 only) the console is on unless switched off.
        "CDS_CONSOLE_ENABLED": os.environ.get("CDS_CONSOLE_ENABLED", "true"),
    }
    service = subprocess.Popen(gunicorn_command("127.0.0.1", port, 2), env=env)
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz")
        draft = fixtures / "draft-orders" / "lumbar-mri.json"
        print(
            f"\nLocal FHIR server:  {base}  (fixture patients and the knowledge's FHIR package loaded)\n"
            f"CDS discovery:      http://127.0.0.1:{port}/cds-services\n"
            f"Console:            http://127.0.0.1:{port}/console  (try a hook, card gallery, answers)\n\n"
            "Fire order-sign for a lumbar MRI on the uncomplicated acute low back pain patient:\n\n"
            f"  .venv/bin/cds-service call order-sign --patient lbp-acute --fhir-server {base} "
            f"--draft-order {draft.relative_to(Path.cwd()) if draft.is_relative_to(Path.cwd()) else draft} "
            f"--service http://127.0.0.1:{port}\n\n"
            "Or open the public CDS Hooks sandbox in a browser on this machine, pointed at both servers:\n\n"
            f"  {sandbox_link(base, f'http://127.0.0.1:{port}/cds-services', 'lbp-acute')}\n\n"
            "Ctrl-C stops both servers.\n",
            flush=True,
        )
        service.wait()
    except KeyboardInterrupt:
        pass
    finally:
        service.terminate()
        service.wait(timeout=15)
        fhir.stop()
    return 0


def _parse_day(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if "T" not in value else datetime.fromisoformat(value)


def format_report(report: dict[str, dict[str, Any]], start: datetime, end: datetime) -> str:
    lines = [f"Cards from {start.date().isoformat()} to {end.date().isoformat()}", ""]
    # accepted / overridden: each card's final answer (a card can be answered again); the line under a rule
    # counts every answer and each card's first.
    columns = ("shown", "accepted", "overridden", "suppressed", "accept %", "free text %")
    header = f"{'rule':<28} " + " ".join(f"{c:>11}" for c in columns)
    lines += [header, "-" * len(header)]
    for rule, r in sorted(report.items()):
        rate = f"{r['acceptance_rate'] * 100:.1f}" if r["acceptance_rate"] is not None else "-"
        free = f"{r['free_text_share'] * 100:.1f}" if r["free_text_share"] is not None else "-"
        values = (r["shown"], r["accepted"], r["overridden"], r["suppressed"], rate, free)
        lines.append(f"{rule:<28} " + " ".join(f"{v:>11}" for v in values))
        every, first = r["every_answer"], r["first_answer"]
        if sum(every.values()):
            lines.append(
                f"{'':<4}every answer: accepted {every['accepted']}, overridden {every['overridden']}; "
                f"first answer: accepted {first['accepted']}, overridden {first['overridden']}"
            )
        for reason, count in sorted(r["override_reasons"].items(), key=lambda kv: -kv[1]):
            lines.append(f"{'':<4}override reason {reason}: {count}")
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    from cds_service.settings import Settings
    from cds_service.storage.store import Store

    store = Store(Settings.from_env().database_url)
    end = _parse_day(args.until) + timedelta(days=1) if args.until else datetime.now(UTC)
    start = _parse_day(args.since) if args.since else end - timedelta(days=30)
    if args.by == "clinician":
        print(_clinician_report(store.clinician_report(start, end), start, end, args.format))
        return 0
    if args.format == "csv":
        raise SystemExit("--format csv is for --by clinician")
    if args.by == "rule":
        report = store.report(start, end)
        if args.format == "json":
            print(json.dumps({"from": start.isoformat(), "to": end.isoformat(), "rules": report}, indent=2))
        else:
            print(format_report(report, start, end))
        return 0
    groups = _report_groups(store, start, end, args.by)
    if args.format == "json":
        reports = {name: report for name, (_, _, report) in groups.items()}
        body = {"from": start.isoformat(), "to": end.isoformat(), "by": args.by, "groups": reports}
        print(json.dumps(body, indent=2))
    else:
        for name, (first, last, report) in groups.items():
            print(f"== {args.by} {name}")
            print(format_report(report, first, last))
            print()
    return 0


CLINICIAN_COLUMNS = ("imaging_orders", "without_red_flag", "without_red_flag_share", "cancelled_or_replaced")


def _clinician_report(report: dict[str, Any], start: datetime, end: datetime, fmt: str) -> str:
    """Report cards: each clinician's lumbar imaging orders against the median of their peers."""
    clinicians, peers = report["clinicians"], report["peer_median_without_red_flag_share"]
    if fmt == "json":
        return json.dumps({"from": start.isoformat(), "to": end.isoformat(), **report}, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        header = ["clinician", *CLINICIAN_COLUMNS, "peer_median_without_red_flag_share", "override_reasons", "weekly"]
        writer.writerow(header)
        for user, row in clinicians.items():
            reasons = ";".join(f"{code}={n}" for code, n in sorted(row["override_reasons"].items()))
            # week=orders/without a red flag, one field so that the file stays one row per clinician
            weekly = ";".join(f"{w['week']}={w['imaging_orders']}/{w['without_red_flag']}" for w in row["weekly"])
            writer.writerow([user, *(row[c] for c in CLINICIAN_COLUMNS), peers, reasons, weekly])
        return out.getvalue().rstrip("\n")
    lines = [f"Lumbar imaging orders from {start.date().isoformat()} to {end.date().isoformat()}", ""]
    peer_text = f"{peers * 100:.0f}%" if peers is not None else "-"
    for user, row in clinicians.items():
        lines.append(
            f"{user}: {row['imaging_orders']} imaging orders, {row['without_red_flag']} without a red flag "
            f"({row['without_red_flag_share'] * 100:.0f}%; peers' median {peer_text}), "
            f"{row['cancelled_or_replaced']} cancelled or replaced after a card"
        )
        for code, n in sorted(row["override_reasons"].items(), key=lambda kv: -kv[1]):
            lines.append(f"    override reason {code}: {n}")
        lines.append("    weekly, orders (without a red flag): " + _trend(row["weekly"]))
    return "\n".join(lines)


def _trend(weekly: list[dict[str, Any]]) -> str:
    return ", ".join(f"{w['week']} {w['imaging_orders']} ({w['without_red_flag']})" for w in weekly)


Grouped = dict[str, tuple[datetime, datetime, dict[str, dict[str, Any]]]]


def _report_groups(store: Any, start: datetime, end: datetime, by: str) -> Grouped:
    """The report per service, per calling EHR (issuer|tenant) or per week (Monday to Sunday) of the period,
    each with the period it covers."""
    if by == "week":
        first = (start - timedelta(days=start.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        weeks: Grouped = {}
        while first < end:
            period = (max(first, start), min(first + timedelta(days=7), end))
            weeks[first.date().isoformat()] = (*period, store.report(*period))
            first += timedelta(days=7)
        return weeks
    column = {"service": "service_id", "ehr": "caller"}[by]  # the store's column, and its report's filter
    return {
        name: (start, end, store.report(start, end, **{column: name}))
        for name in store.report_groups(start, end, column)
    }


def cmd_purge(args: argparse.Namespace) -> int:
    from cds_service.settings import Settings
    from cds_service.storage.store import Store

    settings = Settings.from_env()
    days = args.older_than_days if args.older_than_days is not None else settings.retention_days
    cards, feedback = Store(settings.database_url).purge(datetime.now(UTC) - timedelta(days=days))
    print(f"purged {cards} card log rows and {feedback} feedback rows older than {days} days")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = command_line().parse_args(argv)
    return int(args.func(args) or 0)


def command_line() -> argparse.ArgumentParser:
    """The commands and their options; ports default to CDS_PORT and CDS_FHIR_PORT when those are set."""
    parser = argparse.ArgumentParser(prog="cds-service", description="Low back pain CDS Hooks service")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the production server (gunicorn)")
    serve.add_argument("--host", help="default: CDS_HOST (127.0.0.1)")
    serve.add_argument("--port", type=int, help="default: CDS_PORT (8000)")
    serve.add_argument("--workers", type=int, default=int(os.environ.get("CDS_WORKERS", "2")))
    serve.set_defaults(func=cmd_serve)

    load = sub.add_parser("load-fixtures", help="POST every fixture patient to a FHIR R4 server")
    load.add_argument("--fhir-server", required=True)
    load.add_argument("--token")
    load.add_argument("--dir", help="fixture folder (default: the repository's fhir_fixtures/, or CDS_FIXTURES_DIR)")
    load.set_defaults(func=cmd_load_fixtures)

    call = sub.add_parser("call", help="send one hook request to a running service and print the cards")
    call.add_argument("hook", choices=sorted(SERVICE_FOR_HOOK))
    call.add_argument("--patient", required=True)
    call.add_argument("--fhir-server", required=True)
    call.add_argument("--token")
    call.add_argument("--draft-order", help="a FHIR resource or Bundle (JSON file) to send as draftOrders")
    call.add_argument("--service", default="http://127.0.0.1:8000")
    call.add_argument("--json", action="store_true", help="print the raw response")
    call.set_defaults(func=cmd_call)

    dev = sub.add_parser("dev", help="local FHIR server with fixtures + the service, for trying it out")
    dev.add_argument("--port", type=int, help="the service's; default: CDS_PORT (8000)")
    # The local FHIR server is a development tool: its port is its own setting, not the service's.
    dev.add_argument("--fhir-port", type=int, default=int(os.environ.get("CDS_FHIR_PORT", "8080")))
    dev.add_argument(
        "--fixtures", help="fixture folder (default: the repository's fhir_fixtures/, or CDS_FIXTURES_DIR)"
    )
    dev.set_defaults(func=cmd_dev)

    report = sub.add_parser("report", help="per-rule card, acceptance and override numbers (CDS_DATABASE_URL)")
    report.add_argument("--since", help="first day, YYYY-MM-DD (default: 30 days ago)")
    report.add_argument("--until", help="last day, YYYY-MM-DD (default: now)")
    report.add_argument("--format", choices=["text", "json", "csv"], default="text", help="csv: --by clinician")
    report.add_argument(
        "--by",
        choices=["rule", "service", "ehr", "week", "clinician"],
        default="rule",
        help="one report per service, EHR or week; or report cards per clinician (lumbar imaging orders)",
    )
    report.set_defaults(func=cmd_report)

    purge = sub.add_parser("purge", help="delete card logs and feedback older than the retention period")
    purge.add_argument("--older-than-days", type=int, help="default: CDS_RETENTION_DAYS (365)")
    purge.set_defaults(func=cmd_purge)

    return parser


if __name__ == "__main__":
    sys.exit(main())
