# `make book` and `make test` set up .venv themselves on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# Tools inside the venv (nbgrader shells out to `alembic`) must be found without activating it.
export PATH := $(BIN):$(PATH)
export MPLBACKEND := Agg

.PHONY: venv book test lint clean help

help:
	@echo "make book   build the Jupyter Book into _build/html (executes chapters, cached)"
	@echo "make test   ruff, then the whole pytest suite (library, grader, book build, site checks)"
	@echo "make lint   ruff only"
	@echo "make clean  remove _build (keeps .venv)"

venv: $(STAMP)

# Re-run the install whenever requirements.txt or pyproject.toml is newer than the stamp.
$(STAMP): requirements.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

clean:
	rm -rf _build
