"""GGUF → transformers: dequantize a ``.gguf`` once and save it as a model directory.

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
smaller dtype when loading. Not done: converting back to GGUF (llama.cpp's
``convert_hf_to_gguf.py`` does that).

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


def default_out_dir(gguf_path: str | Path) -> Path:
    """The cache folder of one GGUF file: ``<cache>/hf-from-gguf/<stem>-<digest of its source>``."""
    gguf = Path(gguf_path)
    digest = hashlib.sha256(json.dumps(_source(gguf), sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / "hf-from-gguf" / f"{gguf.stem}-{digest}"


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


__all__ = ["MARKER", "cache_root", "default_out_dir", "gguf_to_hf", "is_converted"]
