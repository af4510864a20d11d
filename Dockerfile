# Production image: wheels are built in one stage, the slim runtime gets only the installed wheels.
# No BuildKit-only syntax (builds with Podman/Buildah too). The base is a build argument so that a
# locally built stand-in can be used where the registry is out of reach.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
# Dependencies first, against a stub package, so that a code change does not rebuild every wheel.
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir cds_service && touch cds_service/__init__.py \
    && python -m pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels -c constraints.txt . \
    && rm -rf cds_service /wheels/cds_lbp_service-*.whl
COPY cds_service ./cds_service
RUN python -m pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="cds-lbp-service" \
      org.opencontainers.image.description="CDS Hooks 2.0 service for the low back pain guideline" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CDS_HOST=0.0.0.0 \
    CDS_PORT=8000 \
    CDS_REPLAY_DB=/data/cds-lbp-seen-jti.sqlite3 \
    CDS_DATABASE_URL=sqlite:////data/cds-lbp.sqlite3
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir --disable-pip-version-check --no-index /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin cds \
    && mkdir -p /data && chown 10001 /data
# Card log, feedback and seen JWT ids; mount a volume here (or set CDS_DATABASE_URL to PostgreSQL).
VOLUME ["/data"]
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CDS_PORT', '8000'), timeout=2).status != 200)"]
# The same command the tests run: `cds-service serve` execs gunicorn with cds_service.web.wsgi:app,
# on CDS_HOST:CDS_PORT (0.0.0.0:8000 here).
CMD ["cds-service", "serve"]
