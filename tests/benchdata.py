r"""A miniature benchmark data directory, written by the tests, in the real on-disk layout.

Every benchmark the registry knows gets a few rows in the same format as the files in
``shared/data`` (see its ``SOURCES.md``): the same keys in the same order, the same id schemes and
the same answer conventions (GSM8K answers without thousands commas while the solution keeps them,
AIME answers without leading zeros, a ``null`` MATH level, HumanEval's ``tests`` + ``entry_point``).
GPQA gets an archive laid out like the authors' ``dataset.zip``: a ``dataset/`` folder of CSVs with
the authors' column names, each member deflated and encrypted with ZipCrypto (PKWARE's traditional
encryption, flag bits 0 and 3, as the authors' file has them), written here byte by byte because
Python's ``zipfile`` can read such archives but not write them.

The problems are invented for the tests (none is copied from a benchmark), so the suite exercises
loaders, registry, graders and the end-to-end loop in any clone. What this does NOT give: the real
row counts, the real answer variety, or evidence that the real files are intact — the tests that
check those read the real data and skip, saying so, when it is absent.

``conftest.py`` loads this module by path (pytest runs with ``--import-mode=importlib``) and
exposes it as fixtures; test modules use the fixtures, not this module.
"""

from __future__ import annotations

import csv
import io
import json
import random
import struct
import zlib
from pathlib import Path
from typing import Any

# --- JSONL benchmarks ---------------------------------------------------------------------------


def _row(
    id: str,
    problem: str,
    answer: str,
    solution: str | None,
    source: str,
    level: str | None = None,
    subject: str | None = None,
    domain: str = "math",
) -> dict[str, Any]:
    """One row with the keys of shared/data's files, in their order."""
    return {
        "id": id,
        "problem": problem,
        "answer": answer,
        "solution": solution,
        "domain": domain,
        "source": source,
        "level": level,
        "subject": subject,
    }


def _math500(n: int, subject: str, level: str, problem: str, working: str, answer: str):
    folder = subject.lower().replace(" & ", "_and_").replace(" ", "_")
    solution = f"{working} $\\boxed{{{answer}}}$."
    return _row(f"test/{folder}/{n}.json", problem, answer, solution, "MATH-500", level, subject)


MATH500 = [
    _math500(1, "Algebra", "1", r"Solve for $x$: $3x + 7 = 25$.",
             r"Subtracting 7 gives $3x = 18$, so $x =", "6"),
    _math500(2, "Intermediate Algebra", "3",
             r"For which real $x$ is $x^2 - 5x + 6 < 0$? Give your answer as an interval.",
             r"The quadratic factors as $(x-2)(x-3)$, which is negative strictly between its roots:",
             "(2,3)"),
    _math500(3, "Prealgebra", "2", r"What is $\frac{1}{4} + \frac{1}{6}$?",
             r"With the common denominator 12 this is $\frac{3}{12} + \frac{2}{12} =", r"\frac{5}{12}"),
    _math500(4, "Geometry", "2", "What is the measure of each interior angle of a regular hexagon?",
             r"The angles sum to $(6-2) \cdot 180^\circ = 720^\circ$, so each is", r"120^\circ"),
    _math500(5, "Precalculus", "2",
             r"Compute $\begin{pmatrix} 1 & 2 \\ 0 & 1 \end{pmatrix}^2$.",
             "Multiplying the matrix by itself gives",
             r"\begin{pmatrix} 1 & 4 \\ 0 & 1 \end{pmatrix}"),
    _math500(6, "Number Theory", "3", r"Express $2^{10}$ in base $8$.",
             r"$2^{10} = 1024 = 2 \cdot 8^3$, which is", "2000_8"),
    _math500(7, "Counting & Probability", "2",
             "In how many ways can 3 of 5 different books be put in a row on a shelf?",
             r"There are $5 \cdot 4 \cdot 3 =", "60"),
    _math500(8, "Algebra", "2", r"Write $\sqrt{50}$ in simplest radical form.",
             r"$\sqrt{50} = \sqrt{25 \cdot 2} =", r"5\sqrt{2}"),
    _math500(9, "Number Theory", "1",
             "Today is Monday. What day of the week will it be 15 days from now?",
             r"Since $15 = 2 \cdot 7 + 1$, it is one day after Monday:", r"\text{Tuesday}"),
    _math500(10, "Intermediate Algebra", "2", r"Compute $(2+i)(3-i)$.",
             r"Expanding, $6 - 2i + 3i - i^2 = 6 + i + 1 =", "7+i"),
]  # fmt: skip

