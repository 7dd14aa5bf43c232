"""DPO pairs from the store: high-perplexity correct vs low-perplexity wrong, as TRL rows."""

import json

from reasonloop.format import SYSTEM_PROMPT
from reasonloop.recipe.pairs import main, preference_rows
from reasonloop.records import Problem, Trajectory, Verdict
from reasonloop.store import open_store


def fill(store):
    p = Problem(id="p1", domain="math", problem="1+1?", answer="2")
    q = Problem(id="p2", domain="math", problem="2+2?", answer="4")
    store.add_problems([p, q])

    def t(pid, text, correct, ppl):
        return Trajectory(pid, text, verdict=Verdict(correct, "x", "correct"), perplexity=ppl)

    store.add_trajectories(
        [
            t("p1", "right, easy", True, 1.5),
            t("p1", "right, hard", True, 3.0),
            t("p1", "wrong, unsure", False, 4.0),
            t("p1", "wrong, confident", False, 1.2),
            t("p2", "only right", True, 2.0),  # no wrong rollout: no pair
            t("p1", "unscored wrong", False, None),  # no perplexity: left out
        ],
        stage="explore-r1",
        sample_indices=range(6),
    )


def test_pairs_pick_hard_positives_and_confident_mistakes(tmp_path):
    with open_store(tmp_path / "s.db") as st:
        fill(st)
        rows = preference_rows(st, ["explore-r1"])
        assert rows == [
            {
                "prompt": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": "1+1?"},
                ],
                "chosen": [{"role": "assistant", "content": "right, hard"}],
                "rejected": [{"role": "assistant", "content": "wrong, confident"}],
                "problem_id": "p1",
            }
        ]
        two = preference_rows(st, ["explore-r1"], pairs_per_problem=2, system_prompt=False)
        assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in two] == [
            ("right, hard", "wrong, confident"),
            ("right, easy", "wrong, unsure"),
        ]
        assert [m["role"] for m in two[0]["prompt"]] == ["user"]
        # a scorer fills in perplexities the store lacks
        scored = preference_rows(st, ["explore-r1"], perplexity=lambda p, t: 0.5)
        assert scored[0]["rejected"][0]["content"] == "unscored wrong"


def test_the_command_writes_the_rows(tmp_path, capsys):
    with open_store(tmp_path / "s.db") as st:
        fill(st)
    out = tmp_path / "pairs.jsonl"
    argv = ["--store", str(tmp_path / "s.db"), "--stage", "explore-r1", "--out", str(out)]
    assert main([*argv, "--no-system-prompt"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["prompt"] == [{"role": "user", "content": "1+1?"}]
    assert f"wrote 1 preference pairs to {out}" in capsys.readouterr().out
