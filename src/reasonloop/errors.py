"""The small error hierarchy. Messages name the file, line, field, value and the fix."""

from __future__ import annotations


class ReasonloopError(Exception):
    """Base class of every error reasonloop raises on purpose."""


class ConfigError(ReasonloopError):
    """A configuration value, CLI flag or recipe key is wrong."""


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
