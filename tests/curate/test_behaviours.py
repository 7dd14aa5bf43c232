from reasonloop.curate.behaviours import count_behaviours
from reasonloop.format import render


def test_counts_each_behaviour():
    thought = (
        "First, list the facts. Then try x = 3. Wait, that's wrong: 3 + 4 = 7, not 8. "
        "Alternatively, set up an equation. Let me check: 4 + 4 = 8. Dead end avoided. "
        "Another approach would also work."
    )
    b = count_behaviours(render(thought, "\\boxed{4}"))
    assert b.as_dict() == {
        "strategy_switch": 2,  # alternatively, another approach
        "verification": 1,  # let me check
        "backtracking": 3,  # wait, that's wrong, dead end
        "planning": 2,  # first, then
        "thought_words": len(thought.split()),
    }


def test_only_the_thought_is_counted_and_plain_text_falls_back():
    b = count_behaviours(render("plain thinking", "Wait, let me check: alternatively 4."))
    assert (b.backtracking, b.verification, b.strategy_switch) == (0, 0, 0)
    assert count_behaviours("Wait. Let me verify.").verification == 1
    assert count_behaviours(None).thought_words == 0  # type: ignore[arg-type]


def test_behaviour_groups_by_verdict_and_by_source():
    from reasonloop.curate.behaviours import behaviour_groups
    from reasonloop.records import Generator, Trajectory, Verdict

    checked = render("Let me plan. First, try 2+2. Wait, let me verify: 2+2=4.", "4")
    plain = render("Just add them up here.", "4")
    ok, wrong = Verdict(True, "4", "correct"), Verdict(False, "5", "wrong_answer")
    a, b = Generator(engine="e", model="a"), Generator(engine="e", model="b")
    groups = behaviour_groups(
        [
            Trajectory("p", checked, verdict=ok, generator=a),
            Trajectory("p", plain, verdict=wrong, generator=a),
            Trajectory("q", plain, verdict=None, generator=b),
        ]
    )
    assert groups == {
        "source=a": {
            "n": 2,
            "strategy_switch": 0,
            "verification": 0.5,
            "backtracking": 0.5,
            "planning": 1,
            "thought_words": 8,  # the median of 11 and 5
        },
        "source=b": {
            "n": 1,
            "strategy_switch": 0,
            "verification": 0,
            "backtracking": 0,
            "planning": 0,
            "thought_words": 5,
        },
        "verdict=correct": {
            "n": 1,
            "strategy_switch": 0,
            "verification": 1,
            "backtracking": 1,
            "planning": 2,
            "thought_words": 11,
        },
        "verdict=incorrect": {
            "n": 1,
            "strategy_switch": 0,
            "verification": 0,
            "backtracking": 0,
            "planning": 0,
            "thought_words": 5,
        },
        "verdict=ungraded": {
            "n": 1,
            "strategy_switch": 0,
            "verification": 0,
            "backtracking": 0,
            "planning": 0,
            "thought_words": 5,
        },
    }
