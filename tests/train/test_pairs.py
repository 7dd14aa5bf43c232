from reasonloop.records import Problem, Trajectory, Verdict
from reasonloop.train.pairs import select_pairs

R, W = Verdict(True, "1", "correct"), Verdict(False, "2", "wrong")
PROBS = {p: Problem(p, "math", f"q{p}", "1") for p in ("a", "b", "c")}


def t(pid, tid, verdict, ppl):
    return Trajectory(pid, f"text-{tid}", verdict=verdict, perplexity=ppl, id=tid)


TRAJ = [
    t("a", "a1", R, 2.0),
    t("a", "a2", R, 7.5),  # highest-perplexity correct -> chosen
    t("a", "a3", W, 1.5),  # lowest-perplexity incorrect -> rejected
    t("a", "a4", W, 9.0),
    t("a", "a5", R, None),  # no perplexity: skipped
    t("b", "b1", R, 3.0),  # no incorrect trajectory: no pair
    t("c", "c1", W, 4.0),
    t("c", "c2", R, 1.1),
    t("z", "z1", R, 1.0),  # unknown problem
]


def test_picks_high_perplexity_correct_vs_low_perplexity_incorrect():
    pairs = select_pairs(TRAJ, PROBS, prompt=lambda p: p.problem)
    assert [(p.problem_id, p.chosen_id, p.rejected_id) for p in pairs] == [
        ("a", "a2", "a3"),
        ("c", "c2", "c1"),
    ]
    assert pairs[0].prompt == "qa" and pairs[0].chosen == "text-a2"
    assert (pairs[0].chosen_perplexity, pairs[0].rejected_perplexity) == (7.5, 1.5)


def test_several_pairs_per_problem_never_reuse_a_trajectory():
    pairs = select_pairs(TRAJ, PROBS, prompt=lambda p: p.problem, pairs_per_problem=3)
    a = [(p.chosen_id, p.rejected_id) for p in pairs if p.problem_id == "a"]
    assert a == [("a2", "a3"), ("a1", "a4")]
