# Two commands set everything up on a fresh clone: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH ?=
export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: install demo test test-slow test-all lint typecheck pytest synth bench lambda-layer deploy clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tenant-analytics demo

# `make test` stays within 15 minutes on two cores: the suites marked slow (Spark, the whole pipeline, end to end)
# run in `make test-slow`; CI (.ci/run) and `make test-all` run both.
test: lint typecheck pytest

test-slow: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup -m slow tests

test-all: test test-slow

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy src lambdas glue_jobs stacks app.py

pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup -m "not slow" tests

synth: $(STAMP)
	$(BIN)/python app.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH)

# Third-party packages of the Lambda functions, built for the Lambda platform (needs PyPI, not Docker).
lambda-layer: $(STAMP) requirements-lambda.txt
	rm -rf build/lambda-layer
	$(BIN)/python -m pip install --quiet --platform manylinux2014_x86_64 --only-binary=:all: \
	  --implementation cp --python-version 3.11 --target build/lambda-layer/python -r requirements-lambda.txt

# Deploy with the pinned CDK CLI (the 3.x line does not read this cloud-assembly schema).
deploy: $(STAMP) lambda-layer
	npx --yes aws-cdk@2.1148.1 deploy --all --app "$(BIN)/python app.py"

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache
