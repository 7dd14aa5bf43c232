from reasonloop.curate.dedup import Decontaminator, ExactDedup, NearDedup, normalize

BASE = (
    "We want the number of ways to choose two socks of the same colour from a drawer holding "
    "four red socks and six blue socks. Count red pairs: four choose two is six. Count blue pairs: "
    "six choose two is fifteen. So there are twenty one ways in total, and the answer is 21."
)


def test_exact_dedup_ignores_case_and_spacing_only():
    d = ExactDedup()
    assert normalize("  The  Answer, is 4! ") == "the answer is 4"
    assert [
        d.is_duplicate(t) for t in ("The answer is 4.", "the  answer is 4", "The answer is 5.")
    ] == [
        False,
        True,
        False,
    ]


def test_near_dedup_catches_small_edits_not_different_texts():
    d = NearDedup(threshold=0.7, num_perm=128)
    assert d.is_duplicate(BASE) is False
    assert d.is_duplicate(BASE.replace("twenty one", "twenty-one")) is True  # one word changed
    assert d.is_duplicate(BASE + " Done.") is True
    other = (
        "A train leaves the station at noon travelling at sixty miles per hour, and a second train "
        "follows one hour later at eighty miles per hour. The second catches up after three hours."
    )
    assert d.is_duplicate(other) is False
    assert d.is_duplicate(other) is True  # now indexed


def test_minhash_is_deterministic():
    a, b = NearDedup(), NearDedup()
    assert (a.minhash(BASE).hashvalues == b.minhash(BASE).hashvalues).all()


def test_decontamination_by_ngram_overlap():
    bench = [
        "Find the remainder when the sum of the first one hundred positive integers is divided by seven."
    ]
    d = Decontaminator(bench, n=8)
    assert d.is_contaminated(
        "Problem: find the remainder when the sum of the first one hundred positive integers is "
        "divided by 9"
    )
    assert not d.is_contaminated("Find the remainder when 2^100 is divided by seven, using Fermat.")
    assert not d.is_contaminated("too short")
