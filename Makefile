# The README's two commands: `make demo` (the main job) and `make test`. Both set everything up.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: setup browser npm demo smoke html lab test bench clean

setup:
	@scripts/setup_venv.sh

demo: setup npm  ## main job: run the book on the CCP demo profile (CPU) into runs/demo/book, rendered to runs/demo/site/_build/html
	.venv/bin/clothparse book run --profile demo --html

smoke: setup npm  ## the whole book on synthetic data in a few minutes (results meaningless), rendered
	.venv/bin/clothparse book run --profile smoke --html

html: setup npm  ## render the committed chapters to _build/html (no execution)
	.venv/bin/clothparse book build

lab: setup  ## the chapters in JupyterLab with the project's kernel (.venv's python3); their run folders in ./runs
	CLOTHPARSE_RUNS_DIR="$${CLOTHPARSE_RUNS_DIR:-$(CURDIR)/runs}" .venv/bin/jupyter lab book/intro.ipynb $$([ "$$(id -u)" = 0 ] && echo --allow-root)

npm:  ## onnxruntime-web as package-lock.json pins it (npm ci), for the book's "Try it" page
	@scripts/npm_ci.sh

browser:  ## Debian's chromium for the browser test (needs root; otherwise that test skips)
	@scripts/install_chromium.sh

test: setup browser npm  ## the test suite, nbval's re-execution of the chapters and the browser test (CCP tests need CLOTHPARSE_DATA_DIR)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup  ## benchmarks: printed figures, not tests
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_models.py
	$(PY) benchmarks/bench_persons.py

clean:
	rm -rf runs build _build .pytest_cache
