# Two commands on a fresh machine (Python 3.11+, Node 20+): `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FHIR_SERVER := tools/fhir-server
NODE_STAMP := $(FHIR_SERVER)/node_modules/.installed

.PHONY: install run test lint format clean valuesets fhir-package patient-plan bench bench-compare container-test scale-out-test clock-ahead-test mutation fuzz soak

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

$(NODE_STAMP): $(FHIR_SERVER)/package-lock.json
	cd $(FHIR_SERVER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(NODE_STAMP)

## Local FHIR server with the fixture patients + the CDS service on 127.0.0.1:8000 (Ctrl-C stops both).
## The service and the local FHIR server on other ports: make run PORT=8001 FHIR_PORT=8081 (or CDS_PORT, CDS_FHIR_PORT).
PORT ?= $(or $(CDS_PORT),8000)
FHIR_PORT ?= $(or $(CDS_FHIR_PORT),8080)
run: install
	$(BIN)/cds-service dev --port $(PORT) --fhir-port $(FHIR_PORT)

## Lint, the whole test suite (unit and integration, against the real local FHIR server), the in-process
## tests again with the clock 400 days ahead (faketime), then the container image smoke test and the
## scale-out test of deploy/compose.yaml (each skipped with a message where its tool is not available).
test: install lint
	$(BIN)/python -m pytest
	scripts/clock-ahead-test
	scripts/container-smoke-test
	scripts/scale-out-test

## The in-process tests with the machine's clock 400 days ahead: no outcome may depend on the day.
clock-ahead-test: install
	scripts/clock-ahead-test

## Build the Dockerfile with Podman and smoke-test the running image.
container-test: install
	scripts/container-smoke-test

## deploy/compose.yaml under podman-compose: two instances behind nginx on one PostgreSQL.
scale-out-test: install
	scripts/scale-out-test

## ruff, mypy strict, and the layer contracts of pyproject.toml (import-linter).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## The knowledge as a FHIR R4 package (README, "The knowledge as a FHIR package"): fhir_package/ (committed;
## a test fails when it differs from the knowledge) and build/fhir-package.tgz, the file FHIR tools install.
fhir-package: $(STAMP)
	$(BIN)/python -m cds_service.devtools.fhir_package --tgz build/fhir-package.tgz

## The patient's plan as PDF (knowledge/patient_plan.json -> cds_service/web/static/patient-plan.pdf; a test
## fails when the shipped file differs from the knowledge).
patient-plan: $(STAMP)
	$(BIN)/python -m cds_service.devtools.patient_plan_pdf

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Rebuild cds_service/knowledge/valuesets from ../shared/reference/terminology (review the diff).
valuesets: $(STAMP)
	$(BIN)/python scripts/build_valuesets.py

## 10 minutes of mixed calls at 8 connections: throughput, worker RSS and database size per minute.
soak: install
	$(BIN)/python -m bench.soak --minutes $${SOAK_MINUTES:-10}

## A long property-based fuzz of the hook and feedback endpoints (make test runs a fixed sample of 120).
fuzz: install
	CDS_FUZZ_EXAMPLES=$${CDS_FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest -q tests/test_fuzz.py -p no:randomly

## Mutation testing of the rules, the red-flag and the dose code with mutmut (not part of make test).
## Each mutant runs only the in-process tests that reach it; prints the score and every survivor.
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,mutation]'
	rm -rf mutants
	$(BIN)/mutmut run --max-children $$(nproc)
	$(BIN)/python scripts/mutation_report.py

clean:
	rm -rf $(VENV) $(FHIR_SERVER)/node_modules .pytest_cache .ruff_cache mutants

## Benchmarks against a floor (prints a table; never fails on timing). Installs wrk from Debian when root.
bench: install
	$(BIN)/python -m bench.run $(if $(PEER_URL),--peer-url '$(PEER_URL)' --peer-body '$(PEER_BODY)') $(if $(PEER_PID),--peer-pid $(PEER_PID))

## This checkout against another revision (REV=HEAD~1 by default), served side by side, measured interleaved.
bench-compare: install
	$(BIN)/python -m bench.compare $${REV:-HEAD~1}
