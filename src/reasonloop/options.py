"""Options declared once: a stage's config dataclass field carries its default, help, flag and range.

A field made with :func:`option` is the single declaration of one option. From it are derived

- the Typer option of the ``reasonloop`` command (``reasonloop.cli`` builds the command's
  parameters from :func:`cli_fields`),
- the recipe YAML key of the same name (``reasonloop.recipe.config`` builds sections from the
  dataclass), and
- the ``--dry-run`` command line (:func:`to_args`),

so one option has one default everywhere. :func:`check_options` enforces the declared ``min`` /
``max`` / ``choices`` and raises :class:`~reasonloop.errors.ConfigError` naming the field.

Blocks shared by several stages (the sampling block of generate / explore / distill / eval / REL,
the trainer block of SFT / DPO / reward models) are small dataclasses of such fields; a stage takes
them in with :func:`include`, which adds the block's field declarations to the stage's own, flat
(``config.temperature``, ``--temperature``, ``temperature:`` in YAML), with the stage's own defaults
where it needs them (``include(TrainerBlock, learning_rate=5e-6)``). The block is declared once; the
including class states only which defaults differ.

What this does not do: it does not parse YAML (the recipe module does) and it does not know Typer.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, Field
from typing import Any

from reasonloop.errors import ConfigError

OPTION = "reasonloop"  # the metadata key under which an option's declaration lives


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
    """The declaration of one option (a field's ``metadata["reasonloop"]``).

    ``cli``: the flags (``("-n",)``, ``("--top-p",)``; ``()`` for the default ``--field-name``;
    ``None`` when the option has no flag). A boolean with ``negatable`` becomes
    ``--name/--no-name``. ``lora``: the field is a ``LoraSettings | None`` written as ``--lora``
    plus ``--lora-r R`` (alpha = 2R). ``path``: the CLI takes a path (``Path`` in Typer)."""

    help: str = ""
    cli: tuple[str, ...] | None = ()
    min: float | None = None
    max: float | None = None
    above: float | None = None  # strictly greater than
    choices: tuple[Any, ...] | None = None
    envvar: str | None = None
    negatable: bool = False
    lora: bool = False
    path: bool = False
    required: bool = False  # a CLI option that must be given (the field has no default)


def option(
    default: Any = MISSING,
    *,
    help: str = "",
    cli: str | Sequence[str] | None = (),
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    choices: Sequence[Any] | None = None,
    envvar: str | None = None,
    negatable: bool = False,
    lora: bool = False,
    path: bool = False,
    default_factory: Callable[[], Any] | Any = MISSING,
) -> Any:
    """A dataclass field that declares an option (see the module docstring)."""
    flags = (cli,) if isinstance(cli, str) else (None if cli is None else tuple(cli))
    spec = Spec(
        help=help,
        cli=flags,
        min=min,
        max=max,
        above=above,
        choices=None if choices is None else tuple(choices),
        envvar=envvar,
        negatable=negatable,
        lora=lora,
        path=path,
        required=default is MISSING and default_factory is MISSING,
    )
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={OPTION: spec}
    )


def spec_of(f: Field) -> Spec | None:
    return f.metadata.get(OPTION)


def include(block: type, *, exclude: Sequence[str] = (), **defaults: Any) -> Callable[[type], type]:
    """A class decorator (put it *under* ``@dataclass``) that adds ``block``'s fields, flat, after
    the class's own: the same declaration (help, flag, range), with ``defaults`` overriding the
    block's default where the stage needs another value."""
    names = [f.name for f in dataclasses.fields(block) if f.name not in exclude]
    unknown = set(defaults) - set(names)
    if unknown:
        raise TypeError(f"include({block.__name__}): no field(s) {sorted(unknown)}")
    hints = typing.get_type_hints(block)

    def add(cls: type) -> type:
        own = dict(cls.__dict__.get("__annotations__", {}))
        for f in dataclasses.fields(block):
            if f.name not in names or f.name in own:  # the class's own declaration wins
                continue
            own[f.name] = hints[f.name]
            if f.name in defaults:
                value = defaults[f.name]
                new = dataclasses.field(default=value, metadata=f.metadata)
            elif f.default_factory is not MISSING:
                new = dataclasses.field(default_factory=f.default_factory, metadata=f.metadata)
            else:
                new = dataclasses.field(default=f.default, metadata=f.metadata)
            setattr(cls, f.name, new)
        cls.__annotations__ = own
        return cls

    return add


def fields_of(cls: type) -> Iterator[tuple[Field, Spec]]:
    """The option fields of a config class, in declaration order."""
    for f in dataclasses.fields(cls):
        spec = spec_of(f)
        if spec is not None:
            yield f, spec


def default_of(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def flags(f: Field, spec: Spec) -> tuple[str, ...]:
    """The CLI flags of an option (``--field-name`` unless declared); ``()`` for none."""
    if spec.cli is None:
        return ()
    return spec.cli or ("--" + f.name.replace("_", "-"),)


def cli_fields(cls: type) -> list[tuple[Field, Spec]]:
    """The fields that are CLI options, in declaration order."""
    return [(f, s) for f, s in fields_of(cls) if s.cli is not None]


def cli_names(cls: type) -> list[str]:
    """Every flag the CLI derives from ``cls`` (``--lora`` fields add ``--lora-r``)."""
    out: list[str] = []
    for f, s in cli_fields(cls):
        out += flags(f, s)
        if s.lora:
            out.append(flags(f, s)[0] + "-r")
    return out


def _fail(name: str, message: str) -> None:
    raise ConfigError(message, field=name)


def check_options(obj: Any) -> None:
    """Every declared range and choice of ``obj``'s option fields holds; else a ConfigError
    naming the field (``max_tokens must be >= 1, got 0``)."""
    for f, s in fields_of(type(obj)):
        value = getattr(obj, f.name)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            _fail(f.name, f"must be a finite number, got {value}")
        if s.choices is not None and value not in s.choices:
            shown = ", ".join(map(str, s.choices))
            _fail(f.name, f"must be one of {shown}, got {value!r}")
        if not isinstance(value, int | float):
            continue
        low, high = s.min, s.max
        if s.above is not None and not value > s.above:
            _fail(f.name, f"must be > {_num(s.above)}, got {value}")
        if low is not None and high is not None and not low <= value <= high:
            _fail(f.name, f"must be in [{_num(low)}, {_num(high)}], got {value}")
        if low is not None and value < low:
            _fail(f.name, f"must be >= {_num(low)}, got {value}")
        if high is not None and value > high:
            _fail(f.name, f"must be <= {_num(high)}, got {value}")


def _num(x: float) -> str:
    """A number as a flag value or in a message: ``1`` for 1.0, ``0.6``, ``1e-05``."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e9 else repr(x)


def to_args(obj: Any, *, skip: Sequence[str] = ()) -> list[str]:
    """``obj``'s options as command-line arguments, in declaration order, every value spelled out
    (the ``--dry-run`` lines): a value of ``None`` and a false flag are left out."""
    args: list[str] = []
    for f, s in cli_fields(type(obj)):
        if f.name in skip:
            continue
        value = getattr(obj, f.name)
        flag = flags(f, s)[0]
        if s.lora:
            if value is not None:
                args += [flag, f"{flag}-r", str(value.r)]
        elif isinstance(value, bool):
            if s.negatable:
                args.append(flag if value else "--no-" + flag.removeprefix("--"))
            elif value:
                args.append(flag)
        elif value is None:
            continue
        elif isinstance(value, tuple | list):
            for v in value:
                args += [flag, str(v)]
        elif isinstance(value, float):
            args += [flag, _num(value)]
        else:
            args += [flag, str(value)]
    return args


__all__ = [
    "Spec",
    "check_options",
    "cli_fields",
    "cli_names",
    "default_of",
    "fields_of",
    "flags",
    "include",
    "option",
    "spec_of",
    "to_args",
]
