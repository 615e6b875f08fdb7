# Two commands for a fresh machine with python3 (3.11+) and make:
#   make run    set up .venv and start tui-echo (ARGS="--port 0" to pass flags)
#   make test   set up .venv with the test extras and run the whole suite
#   make bench        benchmarks, a few minutes (make bench-full: the whole matrix, the README's chart)
#   make screenshot   retake the README's pictures: the monitor (assets/monitor.svg) and tui-echo web (assets/web.png)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
# make test's parallel workers (pytest-xdist): many tests wait on sockets and processes rather than compute,
# so more workers than cores pays; make test TEST_WORKERS=0 runs the suite in one process
TEST_WORKERS ?= 4

.PHONY: run test bench bench-full screenshot clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tui-echo needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV) || { echo "could not create $(VENV): on Debian/Ubuntu, apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/tui-echo $(ARGS)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $@ $(VENV)/.installed

# make bench: a few minutes, 64 B only; its chart and tables go to benchmarks/build (the README's come from bench-full)
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_echo.py --first-echo-limit 15 \
		--chart benchmarks/build/bench.svg --table benchmarks/build/bench_echo.md
	$(BIN)/python benchmarks/bench_accept.py --rounds 1
	$(BIN)/python benchmarks/bench_monitor.py --rounds 1 --levels 1000
	$(BIN)/python benchmarks/bench_memory.py --modes headless --cases idle,sent,partial
	$(BIN)/python benchmarks/bench_stop.py --rounds 1 --modes headless
	$(BIN)/python benchmarks/bench_load.py --rounds 1 --servers tui-echo
	$(BIN)/python benchmarks/bench_modes.py --rounds 1 --seconds 2 --connections 100

# the whole matrix, every server: assets/bench.svg and benchmarks/results/bench_echo.md for the README
bench-full: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_echo.py --full --servers all
	$(BIN)/python benchmarks/bench_accept.py
	$(BIN)/python benchmarks/bench_monitor.py
	$(BIN)/python benchmarks/bench_memory.py
	$(BIN)/python benchmarks/bench_stop.py
	$(BIN)/python benchmarks/bench_chat_flood.py
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_modes.py --rounds 3 --seconds 10

screenshot: $(VENV)/.installed-test
	$(BIN)/python scripts/screenshot.py
	$(BIN)/python scripts/web_screenshot.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis benchmarks/build
