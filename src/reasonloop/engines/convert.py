"""GGUF → transformers: dequantize a ``.gguf`` once and save it as a model directory (and GGUF →
GGUF: :func:`requantize_gguf` re-encodes one for faster batched decoding in llama.cpp).

transformers loads a GGUF dequantized (``from_pretrained(dir, gguf_file=NAME)``, with the ``gguf``
package) but will not ``save_pretrained`` the result (it counts as "quantized with gguf"). So the
model is rebuilt from its config without the quantization entry, given the dequantized weights, and
saved with its tokenizer (chat template included) and generation config. The directory then loads
like any other (``hf:DIR``, training), in seconds instead of a dequantization on every load.

A conversion is written to a temporary sibling folder and renamed into place when complete, with a
marker file that names the source (path, size, modification time); a second call with the same
source finds the marker and returns at once. A changed source is converted again. A folder that
exists without the marker is never overwritten.

The weights are saved as float32, the dtype GGUF tensors dequantize to (no rounding); pick a
smaller dtype when loading. The way back, a trained model to GGUF, is
:mod:`reasonloop.engines.export`; it finds the source GGUF through the marker and copies its
tokenizer.

Example::

    out = gguf_to_hf("models/smollm2.Q4_1.gguf")          # into the cache, once
    model = AutoModelForCausalLM.from_pretrained(out)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from reasonloop.errors import EngineError, MissingDependency

log = logging.getLogger(__name__)

MARKER = "reasonloop-converted.json"
CACHE_ENV = "REASONLOOP_CACHE"


def cache_root() -> Path:
    """Where converted models go by default: ``$REASONLOOP_CACHE``, else
    ``$XDG_CACHE_HOME/reasonloop``, else ``~/.cache/reasonloop``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reasonloop"