# The registry's math-train subjects, in its fixed order; prealgebra has five rows (the REL test).
MATH_TRAIN: dict[str, list[dict[str, Any]]] = {
    "algebra": [
        _row("train/algebra/1.json", r"If $2a + 3 = 11$, what is $a$?",
             "4", r"Then $2a = 8$, so $a = \boxed{4}$.", "MATH-train-prm800k-12k", "1", "Algebra"),
        _row("test/algebra/2.json", r"What is the slope of the line through $(1,2)$ and $(3,8)$?",
             "3", r"The slope is $\frac{8-2}{3-1} = \boxed{3}$.", "MATH-train-prm800k-12k", "2",
             "Algebra"),
    ],
    "counting_and_probability": [
        _row("train/counting_and_probability/1.json",
             "How many ways are there to choose a committee of 2 from 6 people?",
             "15", r"$\binom{6}{2} = \boxed{15}$.", "MATH-train-prm800k-12k", "2",
             "Counting & Probability"),
    ],
    "geometry": [  # level null: the real file has two "Level ?" rows
        _row("train/geometry/1.json", "A right triangle has legs 6 and 8. How long is its hypotenuse?",
             "10", r"$\sqrt{36 + 64} = \boxed{10}$.", "MATH-train-prm800k-12k", None, "Geometry"),
    ],
    "intermediate_algebra": [
        _row("train/intermediate_algebra/1.json",
             r"Find the sum of the roots of $x^3 - 6x^2 + 11x - 6 = 0$.",
             "6", r"By Vieta's formulas the sum is $\boxed{6}$.", "MATH-train-prm800k-12k", "2",
             "Intermediate Algebra"),
    ],
    "number_theory": [
        _row("train/number_theory/1.json", r"What is the greatest common divisor of $84$ and $126$?",
             "42", r"$84 = 2 \cdot 42$ and $126 = 3 \cdot 42$, so it is $\boxed{42}$.",
             "MATH-train-prm800k-12k", "1", "Number Theory"),
    ],
    "prealgebra": [
        _row("train/prealgebra/1.json", r"What is $15\%$ of $80$?",
             "12", r"$0.15 \cdot 80 = \boxed{12}$.", "MATH-train-prm800k-12k", "1", "Prealgebra"),
        _row("train/prealgebra/2.json", r"Round $3.846$ to the nearest tenth.",
             "3.8", r"The hundredths digit is 4, so round down: $\boxed{3.8}$.",
             "MATH-train-prm800k-12k", "1", "Prealgebra"),
        _row("train/prealgebra/3.json", r"What is $7 \times 8 - 6$?",
             "50", r"$56 - 6 = \boxed{50}$.", "MATH-train-prm800k-12k", "1", "Prealgebra"),
        _row("train/prealgebra/4.json", r"Simplify $\frac{18}{24}$.",
             r"\frac{3}{4}", r"Divide both by 6: $\boxed{\frac{3}{4}}$.", "MATH-train-prm800k-12k",
             "2", "Prealgebra"),
        _row("test/prealgebra/5.json",
             "A rectangle is 5 cm wide and 9 cm long. What is its perimeter, in centimeters?",
             "28", r"$2(5 + 9) = \boxed{28}$.", "MATH-train-prm800k-12k", "1", "Prealgebra"),
    ],
    "precalculus": [
        _row("train/precalculus/1.json", r"Compute $\cos 60^\circ$.",
             r"\frac{1}{2}", r"From the 30-60-90 triangle, $\cos 60^\circ = \boxed{\frac{1}{2}}$.",
             "MATH-train-prm800k-12k", "1", "Precalculus"),
    ],
}  # fmt: skip

