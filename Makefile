# Every target bootstraps .venv itself: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo check test bench bench-scale clean browser-deps postgresql

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

# The server tests run on DuckDB and on PostgreSQL: Debian's postgresql is installed when
# missing (the suite starts and stops a throwaway cluster of its own, fixtures/postgres.py).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  echo "installing Debian's postgresql (apt-get)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }

# The dashboard's tests drive Debian's chromium (playwright cannot fetch its own browser
# offline) and read the PDF report back with poppler's pdftotext; the serial profile's
# real-terminal test drives tmux. Installed once, as root.
browser-deps:
	@if [ -x /usr/bin/chromium ] && command -v pdftotext >/dev/null && command -v tmux >/dev/null; then :; else \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q && \
		$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends chromium poppler-utils tmux; fi

test: $(STAMP) browser-deps postgresql
	TEXTUAL_ANIMATIONS=none $(BIN)/python -m pytest

bench: $(STAMP) postgresql
	$(BIN)/python -m bench.run

# Ships of 10k, 25k and 50k profiles with 40 KB portraits: time and memory against size.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale

clean:
	rm -rf $(VENV) demo-data bench/.data
