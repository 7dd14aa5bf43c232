"""The installed llama.cpp runs on this CPU and is a portable build (issue 15).

Everything that runs native code runs in a child process, so that a crash (say SIGSEGV in an AMX
kernel) is a failed test whose message holds the signal, this CPU's flags and llama.cpp's own
system info, not a dead test run.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

pytestmark = pytest.mark.slow

# The x86 CPU variants `make install` builds (llama.cpp's GGML_CPU_ALL_VARIANTS list, less the
# Makefile's LLAMA_DROP_VARIANTS) by the /proc/cpuinfo flags each needs, and the score bits its
# loader adds for them (ggml-cpu/arch/x86/cpu-feats.cpp): the loaded variant must be the best one
# this CPU can run.
_AVX512 = ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")
_BASE = ("sse4_2", "avx", "f16c", "fma", "avx2", "bmi2")
X86_VARIANTS = {
    "haswell": _BASE,
    "skylakex": _BASE + _AVX512,
    "cascadelake": _BASE + _AVX512 + ("avx512_vnni",),
    "icelake": _BASE + _AVX512 + ("avx512vbmi", "avx512_vnni"),
    "zen4": _BASE + _AVX512 + ("avx512vbmi", "avx512_vnni", "avx512_bf16"),
    "alderlake": _BASE + ("avx_vnni",),
}
SCORE_BITS = {"fma": 1, "f16c": 2, "sse4_2": 4, "bmi2": 8, "avx": 16, "avx2": 32, "avx_vnni": 64,
              "avx512f": 128, "avx512vbmi": 256, "avx512_bf16": 512, "avx512_vnni": 1024}  # fmt: skip
AMX_VARIANT = "sapphirerapids"
# defined only where llama.cpp compiles its AMX code (__AMX_INT8__, ggml-cpu/amx/*.cpp)
AMX_SYMBOLS = (b"ggml_backend_amx_buffer_type", b"ggml_backend_amx_mul_mat")


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def best_x86_variant(flags: set[str]) -> str:
    """The variant llama.cpp's loader picks for a CPU with ``flags`` (highest score it can run)."""
    runnable = [v for v, need in X86_VARIANTS.items() if set(need) <= flags]
    return max(runnable, key=lambda v: sum(SCORE_BITS.get(f, 0) for f in set(X86_VARIANTS[v])))


def simd_flags() -> str:
    keep = ("avx", "amx", "sse4", "fma", "f16c", "bmi2", "asimd", "sve", "sme", "i8mm")
    return " ".join(sorted(f for f in cpu_flags() if f.startswith(keep))) or "(no /proc/cpuinfo)"


def system_info() -> str:
    """llama.cpp's system info, from a child of its own (it may crash too)."""
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return p.stdout.strip() if p.returncode == 0 else f"(unavailable: exit {p.returncode})"


def run_child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON. A crash or an error fails
    the test with the exit signal, the CPU's flags and llama.cpp's system info."""
    p = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    if p.returncode != 0:
        how = (
            f"killed by {signal.Signals(-p.returncode).name}"
            if p.returncode < 0
            else f"exit {p.returncode}"
        )
        pytest.fail(
            f"llama.cpp child process failed ({how}) on {platform.machine()}\n"
            f"CPU flags: {simd_flags()}\n"
            f"llama.cpp system info: {system_info()}\n"
            f"stderr tail:\n{p.stderr[-3000:]}",
            pytrace=False,
        )
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_default_engine_generates_16_tokens_in_a_child_process():
    out = run_child(
        """
        import json
        from reasonloop.engines import load_engine
        from reasonloop.engines.base import Request
        e = load_engine("default")
        s = e.generate([Request(prompt="Count: 1, 2, 3,", max_tokens=16)])[0].samples[0]
        print(json.dumps({"tokens": s.tokens, "finish": s.finish_reason, "text": s.text}))
        """
    )
    assert out["tokens"] == 16 and out["finish"] == "length"
    assert out["text"].startswith(" 4, 5, 6")  # greedy on the packaged model


def test_plain_llama_cpp_python_generates_16_tokens_in_a_child_process():
    # no reasonloop in the child: the library must find its CPU backend by itself
    from reasonloop.engines.llamacpp import default_model_path

    out = run_child(
        f"""
        import json, llama_cpp
        llm = llama_cpp.Llama(model_path={default_model_path()!r}, n_ctx=256, verbose=False)
        out = llm.create_completion("Count: 1, 2, 3,", max_tokens=16, temperature=0.0)
        print(json.dumps({{"tokens": out["usage"]["completion_tokens"],
                           "text": out["choices"][0]["text"]}}))
        """
    )
    assert out["tokens"] == 16 and out["text"].startswith(" 4, 5, 6")


@pytest.fixture(scope="module")
def backend() -> dict:
    return run_child(
        """
        import dataclasses, json
        from reasonloop.engines.llamacpp import cpu_backend
        print(json.dumps(dataclasses.asdict(cpu_backend())))
        """
    )


def test_build_is_not_native_but_runtime_selected_variants(backend):
    # A native build (llama-cpp-python's default) has its CPU code in one fixed library and no
    # variant; `make install` builds every variant and llama.cpp picks one at run time.
    assert backend["variant"], (
        f"{backend['library']} is one fixed CPU build (e.g. GGML_NATIVE), not run-time variants; "
        "rebuild llama-cpp-python: make install"
    )
    assert backend["variant"] in backend["available"] and backend["score"] > 0
    if platform.machine() in ("x86_64", "AMD64"):
        assert set(backend["available"]) == set(X86_VARIANTS), "see LLAMA_DROP_VARIANTS"
        assert backend["variant"] == best_x86_variant(cpu_flags()), simd_flags()
    elif platform.machine() in ("aarch64", "arm64"):
        assert any(v.startswith(("armv8", "apple")) for v in backend["available"])


def test_no_amx_code_is_installed_or_enabled(backend):
    assert AMX_VARIANT not in backend["available"]
    assert not any(f.startswith("AMX") for f in backend["features"]), backend["features"]
    assert "AMX_INT8 = 1" not in backend["system_info"]
    # no CPU code file beside it holds llama.cpp's AMX functions (the sapphirerapids one does)
    lib = Path(backend["library"]).parent
    amx = [p.name for p in lib.glob("*ggml-cpu*") if any(s in p.read_bytes() for s in AMX_SYMBOLS)]
    assert amx == [], f"AMX code in {amx}"


def test_an_amx_cpu_gets_the_best_variant_without_amx():
    # Sapphire Rapids: AVX-512 with VBMI, VNNI and BF16, AVX-VNNI and AMX; zen4 is the best left
    spr = set(X86_VARIANTS["zen4"]) | {"avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}
    assert best_x86_variant(spr) == "zen4"
    assert best_x86_variant(set(X86_VARIANTS["icelake"]) | {"avx_vnni"}) == "icelake"
    assert best_x86_variant(set(_BASE) | {"avx_vnni"}) == "alderlake"
    assert best_x86_variant(set(_BASE)) == "haswell"
    # Cooper Lake (AVX-512 VNNI and BF16, no VBMI) keeps its VNNI kernels
    assert best_x86_variant(set(X86_VARIANTS["cascadelake"]) | {"avx512_bf16"}) == "cascadelake"
