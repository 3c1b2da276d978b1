# The two commands of the README:
#   make bench   run the asv suite against the embedded cloud and publish it as HTML
#                (SIZE=full: the layout study; SIZE=full BLOCK=loop: the closed loop of recommendations alone)
#   make test    run the tests
# Everything else is set up on demand. Versions come from constraints.txt only.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
SIZE   ?= quick
BLOCK  ?=

.PHONY: bench test lint env clean-data

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

env: $(VENV)/.installed

bench: env
	$(PY) -m nwb_cloud bench --size $(SIZE) $(if $(BLOCK),--block $(BLOCK))

test: env
	$(PY) -m pytest

lint: env
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