AIME24 = [
    _row("aime2024-I-01",
         r"Find the number of positive integers $n \le 100$ that are divisible by $3$ or by $5$.",
         "47", "By inclusion-exclusion: 33 + 20 - 6 = 47.", "AIME-2024"),
    _row("aime2024-I-02", r"Find the remainder when $2^{100}$ is divided by $7$.",
         "2", "Since 2^3 = 8 leaves remainder 1, 2^100 = 2 * (2^3)^33 leaves 2.", "AIME-2024"),
    _row("aime2024-II-01",  # the real file strips leading zeros ("009" -> "9")
         r"How many ordered pairs of positive integers $(a, b)$ satisfy $ab = 36$?",
         "9", "One pair per divisor of 36, and 36 has 9 divisors.", "AIME-2024"),
]  # fmt: skip

AIME25 = [
    _row("aime2025-I-01", r"Find the sum of the positive divisors of $28$.", "56", None, "AIME-2025"),
    _row("aime2025-I-02", r"How many $3$-element subsets does $\{1, 2, \dots, 10\}$ have?", "120",
         None, "AIME-2025"),
    _row("aime2025-II-01", "The product of two consecutive positive integers is 506. Find their sum.",
         "45", None, "AIME-2025"),
]  # fmt: skip

AMC23 = [
    _row("amc2023-12A-01",
         r"What is $100 \cdot (1 - \tfrac12)(1 - \tfrac13) \cdots (1 - \tfrac1{10})$?",
         "10", None, "AMC-2023"),
    _row("amc2023-12A-02", r"The roots of $x^2 + x - 2 = 0$ are $r < s$. What is $r$?",
         "-2", None, "AMC-2023"),
    _row("amc2023-12B-01", "How many positive integers less than 50 are perfect squares?",
         "7", None, "AMC-2023"),
]  # fmt: skip


def _gsm8k(i: int, problem: str, working: str, answer: str) -> dict[str, Any]:
    # The real file keeps the solution verbatim (calculator notes, a "#### N" line that may have
    # thousands commas) and strips the commas from the answer.
    return _row(f"gsm8k-test-{i:04d}", problem, answer.replace(",", ""), f"{working}\n#### {answer}",
                "GSM8K")  # fmt: skip


GSM8K = [
    _gsm8k(0, "Mia buys 3 packs of pencils with 12 pencils in each pack. She gives 9 pencils to her "
              "brother. How many pencils does she have left?",
           "Mia buys 3 * 12 = <<3*12=36>>36 pencils.\nShe has 36 - 9 = <<36-9=27>>27 left.", "27"),
    _gsm8k(1, "A baker sells muffins in boxes of 6 for $5 a box. How much money does he make if he "
              "bakes 48 muffins and sells all of them?",
           "He fills 48 / 6 = <<48/6=8>>8 boxes.\nHe makes 8 * 5 = <<8*5=40>>40 dollars.", "40"),
    _gsm8k(2, "Tom reads 15 pages a day. How many days does he need to read a 210-page book?",
           "He needs 210 / 15 = <<210/15=14>>14 days.", "14"),
    _gsm8k(3, "A train travels at 80 kilometers per hour for 2.5 hours. How far does it go?",
           "It goes 80 * 2.5 = <<80*2.5=200>>200 kilometers.", "200"),
    _gsm8k(4, "Sara saved $1,500 and spent 20% of it on a bike. How much money does she have left?",
           "The bike cost 1500 * 0.2 = <<1500*0.2=300>>300 dollars.\n"
           "She has 1500 - 300 = <<1500-300=1200>>1,200 dollars left.", "1,200"),
    _gsm8k(5, "A class has 24 students. One third of them walk to school and the rest take the bus. "
              "How many take the bus?",
           "24 / 3 = <<24/3=8>>8 walk.\n24 - 8 = <<24-8=16>>16 take the bus.", "16"),
    _gsm8k(6, "A garden has 7 rows of 9 tomato plants, and each plant gives 4 tomatoes. How many "
              "tomatoes does the garden give?",
           "There are 7 * 9 = <<7*9=63>>63 plants.\nThey give 63 * 4 = <<63*4=252>>252 tomatoes.",
           "252"),
    _gsm8k(7, "Leo is 4 years older than his sister, who is 11. How old will Leo be in 5 years?",
           "Leo is 11 + 4 = <<11+4=15>>15.\nIn 5 years he will be 15 + 5 = <<15+5=20>>20.", "20"),
    _gsm8k(8, "An empty tank holds 500 liters and fills at 25 liters a minute. After 12 minutes, "
              "how many more liters does it need to be full?",
           "After 12 minutes it holds 12 * 25 = <<12*25=300>>300 liters.\n"
           "It needs 500 - 300 = <<500-300=200>>200 more.", "200"),
    _gsm8k(9, "It was 3 degrees at noon and the temperature fell by 5 degrees by night. What was "
              "the temperature at night?",
           "3 - 5 = <<3-5=-2>>-2 degrees.", "-2"),
]  # fmt: skip


