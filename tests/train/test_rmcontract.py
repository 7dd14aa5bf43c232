"""The reward-model contract: inputs, GenRM's P(Yes) (scripted, and by hand on a tiny model's
logits), GenRM-CoT's average over sampled verifications, loading errors."""

import math
import re

import pytest
import torch

from reasonloop.engines.base import Message, Result, Sample, Scored
from reasonloop.engines.hf import HFEngine
from reasonloop.engines.scripted import ScriptedEngine
from reasonloop.errors import ConfigError
from reasonloop.records import Problem
from reasonloop.search import make_scorer
from reasonloop.train.rmcontract import (
    COT_TEMPERATURE,
    VERIFY_QUESTION,
    GenRM,
    GenRMCoT,
    cot_messages,
    orm_text,
    question_for,
    rationale_prompt,
    verification_prompt,
)

MATH = Problem("m1", "math", "What is 6*7?", "42")
CHOICE = Problem("q1", "science", "Which?", "B", choices=("one", "two"))


def test_texts_the_models_read():
    assert orm_text("Q?", "R.") == "Q?\n\nR."
    assert verification_prompt("Q?", "R.") == (
        "Q?\n\nProposed response:\nR.\n\nIs the answer correct? Answer Yes or No."
    )
    assert question_for(MATH) == "What is 6*7?"
    assert "A) one" in question_for(CHOICE)  # choices are shown as the policy saw them


def test_genrm_default_is_p_yes_and_the_variant_normalises():
    table = {"Yes": -0.5, "No": -1.5}
    engine = ScriptedEngine(["unused"], logprob=lambda w: table[w])
    genrm = GenRM(engine=engine)
    assert genrm.form == "yes"
    assert genrm.score(MATH, None, "so \\boxed{42}") == pytest.approx(math.exp(-0.5))
    assert genrm.oracle is False
    normalised = GenRM(engine=engine, form="yes-no")
    assert normalised.score(MATH, None, "so \\boxed{42}") == pytest.approx(1 / (1 + math.exp(-1.0)))
    # little mass on either word: P(Yes) stays small, the normalised form calls it certain
    doubt = ScriptedEngine(
        ["x"], logprob=lambda w: {"Yes": math.log(0.01), "No": math.log(0.001)}[w]
    )
    assert GenRM(engine=doubt).score(MATH, None, "r") == pytest.approx(0.01)
    assert GenRM(engine=doubt, form="yes-no").score(MATH, None, "r") == pytest.approx(0.01 / 0.011)
    # underflow on both words: no opinion (normalised), nothing (P(Yes))
    none = ScriptedEngine(["x"], logprob=lambda w: -math.inf)
    assert GenRM(engine=none, form="yes-no").score(MATH, None, "r") == pytest.approx(0.5)
    assert GenRM(engine=none).score(MATH, None, "r") == 0.0
    with pytest.raises(ConfigError, match="GenRM form must be one of yes, yes-no, got 'p'"):
        GenRM(engine=engine, form="p")


