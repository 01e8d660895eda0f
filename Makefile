# The two commands a newcomer needs are `make run` and `make test`; both install first.
# Everything is installed into .venv from requirements.lock (exact versions, hashes): the
# gateway with every extra a developer needs (embedded servers, tests, lint, bench).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test test-browser browser-deps lint bench lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@echo "==> Installing the locked dependencies into $(VENV) (the first time takes ~30 s)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	@$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)
	@echo "==> Installed."

run: install
	@echo "==> Starting the sandbox gateway (embedded PostgreSQL and Valkey under .gateway/)"
	$(BIN)/gateway serve

test: install
	$(BIN)/pytest

# The operator console's browser tests drive the system's Chromium through Playwright. `make test`
# runs them when a Chromium is present and says why they are skipped when not; this target
# installs Chromium from the OS packages first (Debian's `chromium`; root or sudo), then runs them.
CHROMIUM ?= /usr/bin/chromium

browser-deps:
	@if [ -x "$(CHROMIUM)" ]; then echo "==> Chromium: $(CHROMIUM)"; else \
		echo "==> Installing Chromium from the OS packages"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; \
	fi

test-browser: install browser-deps
	GATEWAY_CHROMIUM=$(CHROMIUM) $(BIN)/pytest tests/browser

lint: install
	$(BIN)/ruff check gateway processors workflows tools tests contracts
	$(BIN)/ruff format --check gateway processors workflows tools tests contracts
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m tools.bench $(BENCH_ARGS)

# Regenerate the lock files after changing dependencies in pyproject.toml (needs uv on PATH):
# requirements.lock for development (every extra), requirements-runtime.lock for the container
# image (the gateway alone). setuptools is locked too: the project is installed without build
# isolation.
lock:
	echo "setuptools>=69" | uv pip compile pyproject.toml - --all-extras --universal \
		--generate-hashes --python-version 3.11 -o requirements.lock
	echo "setuptools>=69" | uv pip compile pyproject.toml - --universal \
		--generate-hashes --python-version 3.11 -o requirements-runtime.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
