# mediagraph — every target installs what it needs into .venv from the lock file.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)

.PHONY: dev test system-deps js lint typecheck bench lock schema clean serve worker

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
## ffmpeg/ffprobe (video checks and poster frames), Chromium and its driver (tests/browser, never a
## downloaded browser), Node.js and npm (clients/js, examples/web), redis-server (the fault and
## Redis Cluster tests start their own, never touching the shared one). Installed only when missing.
SYSTEM_PACKAGES = $(if $(or $(shell command -v clamd),$(wildcard /usr/sbin/clamd)),,clamav-daemon) \
	$(if $(and $(shell command -v ffmpeg),$(shell command -v ffprobe)),,ffmpeg) \
	$(if $(wildcard /usr/bin/chromium),,chromium) \
	$(if $(wildcard /usr/bin/chromedriver),,chromium-driver) \
	$(if $(shell command -v node),,nodejs) \
	$(if $(shell command -v npm),,npm) \
	$(if $(or $(shell command -v redis-server),$(wildcard /usr/bin/redis-server)),,redis-server)
system-deps:
	@if [ -n "$(strip $(SYSTEM_PACKAGES))" ]; then \
	  echo "installing $(strip $(SYSTEM_PACKAGES))"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

## The TypeScript client and the sample web app: packages from their lock files (npm ci), the
## client's Node tests (the schema-drift test among them), the app's bundle. Node.js 18 or newer.
js:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "Node.js 18+ and npm are missing: run 'make system-deps' (Debian: apt-get install nodejs npm)"; exit 1; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' || { \
	  echo "Node.js $$(node -v) is too old: clients/js and examples/web need 18 or newer"; exit 1; }
	cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm test
	cd examples/web && npm ci --no-audit --no-fund --loglevel=error && npm run build

## The whole suite: lint, types, import contracts, schema snapshot, JS client, unit + integration +
## e2e + browser tests.
test: $(STAMP) system-deps js
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
