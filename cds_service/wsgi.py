"""WSGI entry point for gunicorn: ``gunicorn 'cds_service.wsgi:app'``. Settings come from the environment."""

from .app import create_app

app = create_app()
