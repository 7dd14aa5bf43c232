from __future__ import annotations

import csv
import io
import random
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from reasonloop.errors import ConfigError, DataError
from reasonloop.problems import load_benchmark, load_gpqa
from reasonloop.problems.gpqa import problem_from_row, problems_from_rows
from reasonloop.records import Problem


@pytest.fixture(scope="module")
def raw_rows(shared_data: Path, gpqa_password: str) -> list[dict[str, str]]:
    """The diamond CSV rows, decrypted in memory (as the module under test must do)."""
    with zipfile.ZipFile(shared_data / "gpqa" / "dataset.zip") as z:
        raw = z.read("dataset/gpqa_diamond.csv", pwd=gpqa_password.encode())
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))


@pytest.fixture(scope="module")
def diamond(shared_data: Path, gpqa_password: str) -> list[Problem]:
    return load_benchmark("gpqa", data_dir=shared_data, gpqa_password=gpqa_password, seed=0)


def test_diamond_shape(diamond: list[Problem]) -> None:
    assert len(diamond) == 198
    assert {(p.domain, p.source) for p in diamond} == {("science", "GPQA-diamond")}
    assert Counter(p.subject for p in diamond) == {"Chemistry": 93, "Physics": 86, "Biology": 19}
    assert all(p.id.startswith("gpqa-diamond-rec") for p in diamond)
    assert all(p.choices is not None and len(p.choices) == 4 for p in diamond)
    assert sum(p.level is None for p in diamond) == 4  # empty difficulty estimates
    assert all(p.solution for p in diamond)


def test_answer_letters_are_shuffled(diamond: list[Problem]) -> None:
    # The raw CSV puts the correct answer first; seed 0 spreads it over all four letters.
    assert Counter(p.answer for p in diamond) == {"A": 60, "B": 64, "C": 38, "D": 36}


def test_correct_text_lands_at_the_answer_letter(
    diamond: list[Problem], raw_rows: list[dict[str, str]]
) -> None:
    by_id = {f"gpqa-diamond-{r['Record ID']}": r for r in raw_rows}
    for p in diamond:
        row = by_id[p.id]
        assert p.choices is not None
        assert p.choices["ABCD".index(p.answer)] == row["Correct Answer"].strip()
        wrong = {row[f"Incorrect Answer {k}"].strip() for k in (1, 2, 3)}
        assert set(p.choices) - {p.choices["ABCD".index(p.answer)]} == wrong
        assert p.problem == row["Question"].strip()


def test_shuffle_follows_the_recorded_recipe(diamond: list[Problem]) -> None:
    p = diamond[0]
    order = [0, 1, 2, 3]
    random.Random("0-rec06pnAkLOr2t2mp").shuffle(order)
    assert p.answer == "ABCD"[order.index(0)]


def test_same_seed_same_shuffle_other_seed_other(
    diamond: list[Problem], raw_rows: list[dict[str, str]]
) -> None:
    where = "dataset.zip"
    again = problems_from_rows(raw_rows, seed=0, variant="diamond", where=where)
    assert again == diamond
    other = problems_from_rows(raw_rows, seed=1, variant="diamond", where=where)
    assert [p.id for p in other] == [p.id for p in diamond]
    moved = sum(a.choices != b.choices for a, b in zip(other, diamond, strict=True))
    assert moved > 150  # 1 - 1/24 of rows expected to change order
    for a, b in zip(other, diamond, strict=True):
        assert a.choices is not None and b.choices is not None
        assert a.choices["ABCD".index(a.answer)] == b.choices["ABCD".index(b.answer)]


def test_password_from_env(
    shared_data: Path, gpqa_password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REASONLOOP_GPQA_PASSWORD", gpqa_password)
    got = load_benchmark("gpqa", data_dir=shared_data, limit=1)
    assert [p.id for p in got] == ["gpqa-diamond-rec06pnAkLOr2t2mp"]


def test_missing_password(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REASONLOOP_GPQA_PASSWORD", raising=False)
    path = shared_data / "gpqa" / "dataset.zip"
    with pytest.raises(DataError) as info:
        load_gpqa(path)
    assert str(info.value) == (
        f"{path}: dataset.zip is encrypted and no password was given; pass the password published "
        "in the GPQA authors' README as --gpqa-password / gpqa_password=, or set "
        "REASONLOOP_GPQA_PASSWORD"
    )


@pytest.mark.parametrize(
    # "wrong-920" passes ZipCrypto's one-byte password check and fails while inflating.
    ("password", "detail"),
    [("wrong", "Bad password for file"), ("wrong-920", "password is probably wrong")],
)
def test_wrong_password(shared_data: Path, password: str, detail: str) -> None:
    with pytest.raises(DataError) as info:
        load_gpqa(shared_data / "gpqa" / "dataset.zip", password=password)
    assert detail in str(info.value)
    assert "REASONLOOP_GPQA_PASSWORD" in str(info.value)


def test_main_variant(shared_data: Path, gpqa_password: str) -> None:
    main = load_benchmark("gpqa-main", data_dir=shared_data, gpqa_password=gpqa_password)
    assert len(main) == 448
    assert {p.source for p in main} == {"GPQA-main"}
    assert main[0].id.startswith("gpqa-main-rec")


def test_unknown_variant(shared_data: Path) -> None:
    with pytest.raises(ConfigError, match="unknown GPQA variant 'experts'; valid: diamond, main"):
        load_gpqa(shared_data / "gpqa" / "dataset.zip", password="x", variant="experts")


def test_not_a_zip(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_gpqa(tmp_path / "dataset.zip", password="x")
    bad = tmp_path / "bad.zip"
    bad.write_text("not a zip")
    with pytest.raises(DataError, match="File is not a zip file"):
        load_gpqa(bad, password="x")


def test_bad_row_names_the_column() -> None:
    row = {"Record ID": "r1", "Question": "Q", "Correct Answer": "a", "Incorrect Answer 1": "b",
           "Incorrect Answer 2": "  ", "Incorrect Answer 3": "d"}  # fmt: skip
    with pytest.raises(DataError) as info:
        problem_from_row(row, seed=0, where="x.csv:row 3")
    assert str(info.value) == "x.csv:row 3: field 'Incorrect Answer 2': empty value"
    del row["Question"]
    with pytest.raises(DataError, match="field 'Question': missing required column"):
        problem_from_row(row, seed=0)
