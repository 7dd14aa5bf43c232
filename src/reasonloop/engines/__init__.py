"""Model backends behind one :class:`~reasonloop.engines.base.Engine` protocol.

Specs: ``default`` (the packaged SmolLM2-135M-Instruct GGUF through llama.cpp, re-encoded as
Q8_0 once for faster batched decoding),
``llamacpp:PATH.gguf``, ``hf:PATH`` (transformers; a directory, a hub id, or a ``.gguf``),
``openai:URL#MODEL`` (several comma-separated share the load), ``countdown`` (the programmatic
Countdown teacher: no model, only Countdown puzzles, cannot score).

:func:`parse_engine_spec` is the one grammar of these specs: the CLI, recipes and
:func:`load_engine` all check a spec with it.
"""

from __future__ import annotations

from reasonloop.engines.base import Engine, Message, Request, Result, Sample, Scored, user_messages
from reasonloop.engines.countdown import CountdownTeacher
from reasonloop.engines.hf import HFEngine
from reasonloop.engines.llamacpp import LlamaCppEngine, default_engine_model
from reasonloop.engines.openai import OpenAIEngine
from reasonloop.errors import ConfigError

SPEC_FORMS = (
    "default",
    "llamacpp:PATH.gguf",
    "hf:PATH",
    "openai:URL#MODEL[,URL#MODEL...]",
    "countdown",
)
KINDS = ("default", "llamacpp", "hf", "openai", "countdown")


def parse_engine_spec(spec: str, *, key: str | None = None) -> tuple[str, str]:
    """``(kind, rest)`` of an engine spec, e.g. ``("hf", "runs/sft")``; loads nothing.

    Raises ConfigError listing the valid forms (prefixed by the setting ``key`` when given, e.g.
    ``teacher.engine``) when ``spec`` has none of them."""
    kind, _, rest = spec.partition(":")
    if (kind in ("default", "countdown") and not rest) or (
        kind in ("llamacpp", "hf", "openai") and rest
    ):
        return kind, rest
    where = f"{key}: " if key else ""
    raise ConfigError(f"{where}unknown engine spec {spec!r}; valid forms: {', '.join(SPEC_FORMS)}")


def load_engine(spec: str, **options) -> Engine:
    """Build the engine a spec names; an unknown spec lists the valid forms. ``options`` go to the
    backend's constructor (the ``countdown`` teacher takes ``quality`` and ``max_lines``)."""
    kind, rest = parse_engine_spec(spec)
    match kind:
        case "default":
            path, name = default_engine_model()
            return LlamaCppEngine(path, spec="default", model=name, **options)
        case "llamacpp":
            return LlamaCppEngine(rest, spec=spec, **options)
        case "hf":
            return HFEngine(rest, spec=spec, **options)
        case "openai":
            return OpenAIEngine.from_spec(spec, **options)
        case _:
            return CountdownTeacher(**options)


__all__ = [
    "KINDS",
    "SPEC_FORMS",
    "CountdownTeacher",
    "Engine",
    "Message",
    "Request",
    "Result",
    "Sample",
    "Scored",
    "load_engine",
    "parse_engine_spec",
    "user_messages",
]
