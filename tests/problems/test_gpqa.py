from __future__ import annotations

import csv
import io
import random
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reasonloop.errors import ConfigError, DataError
from reasonloop.problems import load_benchmark, load_gpqa
from reasonloop.problems.gpqa import problem_from_row, problems_from_rows
from reasonloop.records import Problem

# --- the authors' archive (full data only) ----------------------------------------------------


@pytest.fixture(scope="module")
def real_raw_rows(real_data: Path, real_gpqa_password: str) -> list[dict[str, str]]:
    """The diamond CSV rows, decrypted in memory (as the module under test must do)."""
    with zipfile.ZipFile(real_data / "gpqa" / "dataset.zip") as z:
        raw = z.read("dataset/gpqa_diamond.csv", pwd=real_gpqa_password.encode())
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))


@pytest.fixture(scope="module")
def real_diamond(real_data: Path, real_gpqa_password: str) -> list[Problem]:
    return load_benchmark("gpqa", data_dir=real_data, gpqa_password=real_gpqa_password, seed=0)


def test_real_diamond(real_diamond: list[Problem], real_raw_rows: list[dict[str, str]]) -> None:
    assert len(real_diamond) == 198
    assert {(p.domain, p.source) for p in real_diamond} == {("science", "GPQA-diamond")}
    assert Counter(p.subject for p in real_diamond) == {
        "Chemistry": 93,
        "Physics": 86,
        "Biology": 19,
    }
    assert all(p.id.startswith("gpqa-diamond-rec") for p in real_diamond)
    assert sum(p.level is None for p in real_diamond) == 4  # empty difficulty estimates
    assert all(p.solution for p in real_diamond)
    # The raw CSV puts the correct answer first; seed 0 spreads it over all four letters.
    assert Counter(p.answer for p in real_diamond) == {"A": 60, "B": 64, "C": 38, "D": 36}
    assert_correct_text_lands_at_the_letter(real_diamond, real_raw_rows)
    moved = problems_from_rows(real_raw_rows, seed=1, variant="diamond", where="dataset.zip")
    assert sum(a.choices != b.choices for a, b in zip(moved, real_diamond, strict=True)) > 150


def test_real_main_variant(real_data: Path, real_gpqa_password: str) -> None:
    main = load_benchmark("gpqa-main", data_dir=real_data, gpqa_password=real_gpqa_password)
    assert len(main) == 448
    assert {p.source for p in main} == {"GPQA-main"}
    assert main[0].id.startswith("gpqa-main-rec")


def test_real_archive_is_laid_out_as_the_fixture(
    real_data: Path, real_gpqa_password: str, bench_data: Path, bench_gpqa: Any
) -> None:
    """The fixture archive mirrors the authors' one: same member names, compression, encryption
    flags, and its CSV columns appear in the real header in the same order."""
    with zipfile.ZipFile(real_data / "gpqa" / "dataset.zip") as real:
        real_infos = {i.filename: i for i in real.infolist()}
        header = real.read("dataset/gpqa_diamond.csv", pwd=real_gpqa_password.encode())
    real_columns = next(csv.reader(io.StringIO(header.decode("utf-8"), newline="")))
    with zipfile.ZipFile(bench_data / "gpqa" / "dataset.zip") as ours:
        for info in ours.infolist():
            twin = real_infos[info.filename]
            assert (info.compress_type, info.flag_bits) == (twin.compress_type, twin.flag_bits)
    ours_columns = list(bench_gpqa.rows["diamond"][0])
    assert [c for c in real_columns if c in ours_columns] == ours_columns


# --- the same code paths on the fixture archive (tests/benchdata.py) --------------------------


@pytest.fixture(scope="module")
def raw_rows(bench_gpqa: Any) -> list[dict[str, str]]:
    return bench_gpqa.rows["diamond"]


@pytest.fixture(scope="module")
def diamond(bench_data: Path, bench_gpqa: Any) -> list[Problem]:
    return load_benchmark("gpqa", data_dir=bench_data, gpqa_password=bench_gpqa.password, seed=0)


