"""GPQA (Rein et al.) from the authors' encrypted ``dataset.zip``, decrypted in memory only.

The authors ship the questions in a password-protected zip so that they do not leak into web-scraped
training data; this module never writes the decrypted CSV anywhere. The password is the one
published in the authors' README; pass it as ``password=`` (CLI ``--gpqa-password``) or set
``REASONLOOP_GPQA_PASSWORD``. It is not built in.

Conversion of one CSV row (the revised columns, as simple-evals and lm-eval use them):

- ``id`` = ``gpqa-<variant>-<Record ID>``; ``problem`` = ``Question`` stripped;
- ``choices`` = ``Correct Answer`` and ``Incorrect Answer 1..3``, stripped, shuffled with
  ``random.Random(f"{seed}-{record_id}")`` (the raw file puts the correct one first, so not shuffling
  would leak it); ``answer`` = the letter where the correct one lands;
- ``solution`` = ``Explanation``; ``level`` = ``Writer's Difficulty Estimate``; ``subject`` =
  ``High-level domain``; ``domain`` = ``science``; ``source`` = ``GPQA-<variant>``.

Variants: ``diamond`` (198, the usual benchmark), ``main`` (448), ``extended`` (546). The archive's
``gpqa_experts.csv`` lists the question writers, not questions, so it is not a variant.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import random
import string
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from reasonloop.errors import ConfigError, DataError
from reasonloop.records import Problem

log = logging.getLogger(__name__)

GPQA_VARIANTS: tuple[str, ...] = ("diamond", "main", "extended")
PASSWORD_ENV = "REASONLOOP_GPQA_PASSWORD"

_CORRECT = "Correct Answer"
_INCORRECT = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
_PASSWORD_FIX = (
    f"pass the password published in the GPQA authors' README as --gpqa-password / "
    f"gpqa_password=, or set {PASSWORD_ENV}"
)


def load_gpqa(
    path: str | Path,
    *,
    password: str | None = None,
    seed: int = 0,
    variant: str = "diamond",
) -> list[Problem]:
    """The problems of one GPQA variant from the encrypted ``dataset.zip`` at ``path``.

    ``password`` defaults to ``$REASONLOOP_GPQA_PASSWORD``; a missing or wrong password raises
    :class:`~reasonloop.errors.DataError` that says how to give it. ``seed`` fixes the choice order.
    """
    variant = _check_variant(variant)
    password = password or os.environ.get(PASSWORD_ENV)
    path = Path(path)
    member = f"dataset/gpqa_{variant}.csv"
    if not password:
        raise DataError(
            f"{path.name} is encrypted and no password was given; {_PASSWORD_FIX}", where=str(path)
        )
    try:
        with zipfile.ZipFile(path) as archive:
            raw = archive.read(member, pwd=password.encode("utf-8"))
    except FileNotFoundError:
        raise DataError("no such file (expected the GPQA dataset.zip)", where=str(path)) from None
    except KeyError:
        raise DataError(f"no member {member!r} in the archive", where=str(path)) from None
    except RuntimeError as exc:  # zipfile: "Bad password for file ..." / "... password required"
        raise DataError(
            f"cannot decrypt {member} ({exc}); {_PASSWORD_FIX}", where=str(path)
        ) from None
    except (zipfile.BadZipFile, zlib.error) as exc:
        # ZipCrypto checks only one byte of the password; a wrong one that slips past that check
        # fails here, as a CRC or inflate error.
        raise DataError(
            f"cannot decrypt {member} ({exc}); the password is probably wrong; {_PASSWORD_FIX}",
            where=str(path),
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{member} is not UTF-8 ({exc.reason})", where=str(path)) from None
    rows = csv.DictReader(io.StringIO(text, newline=""))
    problems = problems_from_rows(rows, seed=seed, variant=variant, where=f"{path}:{member}")
    log.info("loaded %d GPQA-%s problems from %s (seed %d)", len(problems), variant, path, seed)
    return problems


def problems_from_rows(
    rows: Iterable[Mapping[str, object]], *, seed: int, variant: str, where: str
) -> list[Problem]:
    """Convert GPQA rows (CSV dicts, or HF ``Idavidrein/gpqa`` rows: same columns); rows 0-based."""
    return [
        problem_from_row(row, seed=seed, variant=variant, where=f"{where}:row {i}")
        for i, row in enumerate(rows)
    ]


def problem_from_row(
    row: Mapping[str, object], *, seed: int, variant: str = "diamond", where: str | None = None
) -> Problem:
    """One GPQA row as a shuffled four-choice ``Problem`` (see the module docstring)."""
    record_id = _text(row, "Record ID", where)
    question = _text(row, "Question", where)
    texts = [_text(row, name, where) for name in (_CORRECT, *_INCORRECT)]
    order = list(range(4))
    random.Random(f"{seed}-{record_id}").shuffle(order)
    return Problem(
        id=f"gpqa-{variant}-{record_id}",
        domain="science",
        problem=question,
        answer=string.ascii_uppercase[order.index(0)],
        choices=tuple(texts[i] for i in order),
        solution=_optional(row, "Explanation"),
        source=f"GPQA-{variant}",
        level=_optional(row, "Writer's Difficulty Estimate"),
        subject=_optional(row, "High-level domain"),
    )


def _check_variant(variant: str) -> str:
    if variant not in GPQA_VARIANTS:
        raise ConfigError(f"unknown GPQA variant {variant!r}; valid: {', '.join(GPQA_VARIANTS)}")
    return variant


def _text(row: Mapping[str, object], name: str, where: str | None) -> str:
    value = row.get(name)
    if value is None:
        raise DataError("missing required column", where=where, field=name)
    if not isinstance(value, str):
        raise DataError(f"expected text, got {type(value).__name__}", where=where, field=name)
    value = value.strip()
    if not value:
        raise DataError("empty value", where=where, field=name)
    return value


def _optional(row: Mapping[str, object], name: str) -> str | None:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()
