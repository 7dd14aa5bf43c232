"""Child process for the export tests: load a GGUF in llama.cpp and write what it computes.

Run as ``python llamacpp_logits.py MODEL.gguf REQUEST.json OUT.npz``; REQUEST holds ``ids`` (the
tokens to evaluate), ``greedy`` (how many tokens to continue them by, argmax) and ``text`` (a
string to tokenize, special tokens parsed). Run in a child so that llama.cpp aborting on a bad file
fails one test instead of killing pytest.
"""

import json
import sys
from pathlib import Path

import llama_cpp
import numpy as np


def main(model: str, request: str, out: str) -> None:
    req = json.loads(Path(request).read_text())
    ids = req["ids"]
    llm = llama_cpp.Llama(
        model_path=model,
        n_ctx=max(64, len(ids) + req["greedy"] + 8),
        n_batch=512,
        logits_all=True,
        verbose=False,
        seed=0,
    )
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
    greedy = []
    for _ in range(req["greedy"]):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        greedy.append(token)
        llm.eval([token])
    text_ids = llm.tokenize(req.get("text", "").encode(), add_bos=False, special=True)
    np.savez(out, logits=logits, greedy=np.array(greedy), text_ids=np.array(text_ids))


if __name__ == "__main__":
    main(*sys.argv[1:4])