def _humaneval(i: int, prompt: str, body: str, tests: str, entry_point: str) -> dict[str, Any]:
    row = _row(f"HumanEval/{i}", prompt, body, prompt + body, "HumanEval", domain="code")
    return {**row, "tests": tests, "entry_point": entry_point}


# Each canonical body holds one operator that a simple mutation flips (see tests/verify), and each
# check() catches that mutant.
HUMANEVAL = [
    _humaneval(
        0,
        'def count_below(numbers: list, limit: int) -> int:\n'
        '    """Count the numbers that are strictly below limit.\n'
        '    >>> count_below([1, 5, 2, 8], 5)\n    2\n    """\n',
        "    return sum(1 for n in numbers if n < limit)\n",
        "def check(candidate):\n    assert candidate([1, 5, 2, 8], 5) == 2\n"
        "    assert candidate([], 3) == 0\n    assert candidate([3, 3, 3], 3) == 0\n"
        "    assert candidate([-1, 0, 1], 1) == 2\n",
        "count_below",
    ),
    _humaneval(
        1,
        'def digit_sum(n: int) -> int:\n'
        '    """The sum of the decimal digits of a non-negative integer.\n'
        '    >>> digit_sum(1234)\n    10\n    """\n',
        "    total = 0\n    while n:\n        total = total + n % 10\n        n //= 10\n"
        "    return total\n",
        "def check(candidate):\n    assert candidate(1234) == 10\n    assert candidate(0) == 0\n"
        "    assert candidate(909) == 18\n",
        "digit_sum",
    ),
    _humaneval(
        2,
        'def is_palindrome(text: str) -> bool:\n'
        '    """Whether text reads the same backwards, ignoring case.\n'
        "    >>> is_palindrome('Level')\n    True\n    \"\"\"\n",
        "    lowered = text.lower()\n    return lowered == lowered[::-1]\n",
        "def check(candidate):\n    assert candidate('Level') is True\n"
        "    assert candidate('abc') is False\n    assert candidate('') is True\n",
        "is_palindrome",
    ),
    _humaneval(
        3,
        'def first_even(values: list):\n'
        '    """The first even value, or None when there is none.\n'
        '    >>> first_even([3, 4, 6])\n    4\n    """\n',
        "    for v in values:\n        if v % 2 == 0:\n            return v\n    return None\n",
        "def check(candidate):\n    assert candidate([3, 4, 6]) == 4\n"
        "    assert candidate([1, 3]) is None\n    assert candidate([]) is None\n",
        "first_even",
    ),
    _humaneval(
        4,
        'def all_positive(values: list) -> bool:\n'
        '    """Whether every value is above zero (True for an empty list)."""\n',
        "    for v in values:\n        if v <= 0:\n            return False\n    return True\n",
        "def check(candidate):\n    assert candidate([1, 2]) is True\n"
        "    assert candidate([]) is True\n    assert candidate([3, 0]) is False\n",
        "all_positive",
    ),
]  # fmt: skip

JSONL: dict[str, list[dict[str, Any]]] = {
    "math500/test.jsonl": MATH500,
    "aime2024/test.jsonl": AIME24,
    "aime2025/test.jsonl": AIME25,
    "amc2023/test.jsonl": AMC23,
    "gsm8k/test.jsonl": GSM8K,
    "humaneval/test.jsonl": HUMANEVAL,
    **{f"math_train/{subject}.jsonl": rows for subject, rows in MATH_TRAIN.items()},
}

# Registry name -> the rows it must load, in order.
BY_BENCHMARK: dict[str, list[dict[str, Any]]] = {
    "math500": MATH500,
    "aime24": AIME24,
    "aime25": AIME25,
    "amc23": AMC23,
    "gsm8k": GSM8K,
    "humaneval": HUMANEVAL,
    "math-train": [row for rows in MATH_TRAIN.values() for row in rows],
}

# --- GPQA ---------------------------------------------------------------------------------------

