"""Sampling throughput of the llama.cpp engine against llama.cpp's own parallel decoding.

    make llama-batched    # once: llama.cpp's batched example from the installed library's source
    python benchmarks/engine_bench.py [--n 16] [--max-tokens 128] [--threads T] [--repeats 3]
                                      [--model PATH] [--llama-batched PATH]

One prompt of about 300 tokens (raw text to continue, so that few samples end early on EOS), ``n``
samples of at most ``max_tokens`` tokens at temperature 0.8, top-p 1, no top-k, the same GGUF and
thread count for all three methods. The GGUF defaults to the one the ``default`` engine runs: the
packaged SmolLM2-135M-Instruct re-encoded as Q8_0 (``--model`` takes any GGUF, e.g. the packaged
Q4_1 file; llama.cpp has no batched CPU kernel for Q4_1, so every parallel figure is lower there):

1. ``sequential``: llama-cpp-python's ``Llama.create_completion`` called ``n`` times one after
   another (its prefix match evaluates the prompt once; each sample then decodes alone).
2. ``llama.cpp batched``: llama.cpp's own parallel decoding, its ``llama-batched`` example
   (``-np n -kvu``: the prompt evaluated once into a unified KV cache shared by all ``n``
   sequences, then one batch per step holding the next token of every running sequence, sampled
   in C++), built by ``make llama-batched`` from the very source llama-cpp-python was built from
   (the sdist of the installed version) with the same flags, and running the installed library's
   CPU variant files (the script checks that it loaded the same file). Its time is the prompt
   evaluation plus the decoding loop, on its log's clock (model loading excluded). Not the
   same sampling: it gives every sequence the same seed, so its ``n`` streams are one text ``n``
   times (they end together); it decodes each stream's last token too.
3. ``reasonloop``: ``LlamaCppEngine.generate`` with one ``Request(n=n)`` (a KV stream per
   sequence, the prompt's cells copied to each; see ``reasonloop.engines.llamacpp``).

Every method stops a sample on an end-of-generation token or at ``max_tokens``. Each method runs
once untimed (warm-up), then ``--repeats`` rounds, each round running every method once, in an
order that rotates from round to round; the table reports the median over the rounds of the tokens
generated, the seconds (from the call to the last token, model loading excluded), tokens/s, and
the CPU seconds used (for llama-batched: its whole process, model loading included), a steadier
measure on a shared machine (with one thread it is the work done; with more it also counts
threads spinning). The last line reads ``vs_raw_parallel=X vs_sequential=Y``: reasonloop's median
tokens/s divided by llama.cpp batched's and by sequential's. The goals: >= 0.9 and >= 2.

Not measured here: model loading, the HTTP server, scoring.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROMPT = (
    "The old lighthouse stood at the end of a narrow spit of rock, three miles from the nearest "
    "village. For most of the last century a keeper had lived in the small stone cottage at its "
    "foot, climbing the one hundred and twelve steps twice a night to trim the wick and wind the "
    "clockwork that turned the great lens. The last keeper, a quiet man named Thomas Hale, kept a "
    "logbook in which he recorded the weather, the ships that passed, and the birds that rested on "
    "the gallery rail during storms. When the light was automated, the logbook was sent to the "
    "county archive, where it sat unread in a cardboard box for nearly forty years.\n\n"
    "It was a graduate student, looking for data on historical storm frequency, who finally opened "
    "the box. She expected columns of numbers. Instead she found that Hale had written, in the "
    "margins of the official entries, a running account of his own life: the winter his daughter "
    "was born during a gale and the doctor could not cross the causeway; the summer a fishing boat "
    "ran aground and he rowed out alone to bring its crew ashore; the long evenings he spent "
    "teaching himself to read Latin from a schoolbook left behind by a visitor. The weather data "
    "was there too, careful and complete, but it was the margins that kept her in the reading room "
    "until the archivist turned off the lights.\n\n"
    "Over the following months she transcribed every page. She compared his storm records with "
    "ship logs and newspaper reports, and found them accurate to the hour. She also found that "
    "several of the events he described had never been reported anywhere else. The rescue of the "
    "fishing crew, for instance, appeared in no newspaper, and the boat's name did not match any "
    "registered vessel. When she finally tracked down the grandson of one of the fishermen, he"
)
ROOT = Path(__file__).resolve().parent.parent


def sequential(llm, prompt: str, n: int, max_tokens: int) -> tuple[int, float]:
    """``n`` ``create_completion`` calls one after another; (tokens generated, seconds)."""
    llm.reset()
    tokens = 0
    t0 = time.perf_counter()
    for i in range(n):
        out = llm.create_completion(
            prompt,
            max_tokens=max_tokens,
            temperature=0.8,
            top_p=1.0,
            top_k=0,
            min_p=0.0,
            repeat_penalty=1.0,
            seed=i,
        )
        tokens += out["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - t0


def with_reasonloop(engine, prompt: str, n: int, max_tokens: int) -> tuple[int, float]:
    from reasonloop.engines.base import Request

    req = Request(prompt=prompt, n=n, temperature=0.8, max_tokens=max_tokens, seed=0)
    t0 = time.perf_counter()
    tokens = engine.generate([req])[0].completion_tokens
    return tokens, time.perf_counter() - t0


# llama.cpp's log lines start with "M.SS.mmm.uuu I " (--log-timestamps: time since it started)
_STAMP = r"(\d+)\.(\d\d)\.(\d{3})\.(\d{3}) I \s*"
_START = re.compile(_STAMP + r"main: n_predict")  # just before it evaluates the prompt
_DECODED = re.compile(_STAMP + r"main: decoded (\d+) tokens")  # after its last step
_CPU_FILE = re.compile(r"loaded CPU backend from (\S+)")


def _readings(m: re.Match) -> list[float]:
    """The seconds a log stamp may read. Its minutes may have digits of the text before glued on
    (llama-batched ends its "stream ... finished at n_cur = K" lines without a newline), so each
    tail of the digits is a reading."""
    digits, rest = m[1], int(m[2]) + int(m[3]) / 1e3 + int(m[4]) / 1e6
    return [int(digits[-k:]) * 60 + rest for k in range(1, len(digits) + 1)]


def llama_batched(
    exe: Path, model: str, n_prompt: int, n: int, max_tokens: int, threads: int
) -> tuple[int, float, float, str]:
    """One run of llama.cpp's ``llama-batched``; (tokens, seconds, CPU seconds, CPU backend file).

    Seconds: on its log's clock, from the line it writes before evaluating the prompt to the one it
    writes after its last step (its own "decoded ... in X s" leaves the prompt out)."""
    cmd = [
        str(exe), "-m", model, "-p", PROMPT, "-n", str(n_prompt + max_tokens), "-np", str(n),
        "-kvu", "-t", str(threads), "-tb", str(threads), "--temp", "0.8", "--top-k", "0",
        "--top-p", "1.0", "--seed", "0", "-v", "--log-timestamps", "--log-colors", "off",
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=1800)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = proc.stdout + proc.stderr
    start, end = _START.search(log), _DECODED.search(log)
    if proc.returncode != 0 or not start or not end:
        tail = "\n".join(log.splitlines()[-20:])
        raise SystemExit(f"llama-batched failed (exit {proc.returncode}):\n{tail}")
    # the start is within its first minute; the end is the reading nearest the process's end
    secs = min(_readings(end), key=lambda t: abs(t - wall)) - min(_readings(start))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    loaded = _CPU_FILE.search(log)
    return int(end[5]), secs, cpu, loaded[1] if loaded else "?"


def default_llama_batched() -> Path:
    """Where ``make llama-batched`` puts the example for the installed llama-cpp-python."""
    from importlib.metadata import version

    return ROOT / "build" / f"llama.cpp-{version('llama-cpp-python')}" / "bin" / "llama-batched"


def cpu_summary() -> str:
    """The CPU's model name and its SIMD flags that llama.cpp's x86/ARM variants look at."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "CPU part") and name in ("", platform.machine()):
                    name = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    simd = re.compile(r"^(avx.*|amx.*|sse4_2|fma|f16c|bmi2|asimd.*|sve.*|sme|sme2|i8mm|bf16)$")
    return f"{name}; {' '.join(sorted(f for f in flags if simd.match(f))) or '?'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds (default 3)")
    ap.add_argument("--model", default=None, help="a .gguf (default: what the default engine runs)")
    ap.add_argument(
        "--llama-batched",
        type=Path,
        default=None,
        help="llama.cpp's llama-batched (default: the one `make llama-batched` builds)",
    )
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    exe = args.llama_batched or default_llama_batched()
    if not exe.is_file():
        sys.exit(f"no llama.cpp llama-batched at {exe}; build it with: make llama-batched")

    import llama_cpp

    from reasonloop.engines.llamacpp import LlamaCppEngine, cpu_backend, default_engine_model

    path = args.model or default_engine_model()[0]
    backend = cpu_backend()
    llm = llama_cpp.Llama(
        model_path=path,
        n_ctx=4096,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    n_prompt = len(llm.tokenize(PROMPT.encode(), add_bos=False, special=True))
    engine = LlamaCppEngine(path, n_threads=args.threads, n_parallel=max(16, args.n))
    loaded: set[str] = set()

    def in_process(fn):
        def run(n: int, max_tokens: int) -> tuple[int, float, float]:
            c0 = time.process_time()
            tokens, secs = fn(n, max_tokens)
            return tokens, secs, time.process_time() - c0

        return run

    def batched(n: int, max_tokens: int) -> tuple[int, float, float]:
        tokens, secs, cpu, cpu_file = llama_batched(
            exe, path, n_prompt, n, max_tokens, args.threads
        )
        loaded.add(cpu_file)
        return tokens, secs, cpu

    methods = {
        "sequential (create_completion)": in_process(lambda n, m: sequential(llm, PROMPT, n, m)),
        "llama.cpp batched (llama-batched)": batched,
        "reasonloop LlamaCppEngine": in_process(lambda n, m: with_reasonloop(engine, PROMPT, n, m)),
    }
    names = list(methods)
    for name in names:  # warm-up: page the model in, start the thread pools
        methods[name](min(args.n, 4), 16)
    runs: dict[str, list[tuple[int, float, float]]] = {name: [] for name in names}
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            runs[name].append(methods[name](args.n, args.max_tokens))
    engine.close()
    llm.close()

    same = {os.path.realpath(p) for p in loaded} == {os.path.realpath(backend.library)}
    print(
        f"model {os.path.basename(path)}, prompt {n_prompt} tokens, n={args.n}, "
        f"max_tokens={args.max_tokens}, temperature 0.8, threads={args.threads}; "
        f"medians of {args.repeats} interleaved rounds after a warm-up"
    )
    print(f"cpu {cpu_summary()}")
    print(
        f"llama.cpp CPU backend {backend.variant or 'fixed build'}"
        f"{'' if same else ' (llama-batched loaded ' + ', '.join(sorted(loaded)) + ')'}"
    )
    print(f"{'method':<34}{'tokens':>8}{'seconds':>10}{'tok/s':>10}{'cpu s':>10}{'tok/cpu-s':>11}")
    rates = {}
    for name in names:
        tokens = statistics.median(t for t, _, _ in runs[name])
        secs = statistics.median(s for _, s, _ in runs[name])
        rates[name] = statistics.median(t / s for t, s, _ in runs[name])
        cpu = statistics.median(c for _, _, c in runs[name])
        per_cpu = statistics.median(t / c for t, _, c in runs[name])
        print(
            f"{name:<34}{tokens:>8.0f}{secs:>10.2f}{rates[name]:>10.1f}{cpu:>10.2f}{per_cpu:>11.1f}"
        )
    ours = rates[names[2]]
    print(
        f"vs_raw_parallel={ours / rates[names[1]]:.2f} vs_sequential={ours / rates[names[0]]:.2f}"
    )


if __name__ == "__main__":
    main()
