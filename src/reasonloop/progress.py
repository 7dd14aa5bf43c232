"""How long work says what it is doing without printing: a :class:`Reporter`.

A run (the demo, a recipe) reports one line per finished phase and opens one progress task per
phase; the task hands back an :class:`Update` callable that the phase calls as it goes (the same
callable fits ``on_progress`` of generate, explore, eval and the trainers). The library's default,
:class:`LogReporter`, logs the lines and shows no progress; the command line passes a rich one
(:class:`reasonloop.terminal.RichReporter`). Nothing here prints.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

log = logging.getLogger(__name__)


class Update(Protocol):
    """Progress of one task: ``done`` of ``total`` units (problems, optimizer steps), ``tokens``
    generated so far (0 when it does not apply), a new ``total`` when it becomes known, and a short
    ``note`` shown with the task (e.g. ``"loss 0.4321"``)."""

    def __call__(
        self, done: int, tokens: int = 0, *, total: int | None = None, note: str | None = None
    ) -> None: ...


class Reporter(Protocol):
    """Where a run says what it does: one line per finished phase, a progress task per phase."""

    def line(self, text: str) -> None: ...

    def task(self, description: str, total: int | None) -> AbstractContextManager[Update]: ...


def ignore(
    done: int, tokens: int = 0, *, total: int | None = None, note: str | None = None
) -> None:
    """An :class:`Update` that shows nothing."""


class LogReporter:
    """The library default: lines go to the log (INFO), progress nowhere."""

    def line(self, text: str) -> None:
        log.info("%s", text)

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Update]:
        yield ignore
