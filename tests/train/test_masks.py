import torch

from reasonloop.train.masks import prompt_and_completion_mask, solution_mask, thought_mask

END = 99  # the id of <|end_of_thought|>


def test_thought_mask_is_exact_on_a_hand_built_example():
    # <bot> t t t <eot> \n <bos> s s <eos>
    completion = [97, 10, 11, 12, END, 5, 98, 20, 21, 2]
    assert thought_mask(completion, END) == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    assert solution_mask(completion, END) == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    full = torch.tensor(prompt_and_completion_mask(3, thought_mask(completion, END)))
    assert torch.equal(full, torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]))


def test_unfinished_thought_is_all_thought_and_only_the_first_marker_counts():
    assert thought_mask([1, 2, 3], END) == [1, 1, 1]
    assert thought_mask([END, 1, END], END) == [1, 0, 0]
    assert thought_mask([], END) == []
