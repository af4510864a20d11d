"""`make run` on other ports: `cds-service dev` (what `make run` runs) starts the local FHIR server and the
service on the ports it is given, by option or by CDS_PORT and CDS_FHIR_PORT, and Ctrl-C or SIGTERM stops
both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from cds_service.devtools.local_fhir import LocalFhirServer
from cds_service.devtools.readiness import wait_until_ready
from cds_service.settings import Settings
from cds_service.web.cli import command_line

from .postgres import reserved_ports

ROOT = Path(__file__).resolve().parent.parent


def test_the_service_port_comes_from_settings_and_the_fhir_port_from_its_own_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDS_PORT", "9123")
    monkeypatch.setenv("CDS_FHIR_PORT", "9124")
    args = command_line().parse_args(["dev"])
    assert (args.port, args.fhir_port, Settings.from_env().port) == (None, 9124, 9123)  # None: the settings decide
    assert command_line().parse_args(["dev", "--port", "9300"]).port == 9300
    monkeypatch.delenv("CDS_PORT")
    monkeypatch.delenv("CDS_FHIR_PORT")
    assert (command_line().parse_args(["dev"]).fhir_port, Settings.from_env().port) == (8080, 8000)


def test_make_run_passes_its_ports_to_the_dev_command() -> None:
    planned = subprocess.run(
        ["make", "-n", "run", "PORT=9201", "FHIR_PORT=9202"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "cds-service dev --port 9201 --fhir-port 9202" in planned


@pytest.mark.integration
def test_the_dev_command_serves_both_on_the_ports_from_the_environment_and_stops_on_sigterm(tmp_path: Path) -> None:
    problem = LocalFhirServer.available()
    if problem:
        pytest.fail(f"the dev command needs the local FHIR server: {problem} (make install installs it)")
    with reserved_ports(2) as (port, fhir_port):  # two distinct ports (two free_port calls may give one twice)
        pass
    env = {
        **os.environ,
        "CDS_PORT": str(port),
        "CDS_FHIR_PORT": str(fhir_port),
        "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'dev.sqlite3'}",
    }
    with (tmp_path / "dev.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cds_service.web.cli", "dev"], env=env, stdout=log, stderr=log, cwd=ROOT
        )
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/healthz", 120, process)
            services = requests.get(f"http://127.0.0.1:{port}/cds-services", timeout=10).json()["services"]
            assert {s["hook"] for s in services} == {"patient-view", "order-select", "order-sign"}
            patient = requests.get(f"http://127.0.0.1:{fhir_port}/fhir/Patient/lbp-acute", timeout=10)
            assert patient.status_code == 200 and patient.json()["id"] == "lbp-acute"  # fixtures loaded
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    for where in (port, fhir_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{where}/", timeout=2)
