# Every target bootstraps .venv itself: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo check test bench clean browser-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/muster demo

# Lint, formatting, types and the import contracts of the architecture (docs/architecture.md).
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The dashboard's tests drive Debian's chromium (playwright cannot fetch its own browser
# offline) and read the PDF report back with poppler's pdftotext; installed once, as root.
browser-deps:
	@if [ -x /usr/bin/chromium ] && command -v pdftotext >/dev/null; then :; else \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q && \
		$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends chromium poppler-utils; fi

test: $(STAMP) browser-deps
	TEXTUAL_ANIMATIONS=none $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) demo-data bench/.data