GPQA_PASSWORD = "fixture-only-password"  # not the authors' password: this archive is ours
CANARY = "reasonloop test fixture; not GPQA data"

# The authors' CSV columns that matter here, in their order (the real files have 78: more
# validator columns, which the loader ignores).
GPQA_COLUMNS = (
    "Pre-Revision Question", "Pre-Revision Correct Answer", "Pre-Revision Incorrect Answer 1",
    "Pre-Revision Incorrect Answer 2", "Pre-Revision Incorrect Answer 3",
    "Pre-Revision Explanation", "Question", "Correct Answer", "Incorrect Answer 1",
    "Incorrect Answer 2", "Incorrect Answer 3", "Explanation", "Subdomain",
    "Writer's Difficulty Estimate", "Extra Revised Question", "Record ID", "High-level domain",
    "Canary String",
)  # fmt: skip


def _gpqa(record: str, domain: str, sub: str, difficulty: str, question: str,
          correct: str, wrong: tuple[str, str, str], explanation: str) -> dict[str, str]:  # fmt: skip
    values = {
        # The pre-revision columns hold other text: the loader must read the revised ones.
        "Pre-Revision Question": f"(draft) {question.strip()}",
        "Pre-Revision Correct Answer": f"(draft) {correct}",
        **{f"Pre-Revision Incorrect Answer {k}": f"(draft) {w}" for k, w in enumerate(wrong, 1)},
        "Pre-Revision Explanation": "(draft)",
        "Question": question,
        "Correct Answer": correct,
        **{f"Incorrect Answer {k}": w for k, w in enumerate(wrong, 1)},
        "Explanation": explanation,
        "Subdomain": sub,
        "Writer's Difficulty Estimate": difficulty,
        "Extra Revised Question": "",
        "Record ID": record,
        "High-level domain": domain,
        "Canary String": CANARY,
    }
    return {name: values[name] for name in GPQA_COLUMNS}


GPQA_DIAMOND = [
    _gpqa("recFixture0001", "Physics", "Physics (general)", "Easy undergraduate level (or easier)",
          "A ball falls from rest for 2.0 s with g = 9.8 m/s^2 and no air resistance. How far "
          "does it fall?", "19.6 m", ("9.8 m", "39.2 m", "4.9 m"),
          "d = g t^2 / 2 = 9.8 * 4 / 2 = 19.6 m."),
    # Spaces around the text and a line break inside it, as in the real CSV: stripped, kept.
    _gpqa("recFixture0002", "Chemistry", "Chemistry (general)", "Easy undergraduate level (or easier)",
          "  Consider pure water, M = 18 g/mol.\nHow many moles of water are in 36 g?  ", " 2 ",
          ("0.5", "18", "36"), "n = m / M = 36 / 18 = 2 mol."),
    # An empty difficulty estimate (level None) and a comma inside a quoted field.
    _gpqa("recFixture0003", "Biology", "Molecular Biology", "",
          "Which organelle makes most of the ATP of a eukaryotic cell?", "The mitochondrion",
          ("The ribosome", "The Golgi apparatus", "The lysosome, by digestion"),
          "Oxidative phosphorylation happens in the mitochondrion."),
    _gpqa("recFixture0004", "Chemistry", "Physical Chemistry", "Hard undergraduate level",
          "What is the pH of 0.01 M hydrochloric acid at 25 C?", "2",
          ("1", "12", '7, as for "pure" water'), ""),
]  # fmt: skip
GPQA_MAIN = [
    *GPQA_DIAMOND,
    _gpqa("recFixture0005", "Physics", "Electromagnetism", "Hard undergraduate level",
          "Two 4-ohm resistors are connected in parallel. What is their combined resistance?",
          "2 ohm", ("8 ohm", "4 ohm", "1 ohm"), "1/R = 1/4 + 1/4, so R = 2 ohm."),
]  # fmt: skip
GPQA_EXTENDED = [
    *GPQA_MAIN,
    _gpqa("recFixture0006", "Biology", "Genetics", "Easy undergraduate level (or easier)",
          "Two carriers (Aa) of a recessive trait have a child. What is the chance the child shows "
          "the trait?", "1/4", ("1/2", "3/4", "0"), "Only aa shows it: 1/2 * 1/2."),
]  # fmt: skip
GPQA = {"diamond": GPQA_DIAMOND, "main": GPQA_MAIN, "extended": GPQA_EXTENDED}


