# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make repro   installs into .venv and runs the pipeline (dvc repro)
#   make test    installs into .venv and runs lint + the test suite (what CI runs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands call `python`/`dvc`: make them the venv's.
export PATH := $(BIN):$(PATH)

.PHONY: setup repro test lint format lock clean plots-template browser mlflow-screenshot

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

repro: $(STAMP)
	dvc repro

test: $(STAMP) lint browser
	pytest

# The browser tests open the report in Debian's chromium (driven by Playwright, which downloads no
# browser itself). Installed here when apt is available; elsewhere those tests fail and say so.
# Not root (a CI user): through sudo, which must not ask for a password.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
browser:
	@test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# README's picture of MLflow's compare view, from the store at the project root (mlflow.db): the
# newest parent run of each mode, J_and_F in the plot (tests/mlflow_compare.py).
mlflow-screenshot: $(STAMP) browser
	python -m tests.browser mlflow-compare --store mlflow.db --out docs/images/mlflow-compare.png

lint: $(STAMP)
	ruff check .
	ruff format --check .

format: $(STAMP)
	ruff check --fix .
	ruff format .

lock: $(STAMP)
	pip freeze --exclude-editable | grep -v -i -E '^(torch|torchvision|triton|nvidia-|cuda-|rvos)' > requirements.lock.new
	mv requirements.lock.new requirements.lock

# Re-vendor Vega / Vega-Lite / vega-embed into the offline `dvc plots show` template (needs npm).
plots-template: $(STAMP)
	python plots/build_offline.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