@pytest.fixture
def zip_path(bench_data: Path) -> Path:
    return bench_data / "gpqa" / "dataset.zip"


def assert_correct_text_lands_at_the_letter(
    problems: list[Problem], rows: list[dict[str, str]]
) -> None:
    by_id = {f"gpqa-diamond-{r['Record ID']}": r for r in rows}
    assert [p.id for p in problems] == list(by_id)
    for p in problems:
        row = by_id[p.id]
        assert p.choices is not None and len(p.choices) == 4
        assert p.choices["ABCD".index(p.answer)] == row["Correct Answer"].strip()
        wrong = {row[f"Incorrect Answer {k}"].strip() for k in (1, 2, 3)}
        assert set(p.choices) - {p.choices["ABCD".index(p.answer)]} == wrong
        assert p.problem == row["Question"].strip()


def test_diamond_fields(diamond: list[Problem]) -> None:
    assert [(p.id, p.subject, p.level, p.solution) for p in diamond] == [
        ("gpqa-diamond-recFixture0001", "Physics", "Easy undergraduate level (or easier)",
         "d = g t^2 / 2 = 9.8 * 4 / 2 = 19.6 m."),
        ("gpqa-diamond-recFixture0002", "Chemistry", "Easy undergraduate level (or easier)",
         "n = m / M = 36 / 18 = 2 mol."),
        ("gpqa-diamond-recFixture0003", "Biology", None,
         "Oxidative phosphorylation happens in the mitochondrion."),
        ("gpqa-diamond-recFixture0004", "Chemistry", "Hard undergraduate level", None),
    ]  # fmt: skip
    assert {(p.domain, p.source) for p in diamond} == {("science", "GPQA-diamond")}
    # The revised columns, stripped, line break kept; never the pre-revision drafts.
    assert diamond[1].problem == (
        "Consider pure water, M = 18 g/mol.\nHow many moles of water are in 36 g?"
    )
    assert not any("(draft)" in c for p in diamond for c in (p.choices or ()))


def test_answer_letters_are_shuffled(diamond: list[Problem]) -> None:
    # The raw CSV puts the correct answer first; with seed 0 it lands on these letters.
    assert [p.answer for p in diamond] == ["B", "D", "C", "B"]
    assert diamond[2].choices == (
        "The Golgi apparatus",
        "The ribosome",
        "The mitochondrion",
        "The lysosome, by digestion",
    )


def test_correct_text_lands_at_the_answer_letter(
    diamond: list[Problem], raw_rows: list[dict[str, str]]
) -> None:
    assert_correct_text_lands_at_the_letter(diamond, raw_rows)


def test_shuffle_follows_the_recorded_recipe(diamond: list[Problem]) -> None:
    for p in diamond:
        order = [0, 1, 2, 3]
        random.Random(f"0-{p.id.removeprefix('gpqa-diamond-')}").shuffle(order)
        assert p.answer == "ABCD"[order.index(0)]


def test_same_seed_same_shuffle_other_seed_other(
    diamond: list[Problem], raw_rows: list[dict[str, str]]
) -> None:
    where = "dataset.zip"
    again = problems_from_rows(raw_rows, seed=0, variant="diamond", where=where)
    assert again == diamond
    other = problems_from_rows(raw_rows, seed=1, variant="diamond", where=where)
    assert [p.id for p in other] == [p.id for p in diamond]
    assert [p.answer for p in other] == ["A", "B", "C", "D"]
    assert all(a.choices != b.choices for a, b in zip(other, diamond, strict=True))
    for a, b in zip(other, diamond, strict=True):
        assert a.choices is not None and b.choices is not None
        assert a.choices["ABCD".index(a.answer)] == b.choices["ABCD".index(b.answer)]


