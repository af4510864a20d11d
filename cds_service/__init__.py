"""A CDS Hooks 2.0 service for the low back pain guideline."""

from cds_service.web.app import create_app

__all__ = ["create_app"]
