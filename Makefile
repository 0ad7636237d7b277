# Every target builds what it needs from nothing: a fresh clone runs `make run` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench torture lint screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/promstack serve

test: $(STAMP)
	sh scripts/ensure-redis.sh
	sh scripts/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q
	cd sdk/typescript && npm ci --no-audit --no-fund && PROMSTACK_BIN=$(abspath $(BIN))/promstack npm test
	PROMSTACK_COMMAND=$(abspath $(BIN))/promstack sh scripts/vscode-tests.sh

bench: $(STAMP)
	$(BIN)/python -m bench

# The fault and bad-input suite alone (it also runs in `make test`); prints what it tried and the
# pytest counts. bench/RESULTS.md has the counts of the last run.
torture: $(STAMP)
	mkdir -p build
	$(BIN)/python -m pytest tests/robustness -q -s -p no:cacheprovider > build/torture.log 2>&1; status=$$?; \
		grep -E "saves: |100,000-row|keys: |limits: |worked|passed|failed|error" build/torture.log | sed 's/^[.]*//'; exit $$status

# Refresh the committed screenshots of the dashboard and the VS Code extension (a plain
# `make test` writes them under build/).
screenshots: $(STAMP)
	sh scripts/ensure-chromium.sh
	PROMSTACK_SCREENSHOTS=$(abspath docs/screenshots) $(BIN)/python -m pytest -q tests/test_dashboard.py
	PROMSTACK_SCREENSHOTS=$(abspath docs/screenshots) PROMSTACK_COMMAND=$(abspath $(BIN))/promstack sh scripts/vscode-tests.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
