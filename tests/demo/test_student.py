from reasonloop.demo.student import make_student, make_task_tokenizer
from reasonloop.format import render

TEXTS = [
    "Reach 55 using the numbers 2 6 7 21",
    render("Goal: 55 from 2 6 7 21.\nTry 2*21=42, left 6 7 42.\n  Dead end. Back.", "Answer: x"),
]


def test_word_tokenizer_round_trips_and_numbers_are_single_tokens():
    tok = make_task_tokenizer(TEXTS)
    text = render("Goal: 55 from 2 6 7 21.\n  Try 2*21=42, left 6 7 42.", "Answer: 130")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert tok.unk_token_id not in ids
    pieces = [tok.decode([i]) for i in ids]
    assert pieces[:9] == ["<|begin_of_thought|>", "\n", "Goal", ":", " ", "55", " from", " ", "2"]
    # "42" after "=" and "42" in the list of what is left are the same token; 130 was never seen
    assert pieces.count("42") == 2 and "130" in pieces
    assert len(ids) < len(text) / 2


def test_unknown_words_become_unk_and_the_chat_template_renders():
    tok = make_task_tokenizer(TEXTS)
    assert tok("Reach 1 banana")["input_ids"][-1] == tok.unk_token_id
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": TEXTS[0]}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == f"<|im_start|>user\n{TEXTS[0]}<|im_end|>\n<|im_start|>assistant\n"
    assert tok.unk_token_id not in tok(prompt)["input_ids"]


def test_character_mode_and_the_student_model():
    tok = make_task_tokenizer(TEXTS, max_number=0, words=False)
    ids = tok("Try 21", add_special_tokens=False)["input_ids"]
    assert [tok.decode([i]) for i in ids] == ["T", "r", "y", " ", "2", "1"]
    model = make_student(tok, hidden_size=32, layers=2, heads=4, seed=3)
    assert model.config.vocab_size == len(tok)
    assert model.config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")


def test_number_tokens_start_from_their_value_features_and_output_embeddings_are_separate():
    import math

    import torch

    from reasonloop.demo.student import number_embedding

    tok = make_task_tokenizer(TEXTS, max_number=20)
    model = make_student(tok, hidden_size=32, layers=1, heads=2, number_features=0.5, seed=0)
    emb = model.get_input_embeddings().weight
    seven = emb[tok.convert_tokens_to_ids("7")]
    assert number_embedding(7, 32)[:4] == [
        math.cos(2 * math.pi * 7 / 2),
        math.sin(2 * math.pi * 7 / 2),
        math.cos(2 * math.pi * 7 / 3),
        math.sin(2 * math.pi * 7 / 3),
    ]
    assert len(number_embedding(7, 32)) == 24 and len(number_embedding(7, 9)) == 8
    assert torch.allclose(seven[:24], 0.5 * torch.tensor(number_embedding(7, 32)))
    # a word token keeps its random start; the output embedding is its own matrix
    word = emb[tok.convert_tokens_to_ids(" from")]
    assert word[:24].abs().max() < 0.2
    assert model.get_output_embeddings().weight.data_ptr() != emb.data_ptr()
    assert not model.config.tie_word_embeddings
