# mediagraph — every target installs what it needs into .venv from the lock file.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)

.PHONY: dev test system-deps lint typecheck bench lock schema clean serve worker

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

## Embedded moto + Redis (REDIS_URL) + API + worker; prints the GraphiQL URL and a token.
dev: $(STAMP)
	$(BIN)/mediagraph dev

## Debian packages the tests run for real: ClamAV's clamd (with a test-made signature database),
## ffmpeg/ffprobe (video checks and poster frames). Installed only when missing.
SYSTEM_PACKAGES = $(if $(or $(shell command -v clamd),$(wildcard /usr/sbin/clamd)),,clamav-daemon) \
	$(if $(and $(shell command -v ffmpeg),$(shell command -v ffprobe)),,ffmpeg)
system-deps:
	@if [ -n "$(strip $(SYSTEM_PACKAGES))" ]; then \
	  echo "installing $(strip $(SYSTEM_PACKAGES))"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

## The whole suite: lint, types, import contracts, schema snapshot, unit + integration + e2e.
test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

bench: $(STAMP)
	$(BIN)/python -m bench

## Rewrite schema/schema.graphql from the code (a test fails when they differ).
schema: $(STAMP)
	$(BIN)/python -c "from schema.root import build_schema; open('schema/schema.graphql','w').write(build_schema().as_str() + '\n')"

## Re-resolve the lock file from pyproject.toml (needs network to PyPI).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet "uv>=0.4"
	$(BIN)/uv pip compile pyproject.toml --all-extras --python-version 3.11 --quiet -o requirements.lock

serve: $(STAMP)
	$(BIN)/mediagraph serve

worker: $(STAMP)
	$(BIN)/mediagraph worker

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache *.egg-info
