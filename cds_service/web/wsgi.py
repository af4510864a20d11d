"""WSGI entry point for gunicorn: ``gunicorn 'cds_service.web.wsgi:app'``. Settings come from the environment."""

from cds_service.web.app import create_app
from cds_service.web.gc_tuning import tune_for_short_calls

app = create_app()
tune_for_short_calls()  # the start-up heap frozen, young garbage collected less often (gc_tuning.py)
