from reasonloop.problems import resolve_problems
from reasonloop.problems.countdown import apply, make_problems, parse_problem


def test_rules_of_steps():
    assert apply(7, "-", 9) is None  # no negatives
    assert apply(7, "/", 2) is None  # no fractions
    assert apply(8, "/", 1) is None  # dividing by one is not a move
    assert apply(8, "/", 2) == 4


def test_problems_are_deterministic_distinct_and_round_trip():
    a = make_problems(50, n_numbers=4, max_number=25, seed=3)
    b = make_problems(50, n_numbers=4, max_number=25, seed=3)
    assert a == b
    assert len({p.problem for p in a}) == 50
    assert make_problems(5, n_numbers=4, max_number=25, seed=4) != a[:5]
    for p in a:
        puzzle = parse_problem(p.problem)
        assert puzzle is not None and len(puzzle.numbers) == 4 and str(puzzle.target) == p.answer
        assert (p.domain, p.source) == ("puzzle", "countdown")


def test_generated_sets_resolve_by_name_without_data():
    easy = resolve_problems("countdown-easy", limit=5)
    assert [len(parse_problem(p.problem).numbers) for p in easy] == [3] * 5
    assert len(resolve_problems("countdown-hard")) == 100
    assert resolve_problems("countdown-hard", seed=1)[0] != resolve_problems("countdown-hard")[0]
