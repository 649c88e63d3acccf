# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
FAKE_PORT ?= 9100

.PHONY: run test venv lint

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# Start the gateway on the embedded default (SQLite, no Redis) with a demo org, key and models.
run: venv
	$(PY) manage.py migrate --no-input
	$(PY) manage.py quickstart --port $(PORT) --fake-port $(FAKE_PORT)

# Run the tests; PostgreSQL and Redis on loopback are used when they answer.
test: venv
	$(PY) -m tests.run $(ARGS)

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
