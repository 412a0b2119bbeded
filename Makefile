# Pedigree: `make demo` and `make test` set everything up on a fresh machine (Python 3.11 + make).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1:8000

.PHONY: install test lint docs demo demo-reset migrate bench worker clean

$(STAMP): pyproject.toml client/pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the small CPU build unless this machine has CUDA (a looser requirement
	# resolved later would otherwise pull a multi-GB CUDA build).
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		$(BIN)/pip install --quiet "torch>=2.13,<2.15"; \
	else \
		$(BIN)/pip install --quiet torch==2.13.0; \
	fi
	$(BIN)/pip install --quiet -e './client[safetensors]'
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir var/site

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error $(BIN)/python manage.py demo --url http://$(HOST)
	HF_HUB_OFFLINE=1 $(BIN)/python manage.py runserver $(HOST)

demo-reset:
	rm -rf var
	$(MAKE) demo

bench: install
	$(BIN)/python bench/run.py

# One worker on every queue, with celery beat inside it (-B): the outbox relay, the sweeps of
# lost evaluations and deliveries, audit sealing and upload expiry run with nothing else to start.
worker: install
	$(BIN)/celery -A config worker -B -Q cpu,gpu,events --loglevel=INFO --concurrency=1

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
