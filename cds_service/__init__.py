"""A CDS Hooks 2.0 service for the low back pain guideline."""

from .app import create_app

__all__ = ["create_app"]
