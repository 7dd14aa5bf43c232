"""The small error hierarchy. Messages name the file, line, field, value and the fix."""

from __future__ import annotations


class ReasonloopError(Exception):
    """Base class of every error reasonloop raises on purpose."""


class ConfigError(ReasonloopError):
    """A configuration value, CLI flag or recipe key is wrong.

    ``field`` is the option's name (a dotted key inside a recipe: ``sft.max_steps``); the message
    then reads ``FIELD MESSAGE`` (``max_tokens must be >= 1, got 0``). ``where`` is the file (or
    ``file:line``) when known. ``message`` is the text without them, so that a caller that knows
    more of the place (the recipe section) raises again with a longer ``field``, never by
    parsing the text.
    """

    def __init__(self, message: str, *, field: str | None = None, where: str | None = None):
        self.message = message
        self.field = field
        self.where = where
        text = f"{field} {message}" if field else message
        super().__init__(f"{where}: {text}" if where else text)


class DataError(ReasonloopError):
    """An input file or record is malformed.

    ``where`` is ``file:line`` when known; ``field`` the offending key.
    """

    def __init__(self, message: str, *, where: str | None = None, field: str | None = None):
        self.where = where
        self.field = field
        prefix = ""
        if where:
            prefix += f"{where}: "
        if field:
            prefix += f"field {field!r}: "
        super().__init__(prefix + message)


class EngineError(ReasonloopError):
    """A model backend failed or was misconfigured."""


class MissingDependency(ReasonloopError):
    """An optional dependency is not installed; the message names the pip extra."""

    def __init__(self, module: str, extra: str):
        super().__init__(f"{module} is not installed; run: pip install 'reasonloop[{extra}]'")
