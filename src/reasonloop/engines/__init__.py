"""Model backends behind one :class:`~reasonloop.engines.base.Engine` protocol.

Specs: ``default`` (the packaged SmolLM2-135M-Instruct GGUF through llama.cpp, re-encoded as
Q8_0 once for faster batched decoding),
``llamacpp:PATH.gguf``, ``hf:PATH`` (transformers; a directory, a hub id, or a ``.gguf``),
``openai:URL#MODEL`` (several comma-separated share the load).
"""

from __future__ import annotations

from reasonloop.engines.base import Engine, Message, Request, Result, Sample, Scored, user_messages
from reasonloop.errors import ConfigError

SPEC_FORMS = ("default", "llamacpp:PATH.gguf", "hf:PATH", "openai:URL#MODEL[,URL#MODEL...]")


def load_engine(spec: str, **options) -> Engine:
    """Build the engine a spec names; an unknown spec lists the valid forms."""
    kind, _, rest = spec.partition(":")
    match kind:
        case "default":
            from reasonloop.engines.llamacpp import LlamaCppEngine, default_engine_model

            path, name = default_engine_model()
            return LlamaCppEngine(path, spec="default", model=name, **options)
        case "llamacpp" if rest:
            from reasonloop.engines.llamacpp import LlamaCppEngine

            return LlamaCppEngine(rest, spec=spec, **options)
        case "hf" if rest:
            from reasonloop.engines.hf import HFEngine

            return HFEngine(rest, spec=spec, **options)
        case "openai" if rest:
            from reasonloop.engines.openai import OpenAIEngine

            return OpenAIEngine.from_spec(spec, **options)
    raise ConfigError(f"unknown engine spec {spec!r}; valid forms: {', '.join(SPEC_FORMS)}")


__all__ = [
    "Engine",
    "Message",
    "Request",
    "Result",
    "Sample",
    "Scored",
    "load_engine",
    "user_messages",
]
