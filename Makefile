# The README's two commands: `make demo` (the main job) and `make test`. Both set everything up.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: setup demo test bench clean

setup:
	@scripts/setup_venv.sh

demo: setup  ## prepare the CCP demo data set and print its statistics
	.venv/bin/clothparse prepare --profile demo

test: setup  ## the test suite (unit tests; CCP tests need CLOTHPARSE_DATA_DIR)
	$(PY) -m pytest

bench: setup  ## benchmarks: printed figures, not tests
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_models.py
	$(PY) benchmarks/bench_persons.py

clean:
	rm -rf runs build _build .pytest_cache
