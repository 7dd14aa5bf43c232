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
