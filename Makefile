# `make book` and `make test` set up .venv themselves on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# Tools inside the venv (nbgrader shells out to `alembic`) must be found without activating it.
export PATH := $(BIN):$(PATH)
export MPLBACKEND := Agg

.PHONY: venv system-deps book claims test check lint clean help

# Debian packages the tests need: Chromium (site checks), bubblewrap (grading sandbox),
# PostgreSQL (gradebook test against a real server). Installed only when missing.
SYSTEM_PACKAGES := chromium bubblewrap postgresql

help:
	@echo "make book   build the Jupyter Book into _build/html (executes chapters, cached)"
	@echo "           EDITION=self-study: with reference implementations in spoilers, into"
	@echo "           _build/self-study/_build/html"
	@echo "           SEED_SET=k THREADS=t ISA=AVX2: a robustness build (another seed set, thread"
	@echo "           count, oneDNN ISA) into _build/variants/<settings>, with its own cache"
	@echo "make claims the figures the chapters' prose states, one column per build made so far"
	@echo "           (default and each robustness build), and each chapter's execution time"
	@echo "make test   install missing Debian packages, ruff, then the whole pytest suite"
	@echo "           (library, exercises and grader, sandbox, book build, site checks in Chromium)"
	@echo "make check  ruff, then the fast tests only (no @slow: unit tests and the in-process"
	@echo "           checks of every variant; no grading end to end, book or site)"
	@echo "make lint   ruff only"
	@echo "make clean  remove _build (keeps .venv)"

venv: $(STAMP)

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Re-run the install whenever requirements.txt or pyproject.toml is newer than the stamp.
# pip compiles every module's bytecode here, as it does by default: the grading sandbox
# mounts .venv read-only, so a kernel could not write it and would compile on every
# import (the reader repository's Makefile, which grades nothing, skips it).
$(STAMP): requirements.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# EDITION=course (default): no page shows the implementation of an object students write.
# EDITION=self-study: those implementations in collapsed spoilers, built into _build/self-study
# (same execution cache). See _ext/editions.py.
EDITION ?= course
BOOK_OUT_course :=
BOOK_OUT_self-study := --path-output _build/self-study

# Robustness builds (issue "claims that hold on any machine"): SEED_SET=k runs every chapter on a
# second, disjoint seed set (RESNET_COURSE_SEED_SET, read by resnet_course.seeds), THREADS=t on t
# PyTorch threads (RESNET_COURSE_THREADS), ISA=AVX2 with oneDNN held to that instruction set
# (ONEDNN_MAX_CPU_ISA). Such a build goes to _build/variants/<settings>/ with its own execution
# cache (_ext/editions.py), e.g. `make book SEED_SET=1 ISA=AVX2`.
SEED_SET ?=
THREADS ?=
ISA ?=
VARIANT := $(subst $() ,_,$(strip $(if $(SEED_SET),seed-set-$(SEED_SET)) \
             $(if $(THREADS),threads-$(THREADS)) $(if $(ISA),isa-$(ISA))))
# With THREADS, OpenMP's threads sleep instead of spinning while they wait: the build runs
# chapters side by side, and spinning threads of several chapters on few cores starve each other
# (a 60 s chapter took over 30 min on a loaded 2-core machine). Results are unchanged.
VARIANT_ENV := $(if $(SEED_SET),RESNET_COURSE_SEED_SET=$(SEED_SET)) \
               $(if $(THREADS),RESNET_COURSE_THREADS=$(THREADS) OMP_WAIT_POLICY=PASSIVE) \
               $(if $(ISA),ONEDNN_MAX_CPU_ISA=$(ISA))
BOOK_OUT := $(if $(VARIANT),--path-output _build/variants/$(VARIANT)-$(EDITION),$(BOOK_OUT_$(EDITION)))

book: $(STAMP)
	@case "$(EDITION)" in course|self-study) ;; \
	  *) echo "EDITION must be course or self-study, not '$(EDITION)'"; exit 2;; esac
	COURSE_EDITION=$(EDITION) $(VARIANT_ENV) $(BIN)/jupyter-book build . -W -n --keep-going $(BOOK_OUT)

# Reads the execution caches of the builds made so far (tests/claims_table.py); executes nothing.
claims: $(STAMP)
	@$(BIN)/python tests/claims_table.py

lint: $(STAMP)
	$(BIN)/ruff check .

# Tests run in parallel on every core (pytest-xdist); tests/conftest.py keeps the ones that share
# a build folder or a module-wide fixture on one worker. PYTEST_ARGS adds options, e.g. -x.
PYTEST := $(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(PYTEST)

check: $(STAMP)
	$(BIN)/ruff check .
	$(PYTEST) -m "not slow"

clean:
	rm -rf _build
