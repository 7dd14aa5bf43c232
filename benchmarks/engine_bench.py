"""Sampling throughput of the llama.cpp engine against plain llama-cpp-python.

    python benchmarks/engine_bench.py [--n 16] [--max-tokens 128] [--threads T] [--model PATH]

One prompt of about 300 tokens (raw text to continue, so that few samples end early on EOS), ``n``
samples of at most ``max_tokens`` tokens at temperature 0.8, top-p 1, the same GGUF and thread count
for all three. The GGUF defaults to the one the ``default`` engine runs: the packaged
SmolLM2-135M-Instruct re-encoded as Q8_0 (``--model`` with the packaged Q4_1 file measures that one;
llama.cpp has no batched CPU kernel for Q4_1, so every parallel figure is lower there):

1. ``sequential``: llama-cpp-python's ``Llama.create_completion`` called ``n`` times one after
   another (its prefix match evaluates the prompt once; each sample then decodes alone).
2. ``raw parallel``: llama.cpp's batch API written out in this script (not reasonloop): the prompt
   once in sequence 0 of a unified KV cache, shared with the other ``n - 1`` sequences, then one
   batch per step holding the next token of every running sequence, sampled in numpy one
   sequence at a time. (reasonloop gives each sequence a KV stream of its own instead, so that a
   sample does not depend on its companions, and samples all sequences of a step in one matrix
   operation; see ``reasonloop.engines.llamacpp``.)
3. ``reasonloop``: ``LlamaCppEngine.generate`` with one ``Request(n=n)``.

Every method stops a sample on an end-of-generation token or at ``max_tokens``; the table reports
the tokens each one generated and tokens/s (time from the call to the last token, model loading
excluded; each method is run once), and the CPU seconds the process used, a steadier measure on a
shared machine (with one thread it is the work done; with more it also counts threads spinning). The last line reads ``vs_raw_parallel=X vs_sequential=Y``:
reasonloop's tokens/s divided by each. The goals: >= 0.9 and >= 2.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

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


def sequential(llm, prompt: str, n: int, max_tokens: int) -> int:
    """``n`` ``create_completion`` calls one after another; the tokens generated."""
    tokens = 0
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
    return tokens


def raw_parallel(llm, prompt: str, n: int, max_tokens: int, threads: int) -> int:
    """``n`` sequences decoded together with llama.cpp's batch API; the tokens generated."""
    import llama_cpp as lc

    ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    vocab = llm._model.vocab
    n_vocab = llm.n_vocab()
    params = lc.llama_context_default_params()
    params.n_ctx = -(-(len(ids) + n * max_tokens) // 256) * 256
    params.n_batch = params.n_ubatch = max(512, n)
    params.n_seq_max = n
    params.n_threads = params.n_threads_batch = threads
    params.kv_unified = True  # one copy of the shared prompt (flash attention: llama.cpp's auto)
    ctx = lc.llama_init_from_model(llm._model.model, params)
    batch = lc.llama_batch_init(max(512, n), 0, 1)
    mem = lc.llama_get_memory(ctx)

    def decode(items):  # (token, pos, seq, logits?)
        for k, (tok, pos, seq, out) in enumerate(items):
            batch.token[k], batch.pos[k], batch.n_seq_id[k] = tok, pos, 1
            batch.seq_id[k][0], batch.logits[k] = seq, out
        batch.n_tokens = len(items)
        assert lc.llama_decode(ctx, batch) == 0

    def row(k):
        return np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, k), shape=(n_vocab,))

    def draw(logits, rng):
        z = logits.astype(np.float64) / 0.8
        cum = np.cumsum(np.exp(z - z.max()))
        return min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), n_vocab - 1)

    try:
        for start in range(0, len(ids), 512):
            chunk = ids[start : start + 512]
            decode([(t, start + j, 0, start + j == len(ids) - 1) for j, t in enumerate(chunk)])
        first = row(len(ids) - 1 - (len(ids) - 1) // 512 * 512).copy()
        for s in range(1, n):
            lc.llama_memory_seq_cp(mem, 0, s, -1, -1)
        rngs = [np.random.default_rng(s) for s in range(n)]
        last = [draw(first, rngs[s]) for s in range(n)]
        made = [1] * n
        alive = [s for s in range(n) if not lc.llama_vocab_is_eog(vocab, last[s])]
        tokens = len(alive)
        while alive:
            alive = [s for s in alive if made[s] < max_tokens]
            if not alive:
                break
            decode([(last[s], len(ids) + made[s] - 1, s, True) for s in alive])
            still = []
            for k, s in enumerate(alive):
                last[s] = draw(row(k), rngs[s])
                made[s] += 1
                if not lc.llama_vocab_is_eog(vocab, last[s]):
                    tokens += 1
                    still.append(s)
            alive = still
        return tokens
    finally:
        lc.llama_batch_free(batch)
        lc.llama_free(ctx)


def with_reasonloop(engine, prompt: str, n: int, max_tokens: int) -> int:
    from reasonloop.engines.base import Request

    req = Request(prompt=prompt, n=n, temperature=0.8, max_tokens=max_tokens, seed=0)
    return engine.generate([req])[0].completion_tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--model", default=None, help="a .gguf (default: what the default engine runs)")
    args = ap.parse_args()

    import llama_cpp

    from reasonloop.engines.llamacpp import LlamaCppEngine, default_engine_model

    path = args.model or default_engine_model()[0]
    llm = llama_cpp.Llama(
        model_path=path,
        n_ctx=4096,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    n_prompt = len(llm.tokenize(PROMPT.encode(), add_bos=False, special=True))
    engine = LlamaCppEngine(path, n_threads=args.threads, n_parallel=max(16, args.n))

    rows = []
    for name, run in (
        (
            "sequential (create_completion)",
            lambda: sequential(llm, PROMPT, args.n, args.max_tokens),
        ),
        (
            "raw parallel (batch API)",
            lambda: raw_parallel(llm, PROMPT, args.n, args.max_tokens, args.threads),
        ),
        (
            "reasonloop LlamaCppEngine",
            lambda: with_reasonloop(engine, PROMPT, args.n, args.max_tokens),
        ),
    ):
        llm.reset()
        t0, c0 = time.perf_counter(), time.process_time()
        tokens = run()
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append((name, tokens, secs, tokens / secs, cpu))
    engine.close()
    llm.close()

    print(
        f"model {os.path.basename(path)}, prompt {n_prompt} tokens, n={args.n}, "
        f"max_tokens={args.max_tokens}, temperature 0.8, threads={args.threads}"
    )
    print(f"{'method':<34}{'tokens':>8}{'seconds':>10}{'tok/s':>10}{'cpu s':>10}{'tok/cpu-s':>11}")
    for name, tokens, secs, rate, cpu in rows:
        print(f"{name:<34}{tokens:>8}{secs:>10.2f}{rate:>10.1f}{cpu:>10.2f}{tokens / cpu:>11.1f}")
    ours = rows[2][3]
    print(f"vs_raw_parallel={ours / rows[1][3]:.2f} vs_sequential={ours / rows[0][3]:.2f}")


if __name__ == "__main__":
    main()
