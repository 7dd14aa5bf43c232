"""The command line's terminal: rich consoles, progress displays, the run's log file, and quiet
third-party libraries. Only the CLI uses this module; library code logs with
``logging.getLogger(__name__)`` and reports progress through callbacks (:mod:`reasonloop.progress`).

:func:`setup` decides what reaches the terminal. By default:

- reasonloop's own warnings and errors, and any library's errors, are shown; everything else that
  is logged — reasonloop's INFO lines (a trainer's metrics every ``logging_steps``), Python warnings
  (``FutureWarning``/``UserWarning`` from torch, transformers, TRL, captured with
  :func:`logging.captureWarnings`), transformers' and datasets' own log records — goes only to
  the log file a command opens with :func:`log_to` (``OUT/run.log``, ``OUT/train.log``, ...),
  or nowhere when it opens none;
- transformers', datasets' and huggingface_hub's progress bars are off (rich progress displays
  take their place).

With ``verbose`` all of it reaches the terminal again (INFO and above, every library bar); with
``debug`` DEBUG records too. The libraries are configured when they are first imported (an import
hook), so a command that never loads transformers never pays for importing it.

What it does not do: silence what native code writes to file descriptor 2 itself, or tqdm bars of
libraries other than those three.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from reasonloop.progress import Update

console = Console(stderr=True)  # progress, warnings, errors
out = Console()  # results: summary lines and tables

OURS = "reasonloop"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Shown(logging.Filter):
    """Which records a handler passes: reasonloop's from ``own`` up, other loggers' (libraries,
    ``py.warnings``) from ``others`` up."""

    def __init__(self, own: int, others: int):
        super().__init__()
        self.own, self.others = own, others

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == OURS or record.name.startswith(OURS + ".")
        return record.levelno >= (self.own if ours else self.others)


_STATE: dict[str, Any] = {"verbose": False, "debug": False, "files": {}}


def setup(*, verbose: bool = False, debug: bool = False) -> None:
    """Route logging for a command (see the module doc). Called by the CLI once per command;
    calling it again (several commands in one process, as tests do) replaces the terminal handler
    and closes the log files of the previous command."""
    _STATE["verbose"], _STATE["debug"] = verbose, debug
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for h in list(root.handlers):
        if getattr(h, "_reasonloop_terminal", False):
            root.removeHandler(h)
    for h in _STATE["files"].values():
        root.removeHandler(h)
        h.close()
    _STATE["files"] = {}
    handler = RichHandler(console=console, show_path=False)
    handler._reasonloop_terminal = True  # type: ignore[attr-defined]
    if debug:
        handler.addFilter(Shown(logging.DEBUG, logging.DEBUG))
    elif verbose:
        handler.addFilter(Shown(logging.INFO, logging.INFO))
    else:
        handler.addFilter(Shown(logging.WARNING, logging.ERROR))
    root.addHandler(handler)
    logging.captureWarnings(True)
    _when_imported("transformers.utils.logging", _route_transformers)
    _when_imported("datasets.utils.logging", _route_datasets)
    if not verbose:
        _when_imported("datasets.utils.tqdm", lambda m: m.disable_progress_bars())
        _when_imported("huggingface_hub.utils.tqdm", lambda m: m.disable_progress_bars())


def log_to(path: str | Path) -> Path:
    """Also write this command's log records to ``path`` (appended; reasonloop's from INFO, other
    libraries' and Python warnings from WARNING; DEBUG with ``--debug``). The file is created
    only when the first record arrives once its directory exists (see :class:`_HeadedFileHandler`),
    headed by the command line. Returns the path."""
    path = Path(path)
    if path in _STATE["files"]:
        return path
    handler = _HeadedFileHandler(path)
    handler.setFormatter(_Trimmed(LOG_FORMAT))
    level = logging.DEBUG if _STATE["debug"] else logging.INFO
    handler.addFilter(Shown(level, logging.DEBUG if _STATE["debug"] else logging.WARNING))
    logging.getLogger().addHandler(handler)
    _STATE["files"][path] = handler
    return path


class _Trimmed(logging.Formatter):
    """Drops the trailing newline a captured Python warning carries (it made blank lines)."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).rstrip()