def _source(gguf: Path) -> dict[str, Any]:
    st = gguf.stat()
    return {"gguf": str(gguf.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _digest(gguf: Path) -> str:
    return hashlib.sha256(json.dumps(_source(gguf), sort_keys=True).encode()).hexdigest()[:12]


def default_out_dir(gguf_path: str | Path) -> Path:
    """The cache folder of one GGUF file: ``<cache>/hf-from-gguf/<stem>-<digest of its source>``."""
    gguf = Path(gguf_path)
    return cache_root() / "hf-from-gguf" / f"{gguf.stem}-{_digest(gguf)}"


# the types a quantized GGUF may be re-encoded as without losing much, and llama.cpp's names for them
_FTYPES = {
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "F16": "LLAMA_FTYPE_MOSTLY_F16",
    "F32": "LLAMA_FTYPE_ALL_F32",
}
REQUANTIZE_TYPES = tuple(_FTYPES)


def load_llama_cpp() -> Any:
    """The ``llama_cpp`` bindings (they load llama.cpp's native library), or MissingDependency
    naming the extra to install."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependency("llama-cpp-python", "llamacpp") from exc
    return llama_cpp


def requantize_gguf(gguf_path: str | Path, kind: str = "Q8_0") -> Path:
    """``gguf_path`` re-encoded with weights of type ``kind`` by llama.cpp's quantizer, once, in
    ``<cache>/gguf/<stem>-as-<kind>-<digest of its source>.gguf``; later calls return that file.

    Why: llama.cpp's CPU build has batched matrix kernels (llamafile's tinyBLAS, repacking) for
    Q8_0 and F16 weights but not for Q4_1. Measured in ``llama_decode`` alone on 2 cores, the
    packaged Q4_1 model decodes 16 parallel sequences 1.9x faster than one (130 vs 68 tok/s), a
    Q8_0 copy of it 2.2x (160 vs 72). Q8_0 holds a 4-bit
    model's weights almost exactly: on the packaged SmolLM2 the mean NLL of a 282-token text moved
    from 3.4294 to 3.4300 nats (F16: 3.4273). The file is written under a temporary name and
    renamed into place, so a killed conversion leaves nothing half-written behind."""
    gguf = Path(gguf_path)
    if not gguf.is_file():
        raise EngineError(f"no such GGUF file: {gguf}")
    if kind not in REQUANTIZE_TYPES:
        raise EngineError(
            f"cannot re-encode as {kind!r}; choose one of {', '.join(REQUANTIZE_TYPES)}"
        )
    out = cache_root() / "gguf" / f"{gguf.stem}-as-{kind}-{_digest(gguf)}.gguf"
    if out.is_file():
        return out
    lc = load_llama_cpp()
    params = lc.llama_model_quantize_default_params()
    params.ftype = getattr(lc, _FTYPES[kind])
    params.allow_requantize = True
    params.nthread = max(1, len(os.sched_getaffinity(0)))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    log.info("re-encoding %s as %s in %s", gguf, kind, out)
    try:
        with _quiet():
            rc = lc.llama_model_quantize(str(gguf).encode(), tmp.encode(), params)
        if rc != 0:
            raise EngineError(f"llama.cpp could not re-encode {gguf} as {kind} (code {rc})")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _quiet():
    """llama.cpp's quantizer logs every tensor to stderr: silence it where the bindings allow."""
    try:
        from llama_cpp._utils import suppress_stdout_stderr

        return suppress_stdout_stderr(disable=False)
    except ImportError:  # pragma: no cover - another llama-cpp-python layout
        import contextlib

        return contextlib.nullcontext()


def is_converted(gguf_path: str | Path, out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds a finished conversion of this very ``gguf_path``."""
    marker = Path(out_dir) / MARKER
    try:
        return json.loads(marker.read_text())["source"] == _source(Path(gguf_path))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _load_gguf(gguf: Path) -> tuple[Any, Any]:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependency("transformers", "train") from exc
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError as exc:
        raise MissingDependency("gguf", "train") from exc
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise EngineError(f"{gguf}: transformers cannot load this GGUF ({exc})") from None
    return model, tok


def _rebuild(quantized: Any) -> Any:
    """A plain (saveable) model with ``quantized``'s architecture and dequantized weights."""
    import copy

    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=quantized.dtype)
    model.load_state_dict(quantized.state_dict(), strict=True)
    model.tie_weights()
    if quantized.generation_config is not None:
        model.generation_config = copy.deepcopy(quantized.generation_config)
    return model.eval()


def gguf_to_hf(
    gguf_path: str | Path, out_dir: str | Path | None = None, *, force: bool = False
) -> Path:
    """Convert ``gguf_path`` to a transformers model directory and return it.

    ``out_dir`` defaults to :func:`default_out_dir` (the cache). When ``out_dir`` already holds a
    conversion of the same file it is returned untouched (``force=True`` converts again). Raises
    :class:`EngineError` for a missing file, a GGUF transformers cannot read, or an ``out_dir``
    that exists and holds something else.
    """
    gguf = Path(gguf_path)
    if not gguf.is_file():
        raise EngineError(f"no such GGUF file: {gguf}")
    out = Path(out_dir) if out_dir is not None else default_out_dir(gguf)
    if not force and is_converted(gguf, out):
        log.info("%s: already converted in %s", gguf, out)
        return out
    if out.exists() and not (out / MARKER).exists() and (not out.is_dir() or any(out.iterdir())):
        raise EngineError(
            f"{out} exists and is not a reasonloop conversion; name another output folder "
            "or remove it"
        )
    log.info("converting %s to a transformers model in %s", gguf, out)
    quantized, tok = _load_gguf(gguf)
    model = _rebuild(quantized)
    del quantized
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        marker = {"source": _source(gguf), "format": "transformers", "dtype": "float32"}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)  # an older conversion (it has the marker) or an empty folder
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


__all__ = [
    "MARKER",
    "REQUANTIZE_TYPES",
    "cache_root",
    "default_out_dir",
    "gguf_to_hf",
    "is_converted",
    "requantize_gguf",
]
