import json

import pytest

from reasonloop.engines.scripted import ScriptedEngine, prompt_text
from reasonloop.format import render
from reasonloop.records import Problem
from reasonloop.rel.loop import RELConfig, accepted, load_prompt, parse_critique, round_id, run_rel

P = Problem("p1", "math", "What is 6 * 7?", "42", solution="6*7 = 42, so \\boxed{42}.")


def worked(answer: str, tag: str) -> str:
    return render(
        f"[{tag}] Plan: multiply. Alternatively add 6 seven times. Check: 42/7=6.",
        f"\\boxed{{{answer}}}",
    )


def critic_json(score: int, critique: str = "add a second check") -> str:
    return json.dumps(
        {k: score for k in ("planning", "exploration", "verification", "correctness", "clarity")}
        | {"critique": critique}
    )


# (critic reply, parsed overall or None)
CRITIC_TABLE = [
    (critic_json(8), 0.8),
    ("Here is my review:\n" + critic_json(10) + "\nThanks!", 1.0),
    (
        '{"planning": 12, "exploration": -3, "verification": 5, "correctness": 5, "clarity": 5}',
        (10 + 0 + 15) / 50,
    ),
    (
        "planning: 6\nexploration: 6/10\nverification: 6\ncorrectness: 6\nclarity: 6\ncritique: ok",
        0.6,
    ),
    ('{"planning": 7, "clarity": 9}', None),  # missing items
    ("I think it is good.", None),
    (
        '{"planning": "high", "exploration": 1, "verification": 1, "correctness": 1, "clarity": 1}',
        None,
    ),
    ("", None),
]


@pytest.mark.parametrize("reply,overall", CRITIC_TABLE)
def test_parse_critique_table(reply, overall):
    s = parse_critique(reply)
    if overall is None:
        assert s is None
    else:
        assert s is not None and s.overall == pytest.approx(overall)


def test_prompts_are_packaged_and_versioned():
    for name in ("rel_rewrite", "rel_critic", "rel_revise"):
        assert "{problem}" in load_prompt(name, "v1")


def scripted(gen_answers, critic_scores):
    """A generator that answers from ``gen_answers`` in order (tagging each text with its round)
    and a critic that scores from ``critic_scores`` in order (None = unparseable reply)."""
    gen_iter = iter(enumerate(gen_answers))
    crit_iter = iter(critic_scores)

    def gen(req, i):
        r, ans = next(gen_iter)
        return worked(ans, f"round {r}")

    def crit(req, i):
        s = next(crit_iter)
        return "no idea" if s is None else critic_json(s, critique=f"critique-{s}")

    return ScriptedEngine(gen, spec="scripted:gen"), ScriptedEngine(crit, spec="scripted:critic")


def test_stops_at_threshold():
    gen, crit = scripted(["42", "42", "42", "42"], [5, 9, 9, 9])
    chain = run_rel(P, gen, crit, RELConfig(rounds=3, threshold=0.8))
    assert [t.generator.round for t in chain] == [0, 1]
    assert [accepted(t, 0.8) for t in chain] == [False, True]
    assert chain[1].parent == chain[0].id == round_id("p1", "scripted:gen", 0, 0)
    assert chain[1].critic_scores["planning"] == 0.9


def test_revises_from_the_critique_and_flags_wrong_answers():
    gen, crit = scripted(["41", "42"], [9, 9])
    chain = run_rel(P, gen, crit, RELConfig(rounds=3, threshold=0.8))
    revise_prompt = prompt_text(gen.calls[1])
    assert "critique-9" in revise_prompt  # the critique reaches the generator
    assert "[round 0]" in revise_prompt  # so does the previous candidate
    assert "WRONG" in revise_prompt  # and the failed validation
    assert [t.verdict.correct for t in chain] == [False, True]


def test_never_accepts_a_candidate_that_fails_validation():
    gen, crit = scripted(["41", "40", "39", "38"], [10, 10, 10, 10])
    chain = run_rel(P, gen, crit, RELConfig(rounds=3, threshold=0.5))
    assert len(chain) == 4  # round limit: 1 + 3 revisions, all kept
    assert not any(accepted(t, 0.5) for t in chain)
    assert all(t.verdict.reason == "wrong" for t in chain)  # negatives are kept


def test_unparseable_critic_is_retried_then_recorded():
    gen, crit = scripted(["42", "42"], [None, None, None, None, 9])
    chain = run_rel(P, gen, crit, RELConfig(rounds=1, threshold=0.8, critic_retries=2))
    assert chain[0].critic_scores is None
    assert chain[0].critique.startswith("unparseable: 'no idea'")
    assert len(crit.calls) == 5  # 3 tries on round 0, then 1 retry + success on round 1
    assert accepted(chain[1], 0.8)


def test_resume_continues_after_the_stored_rounds():
    gen, crit = scripted(["41", "41", "42"], [5, 5, 9])
    stored = []
    with pytest.raises(StopIteration):  # the generator runs out: a crash after round 1
        run_rel(P, *scripted(["41", "41"], [5, 5]), RELConfig(rounds=3), on_round=stored.append)
    assert len(stored) == 2
    gen, crit = scripted(["42"], [9])
    chain = run_rel(P, gen, crit, RELConfig(rounds=3), done=stored)
    assert [t.generator.round for t in chain] == [0, 1, 2]
    assert chain[2].parent == stored[1].id
    assert len(gen.calls) == 1
    # a finished chain is not run again
    assert run_rel(P, gen, crit, RELConfig(rounds=3), done=chain) == chain
    assert len(gen.calls) == 1
