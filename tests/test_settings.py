"""Settings come from CDS_* environment variables, typed, with safe defaults and loud errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.settings import Settings


def test_defaults_are_the_safe_production_choice():
    settings = Settings.from_env({})
    assert settings.auth_required is True
    assert settings.allow_insecure_fhir_http is False
    assert settings.allowed_fhir_servers == ()


def test_values_are_read_with_their_types():
    settings = Settings.from_env(
        {
            "CDS_AUTH_REQUIRED": "false",
            "CDS_ALLOWED_FHIR_SERVERS": "https://a.example/fhir, https://b.example/r4",
            "CDS_FHIR_READ_TIMEOUT_S": "2.5",
            "CDS_FHIR_MAX_PAGES": "3",
            "CDS_TRUSTED_EHRS_FILE": "/etc/cds/ehrs.json",
        }
    )
    assert settings.auth_required is False
    assert settings.allowed_fhir_servers == ("https://a.example/fhir", "https://b.example/r4")
    assert settings.fhir_read_timeout_s == 2.5
    assert settings.fhir_max_pages == 3
    assert settings.trusted_ehrs_file == Path("/etc/cds/ehrs.json")


@pytest.mark.parametrize(("name", "value"), [("CDS_AUTH_REQUIRED", "maybe"), ("CDS_FHIR_MAX_PAGES", "many")])
def test_a_malformed_value_fails_at_start_naming_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})