def _softmax_at_end(model, tokenizer, text):
    """The next-token distribution after ``text``, computed by hand from the model's logits."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].tolist()
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def test_genrm_score_is_the_softmax_at_the_answer_position_of_a_tiny_model(make_tiny):
    model, tok = make_tiny(seed=3)
    tok.add_tokens(["Yes", "No"])  # one token each, as in a real vocabulary
    model.resize_token_embeddings(len(tok))
    engine = HFEngine("tiny", model=model, tokenizer=tok)
    question, response = question_for(MATH), "6*7 is 42, so \\boxed{42}"
    msgs = (Message("user", verification_prompt(question, response)),)
    probs = _softmax_at_end(model, tok, engine.render(msgs))
    yes, no = tok.convert_tokens_to_ids("Yes"), tok.convert_tokens_to_ids("No")
    assert 0 < probs[yes] < 0.5 and len(probs) == len(tok)
    assert GenRM(engine=engine).score(MATH, None, response) == pytest.approx(probs[yes], rel=1e-5)
    assert GenRM(engine=engine, form="yes-no").score(MATH, None, response) == pytest.approx(
        probs[yes] / (probs[yes] + probs[no]), rel=1e-5
    )


def test_genrm_of_a_word_of_several_tokens_is_the_product_of_their_probabilities(make_tiny):
    # the character tokenizer spells Yes as Y, e, s: P(Yes) = P(Y) P(e | Y) P(s | Ye)
    model, tok = make_tiny(seed=4)
    engine = HFEngine("tiny", model=model, tokenizer=tok)
    response = "so \\boxed{42}"
    prompt = engine.render((Message("user", verification_prompt(question_for(MATH), response)),))
    expected = 1.0
    for k, ch in enumerate("Yes"):
        expected *= _softmax_at_end(model, tok, prompt + "Yes"[:k])[tok.convert_tokens_to_ids(ch)]
    assert GenRM(engine=engine).score(MATH, None, response) == pytest.approx(expected, rel=1e-5)


class Verifier:
    """An engine for GenRM-CoT's loop: ``generate`` writes the given rationales; ``score`` says
    Yes with the probability the table gives the rationale in the conversation (No: ``1 - p``
    halved, so that the two forms differ)."""

    spec = "verifier"

    def __init__(self, table):
        self.table, self.requests, self.scored = table, [], []

    def generate(self, requests):
        self.requests += requests
        (req,) = requests
        texts = list(self.table)[: req.n]
        return [Result(tuple(Sample(t, 1, "stop") for t in texts))]

    def score(self, prompt, continuation):
        self.scored.append((prompt, continuation))
        p = self.table[prompt[1].content]
        return Scored((math.log(p if continuation == "Yes" else (1 - p) / 2),))


def test_genrm_cot_averages_p_yes_over_k_sampled_verifications():
    table = {"r1: right": 0.9, "r2: right": 0.6, "r3: wrong": 0.2, "r4: right": 0.5}
    engine = Verifier(table)
    cot = GenRMCoT(engine=engine, votes=4)
    response = "so \\boxed{42}"
    assert cot.score(MATH, None, response) == pytest.approx((0.9 + 0.6 + 0.2 + 0.5) / 4)
    (req,) = engine.requests  # k rationales in one request, sampled and seeded
    assert (req.n, req.temperature, req.seed) == (4, COT_TEMPERATURE, 0)
    assert req.messages == (Message("user", rationale_prompt(question_for(MATH), response)),)
    # each P(Yes) is read after its own rationale and the Yes/No question
    assert [p for p, word in engine.scored] == [
        cot_messages(question_for(MATH), response, r) for r in table
    ]
    assert engine.scored[0][0][2] == Message("user", VERIFY_QUESTION)
    # two votes: the first two rationales; the normalised form averages p / (p + (1 - p) / 2)
    two = GenRMCoT(engine=Verifier(table), votes=2, form="yes-no")
    norm = [p / (p + (1 - p) / 2) for p in (0.9, 0.6)]
    assert two.score(MATH, None, response) == pytest.approx(sum(norm) / 2)
    assert [r for r, _ in cot.verifications(question_for(MATH), response)] == list(table)
    with pytest.raises(ConfigError, match="votes must be >= 1"):
        GenRMCoT(engine=engine, votes=0)


def test_reward_model_names_need_an_existing_directory_of_the_right_kind(tmp_path):
    with pytest.raises(ConfigError, match="needs the trained model's directory: orm:PATH"):
        make_scorer("orm:")
    with pytest.raises(ConfigError, match="no such model directory"):
        make_scorer(f"prm:{tmp_path / 'missing'}")
    (tmp_path / "reasonloop_train.json").write_text('{"kind": "genrm"}')
    with pytest.raises(ConfigError, match="holds a 'genrm' model, not 'orm'; use genrm:"):
        make_scorer(f"orm:{tmp_path}")
    with pytest.raises(ConfigError, match="aggregate must be one of"):
        make_scorer(f"prm:{tmp_path}", aggregate="max")
    with pytest.raises(ConfigError, match="unknown scorer 'rm:x'.*orm:PATH"):
        make_scorer("rm:x")


def test_a_genrm_directory_is_scored_the_way_it_was_trained(tmp_path):
    (tmp_path / "reasonloop_train.json").write_text('{"kind": "genrm", "verification": "cot"}')
    with pytest.raises(
        ConfigError,
        match=re.escape(f"verification 'cot', not 'direct'; score it with genrm-cot:{tmp_path}"),
    ):
        make_scorer(f"genrm:{tmp_path}")
    (tmp_path / "reasonloop_train.json").write_text('{"kind": "genrm"}')
    with pytest.raises(
        ConfigError,
        match=re.escape(f"verification 'direct', not 'cot'; score it with genrm:{tmp_path}"),
    ):
        make_scorer(f"genrm-cot:{tmp_path}")
    with pytest.raises(ConfigError, match="genrm_form must be one of"):
        make_scorer(f"genrm:{tmp_path}", genrm_form="odds")
