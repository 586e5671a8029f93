# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap first (idempotent).
VENV := .venv
BIN := $(VENV)/bin
PKGS := crawler spiders storage scheduler sandbox console

.PHONY: bootstrap demo test check lint types fmt bench clean

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	$(BIN)/tertib demo --out tertib-demo

test: bootstrap
	$(BIN)/python -m pytest -q

lint: bootstrap
	$(BIN)/ruff check $(PKGS) tests bench
	$(BIN)/ruff format --check $(PKGS) tests bench

types: bootstrap
	$(BIN)/mypy

check: lint types test

fmt: bootstrap
	$(BIN)/ruff format $(PKGS) tests bench
	$(BIN)/ruff check --fix $(PKGS) tests bench

bench: bootstrap
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf tertib-demo .pytest_cache .mypy_cache .ruff_cache