def test_password_from_env(
    bench_data: Path, bench_gpqa: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REASONLOOP_GPQA_PASSWORD", bench_gpqa.password)
    got = load_benchmark("gpqa", data_dir=bench_data, limit=1)
    assert [p.id for p in got] == ["gpqa-diamond-recFixture0001"]


def test_missing_password(zip_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REASONLOOP_GPQA_PASSWORD", raising=False)
    with pytest.raises(DataError) as info:
        load_gpqa(zip_path)
    assert str(info.value) == (
        f"{zip_path}: dataset.zip is encrypted and no password was given; pass the password "
        "published in the GPQA authors' README as --gpqa-password / gpqa_password=, or set "
        "REASONLOOP_GPQA_PASSWORD"
    )


def _passes_the_check_byte(zip_path: Path) -> str:
    """A wrong password that ZipCrypto's one-byte check lets through (about 1 in 256 do)."""
    with zipfile.ZipFile(zip_path) as z:
        for i in range(5000):
            candidate = f"wrong-{i}"
            try:
                z.read("dataset/gpqa_diamond.csv", pwd=candidate.encode())
            except RuntimeError:  # "Bad password for file": stopped by the check byte
                continue
            except (zipfile.BadZipFile, zlib.error):
                return candidate
    raise AssertionError("no candidate passed the check byte")


def test_wrong_password(zip_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_gpqa(zip_path, password="wrong")
    assert str(info.value) == (
        f"{zip_path}: cannot decrypt dataset/gpqa_diamond.csv (Bad password for file "
        "'dataset/gpqa_diamond.csv'); pass the password published in the GPQA authors' README "
        "as --gpqa-password / gpqa_password=, or set REASONLOOP_GPQA_PASSWORD"
    )
    # One that slips past the check byte fails while inflating or on the CRC.
    with pytest.raises(DataError) as info:
        load_gpqa(zip_path, password=_passes_the_check_byte(zip_path))
    assert "the password is probably wrong" in str(info.value)
    assert "REASONLOOP_GPQA_PASSWORD" in str(info.value)


def test_main_and_extended_variants(bench_data: Path, bench_gpqa: Any) -> None:
    main = load_benchmark("gpqa-main", data_dir=bench_data, gpqa_password=bench_gpqa.password)
    assert [p.id for p in main] == [f"gpqa-main-recFixture000{i}" for i in range(1, 6)]
    assert {p.source for p in main} == {"GPQA-main"}
    extended = load_gpqa(
        bench_data / "gpqa" / "dataset.zip", password=bench_gpqa.password, variant="extended"
    )
    assert len(extended) == 6 and extended[-1].subject == "Biology"


def test_unknown_variant(zip_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown GPQA variant 'experts'; valid: diamond, main"):
        load_gpqa(zip_path, password="x", variant="experts")


def test_missing_member_and_bad_members(tmp_path: Path, bench_gpqa: Any) -> None:
    members = bench_gpqa.members()
    del members["dataset/gpqa_main.csv"]
    members["dataset/gpqa_extended.csv"] = "Question\ncaf\u00e9 au lait".encode("latin-1")
    rows = [dict(r) for r in bench_gpqa.rows["diamond"]]
    rows[1]["Correct Answer"] = "  "
    members["dataset/gpqa_diamond.csv"] = bench_gpqa.csv(rows)
    path = bench_gpqa.write_zip(tmp_path / "dataset.zip", members, bench_gpqa.password)
    with pytest.raises(DataError) as info:
        load_gpqa(path, password=bench_gpqa.password, variant="main")
    assert str(info.value) == f"{path}: no member 'dataset/gpqa_main.csv' in the archive"
    with pytest.raises(DataError) as info:
        load_gpqa(path, password=bench_gpqa.password, variant="extended")
    assert str(info.value) == (
        f"{path}: dataset/gpqa_extended.csv is not UTF-8 (invalid continuation byte)"
    )
    with pytest.raises(DataError) as info:
        load_gpqa(path, password=bench_gpqa.password)
    assert str(info.value) == (
        f"{path}:dataset/gpqa_diamond.csv:row 1: field 'Correct Answer': empty value"
    )


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
