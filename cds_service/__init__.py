"""A CDS Hooks 2.0 service for the low back pain guideline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cds_service.web.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use, not with the package: gunicorn's master loads web/gunicorn_conf.py, which must set
    # the metrics folder before anything imports prometheus_client (the application does).
    if name == "create_app":
        from cds_service.web.app import create_app

        return create_app
    raise AttributeError(f"module 'cds_service' has no attribute {name!r}")