def gpqa_csv(rows: list[dict[str, str]]) -> bytes:
    """Rows as the authors' CSV bytes: UTF-8, ``\\n`` line ends, quoted only where needed."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def gpqa_members() -> dict[str, bytes]:
    """The members of the fixture ``dataset.zip``, named as in the authors' archive."""
    return {
        "dataset/": b"",
        **{f"dataset/gpqa_{variant}.csv": gpqa_csv(rows) for variant, rows in GPQA.items()},
        "dataset/gpqa_experts.csv": b"Name,Expertise\nA. Writer,Chemistry\n",
        "dataset/license.txt": b"Test fixture written by reasonloop's tests.\n",
    }


# --- ZipCrypto ----------------------------------------------------------------------------------


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


class _ZipCryptoKeys:
    """The three-key stream cipher of the ZIP specification (APPNOTE.TXT, section 6.1)."""

    def __init__(self, password: bytes):
        self.keys = [0x12345678, 0x23456789, 0x34567890]
        for byte in password:
            self._update(byte)

    def _update(self, byte: int) -> None:
        k0, k1, k2 = self.keys
        k0 = (k0 >> 8) ^ _CRC_TABLE[(k0 ^ byte) & 0xFF]
        k1 = ((k1 + (k0 & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        k2 = (k2 >> 8) ^ _CRC_TABLE[(k2 ^ (k1 >> 24)) & 0xFF]
        self.keys = [k0, k1, k2]

    def encrypt(self, plain: bytes) -> bytes:
        out = bytearray()
        for byte in plain:
            t = (self.keys[2] | 2) & 0xFFFF
            out.append(byte ^ (((t * (t ^ 1)) >> 8) & 0xFF))
            self._update(byte)
        return bytes(out)


# 2023-11-20 23:22:12 in MS-DOS form, the authors' timestamp.
_DOS_TIME = (23 << 11) | (22 << 5) | (12 // 2)
_DOS_DATE = ((2023 - 1980) << 9) | (11 << 5) | 20


def write_zipcrypto(path: Path, members: dict[str, bytes], password: str, *, seed: int = 0) -> Path:
    """Write a ZIP archive whose file members are deflated, then ZipCrypto-encrypted.

    Laid out as the authors' GPQA archive is: general-purpose flags 0x9 (encrypted, sizes in a
    data descriptor after the data), so the password check byte is the high byte of the member's
    modification time; names ending in ``/`` are stored, unencrypted folder entries. The 11 random
    bytes of each encryption header come from ``random.Random(seed)``, so the bytes are reproducible.
    """
    rng = random.Random(seed)
    body, central = bytearray(), bytearray()
    for name, data in members.items():
        raw_name = name.encode("utf-8")
        offset = len(body)
        if name.endswith("/"):
            flags, method, crc, payload = 0, 0, 0, b""
            attributes = (0o40755 << 16) | 0x10
        else:
            flags, method, crc = 0x9, 8, zlib.crc32(data)
            deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
            packed = deflate.compress(data) + deflate.flush()
            header = bytes(rng.randrange(256) for _ in range(11)) + bytes([_DOS_TIME >> 8])
            payload = _ZipCryptoKeys(password.encode("utf-8")).encrypt(header + packed)
            attributes = 0o100644 << 16
        # Local header; with flag bit 3 its CRC and sizes are zero and follow the data instead.
        body += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, flags, method, _DOS_TIME, _DOS_DATE, 0, 0, 0,
            len(raw_name), 0,
        ) + raw_name + payload  # fmt: skip
        if flags & 0x8:
            body += struct.pack("<IIII", 0x08074B50, crc, len(payload), len(data))
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 30, 20, flags, method, _DOS_TIME,
            _DOS_DATE, crc, len(payload), len(data), len(raw_name), 0, 0, 0, 0, attributes, offset,
        ) + raw_name  # fmt: skip
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(body), 0
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(body + central + end))
    return path


# --- the directory ------------------------------------------------------------------------------


def write_bench_data(root: Path) -> Path:
    """Write the miniature data directory (every registry benchmark) under ``root``."""
    for rel, rows in JSONL.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
        )
    write_zipcrypto(root / "gpqa" / "dataset.zip", gpqa_members(), GPQA_PASSWORD)
    return root
