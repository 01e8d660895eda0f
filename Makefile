# The two commands a newcomer needs are `make run` and `make test`; both install first.
# Everything is installed into .venv from requirements.lock (exact versions, hashes).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint bench lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: install
	$(BIN)/gateway serve

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check gateway processors workflows tests
	$(BIN)/ruff format --check gateway processors workflows tests
	$(BIN)/mypy

bench: install
	$(BIN)/gateway bench $(BENCH_ARGS)

# Regenerate the lock file after changing dependencies in pyproject.toml (needs uv on PATH).
# setuptools is locked too: the project itself is installed without build isolation.
lock:
	echo "setuptools>=69" | uv pip compile pyproject.toml - --extra test --universal \
		--generate-hashes --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