class _HeadedFileHandler(logging.FileHandler):
    """An appending file handler that opens its file on the first record, under a header line.

    It never creates a directory: until the command itself has made the file's directory (its
    output directory, its store's), records wait in memory and are written, in order, once the
    directory is there. So a command refused before it writes anything (a bad strategy option
    found after the engine logged its start) leaves no directory behind; records still waiting
    when the process ends are dropped (the refusal itself is on the terminal)."""

    MAX_PENDING = 10_000

    def __init__(self, path: Path):
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
        self._pending: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None and not Path(self.baseFilename).parent.is_dir():
            if len(self._pending) < self.MAX_PENDING:
                self._pending.append(record)
            return
        pending, self._pending = self._pending, []
        for early in pending:
            super().emit(early)
        super().emit(record)

    def _open(self):  # type: ignore[override]
        stream = super()._open()
        argv = shlex.join(["reasonloop", *sys.argv[1:]])
        stream.write(f"--- {datetime.now().isoformat(timespec='seconds')} {argv}\n")
        return stream


# -- third-party libraries ---------------------------------------------------------------------


def _route_transformers(module: ModuleType) -> None:
    module.disable_default_handler()  # its records reach our handlers instead
    module.enable_propagation()
    if not _STATE["verbose"]:
        module.disable_progress_bar()  # "Loading weights", "Writing model shards"


def _route_datasets(module: ModuleType) -> None:
    root = module.get_logger()
    for h in list(root.handlers):
        if type(h) is logging.StreamHandler:  # the stderr handler datasets adds itself
            root.removeHandler(h)
    module.enable_propagation()


class _OnImport(importlib.abc.MetaPathFinder):
    """Runs ``hook(module)`` right after the module named ``name`` is first imported."""

    def __init__(self, name: str, hook: Callable[[ModuleType], None]):
        self.name, self.hook = name, hook

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module, hook = spec.loader.exec_module, self.hook

        def exec_then_hook(module: ModuleType) -> None:
            exec_module(module)
            hook(module)

        spec.loader.exec_module = exec_then_hook  # type: ignore[method-assign]
        return spec


def _when_imported(name: str, hook: Callable[[ModuleType], None]) -> None:
    """``hook(module)`` now if ``name`` is imported, else right after its import."""
    module = sys.modules.get(name)
    if module is not None:
        hook(module)
        return
    for finder in sys.meta_path:
        if isinstance(finder, _OnImport) and finder.name == name:
            sys.meta_path.remove(finder)
            break
    sys.meta_path.insert(0, _OnImport(name, hook))


# -- progress displays -------------------------------------------------------------------------


def progress(description: str, total: int | None = None, *, transient: bool = True):
    """A rich progress display on stderr: spinner, description, bar, done/total, rate, time.
    Shown only when stderr is a terminal (a log file would keep one frame per refresh)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
        disable=not console.is_terminal,
    )


@contextmanager
def task(description: str, total: int | None = None) -> Iterator[Update]:
    """One progress display for one phase; yields its :class:`~reasonloop.progress.Update`.
    A ``note`` goes into the description (a trainer's loss); tokens make a tokens/s rate."""
    with progress(description, total) as bar:
        t = bar.add_task(description, total=total, rate="")
        t0 = time.perf_counter()

        def update(
            done: int, tokens: int = 0, *, total: int | None = None, note: str | None = None
        ) -> None:
            dt = time.perf_counter() - t0
            fields: dict[str, Any] = {"completed": done}
            if tokens and dt:
                fields["rate"] = f"{tokens / dt:.1f} tok/s"
            if total is not None:
                fields["total"] = total
            if note is not None:
                fields["description"] = f"{description} · {note}" if note else description
            bar.update(t, **fields)

        yield update


class RichReporter:
    """A :class:`~reasonloop.progress.Reporter` for the terminal: a progress display per phase on
    stderr (gone when the phase ends), one summary line per phase on stdout."""

    def __init__(self, line_console: Console = out):
        self.line_console = line_console

    def line(self, text: str) -> None:
        self.line_console.print(text, markup=False, highlight=False, soft_wrap=True)

    def task(self, description: str, total: int | None):
        return task(description, total)


def table(header: list[str], rows: list[list[str]], title: str | None = None) -> Table:
    """A rich table: the first column left-aligned, the others (numbers) right-aligned."""
    t = Table(title=title)
    for i, col in enumerate(header):
        t.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*row)
    return t
