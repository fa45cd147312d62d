# The two commands of the README: `make up` runs the mesh, `make test` runs every check.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
BUF := .tools/node_modules/.bin/buf
STAMP := $(VENV)/.installed

API_RELEASE := protos/api-release.binpb

.PHONY: venv tools generate check-generated lint typecheck buf-lint buf-breaking release-api test up bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@1

venv: $(STAMP)

tools: $(STAMP) $(BUF)

generate: $(STAMP)
	$(PY) -m gateway.codegen

check-generated: $(STAMP)
	$(PY) -m gateway.codegen --check

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy common users oms audit gateway bench

buf-lint: tools
	$(BUF) lint gateway/descriptor.pb#format=binpb --config protos/buf.yaml

# No change may break a client of the last released API (wire and JSON): see docs/gateway.md.
buf-breaking: tools
	$(BUF) breaking gateway/descriptor.pb#format=binpb --against $(API_RELEASE)#format=binpb --config protos/buf.yaml

# Cut a release of the API: what buf-breaking holds every later change to.
release-api: check-generated
	cp gateway/descriptor.pb $(API_RELEASE)

test: tools lint typecheck check-generated buf-lint buf-breaking
	$(PY) -m pytest $(PYTEST_ARGS)

up: $(STAMP)
	$(VENV)/bin/mesh up

bench: $(STAMP)
	$(PY) -m bench $(BENCH)

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache
