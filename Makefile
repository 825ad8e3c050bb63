# opsdash — the two commands: `make run` (embedded demo) and `make test`.
PYTHON ?= python3
VENV := .venv
TOOLS := .tools
UV_VERSION := 0.13.8
UV := $(TOOLS)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
# Test-only keys: long, obviously fake, never used outside `make test`.
TEST_ENV := SECRET_KEY=test-secret-key-not-for-production-0123456789abcdef \
	PII_HMAC_KEY=test-pii-hmac-key-not-for-production-0123456789abcdef

.PHONY: install run test lint format bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

run: install
	DEBUG=1 $(VENV)/bin/python manage.py run_embedded

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(TEST_ENV) $(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install lint
	$(TEST_ENV) $(VENV)/bin/python manage.py check --fail-level WARNING
	$(TEST_ENV) $(VENV)/bin/python manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(VENV)/bin/pytest $(PYTEST_ARGS)

bench: install
	$(TEST_ENV) $(VENV)/bin/python bench/run_all.py

clean:
	rm -rf $(VENV) $(TOOLS) var
