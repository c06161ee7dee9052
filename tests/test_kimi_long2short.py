"""Kimi k1.5's long2short pieces: model merging, shortest rejection sampling, DPO pairs (reasoning.long2short)."""

import pytest
import torch

from rlllm_course.llm.model import load_policy
from rlllm_course.reasoning.long2short import average_state_dicts, dpo_pairs, shortest_correct


def two_state_dicts():
    long_sd = {"w": torch.ones(2, 3), "b": torch.full((3,), 2.0), "step": torch.tensor([7])}
    short_sd = {"w": torch.zeros(2, 3), "b": torch.full((3,), -2.0), "step": torch.tensor([7])}
    return long_sd, short_sd


def test_alpha_weighs_the_long_model():
    long_sd, short_sd = two_state_dicts()
    merged = average_state_dicts(long_sd, short_sd, alpha=0.75)
    # 0.75 * 1 + 0.25 * 0; alpha on the short model would give 0.25
    torch.testing.assert_close(merged["w"], torch.full((2, 3), 0.75), rtol=0, atol=0)
    torch.testing.assert_close(merged["b"], torch.full((3,), 1.0), rtol=0, atol=0)
    assert list(merged) == ["w", "b", "step"]  # long_sd's key order
    assert average_state_dicts(long_sd, short_sd, 0.5)["b"].tolist() == [0.0] * 3  # Kimi's plain average


def test_alpha_one_and_zero_give_each_model_back_exactly():
    g = torch.Generator().manual_seed(0)
    long_sd = {"w": torch.randn(4, 5, generator=g)}
    short_sd = {"w": torch.randn(4, 5, generator=g)}
    assert torch.equal(average_state_dicts(long_sd, short_sd, 1.0)["w"], long_sd["w"])
    assert torch.equal(average_state_dicts(long_sd, short_sd, 0.0)["w"], short_sd["w"])
    # the interpolation is linear in alpha: the midpoint of the 0.25 and 0.75 merges is the 0.5 merge
    mid = (average_state_dicts(long_sd, short_sd, 0.25)["w"] + average_state_dicts(long_sd, short_sd, 0.75)["w"]) / 2
    torch.testing.assert_close(mid, average_state_dicts(long_sd, short_sd, 0.5)["w"], rtol=0, atol=1e-6)


def test_integer_buffers_are_copied_inputs_untouched_results_detached():
    long_sd, short_sd = two_state_dicts()
    long_sd["w"] = torch.nn.Parameter(long_sd["w"])  # a dict of live parameters, not a state_dict copy
    before = {k: v.detach().clone() for k, v in {**long_sd, **{"s" + k: v for k, v in short_sd.items()}}.items()}
    merged = average_state_dicts(long_sd, short_sd, 0.3)
    assert merged["step"].dtype == torch.long and merged["step"].tolist() == [7]  # not averaged into a float
    assert merged["step"] is not long_sd["step"]  # a copy: editing the merge leaves the input alone
    merged["step"] += 1
    merged["b"] += 1
    assert not merged["w"].requires_grad and merged["w"].grad_fn is None
    for k, v in {**long_sd, **{"s" + k: v for k, v in short_sd.items()}}.items():
        assert torch.equal(v.detach(), before[k])


@pytest.mark.parametrize("change, match", [
    (lambda s: s.pop("b"), "'b' is missing from short_sd"),
    (lambda s: s.update(extra=torch.zeros(1)), "'extra' is missing from long_sd"),
    (lambda s: s.update(w=torch.zeros(3, 2)), "'w'"),
    (lambda s: s.update(b=torch.zeros(3, dtype=torch.float64)), "'b'"),
    (lambda s: s.update(step=torch.tensor([8])), "'step'"),
])
def test_merging_rejects_mismatched_state_dicts_naming_the_key(change, match):
    long_sd, short_sd = two_state_dicts()
    change(short_sd)
    with pytest.raises(ValueError, match=match):
        average_state_dicts(long_sd, short_sd, 0.5)


def test_merging_names_the_first_mismatched_key():
    long_sd, short_sd = two_state_dicts()
    short_sd["b"], short_sd["step"] = torch.zeros(4), torch.tensor([0])
    with pytest.raises(ValueError, match="'b'"):  # 'b' comes before 'step' in long_sd
        average_state_dicts(long_sd, short_sd, 0.5)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_merging_rejects_alpha_outside_zero_one(alpha):
    with pytest.raises(ValueError, match="alpha"):
        average_state_dicts(*two_state_dicts(), alpha)


def test_merged_weights_load_into_the_model_and_interpolate_its_parameters():
    model, tokenizer = load_policy("reasoning-small")
    short_model = load_policy("reasoning-small")[0]
    torch.manual_seed(0)
    with torch.no_grad():  # perturb the parameters, not the state dict: tied weights stay tied
        for p in short_model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    # clones: state_dict() shares storage with the model, which load_state_dict overwrites
    long_sd = {k: v.clone() for k, v in model.state_dict().items()}
    short_sd = short_model.state_dict()
    ids = torch.tensor([tokenizer("12+34=", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        long_logits = model(ids).logits
        model.load_state_dict(average_state_dicts(long_sd, short_sd, 0.5))  # strict: every key, right shapes
        for key, value in model.state_dict().items():
            torch.testing.assert_close(value, (long_sd[key] + short_sd[key]) / 2, rtol=0, atol=1e-6)
        merged_logits = model(ids).logits
        model.load_state_dict(average_state_dicts(long_sd, short_sd, 1.0))
        assert torch.equal(model(ids).logits, long_logits)  # alpha = 1 is the long model, bit for bit
    assert torch.isfinite(merged_logits).all() and not torch.equal(merged_logits, long_logits)


# A group of 4 samples per prompt: lengths and correctness, the picks by hand.
COMPLETIONS = ["a" * 9, "b" * 4, "c" * 6, "d" * 4,        # group 0: shortest correct = 1 (tie with 3: the first)
               "e" * 3, "f" * 2, "g" * 5, "h" * 1,        # group 1: nothing correct
               "i" * 7, "j" * 7, "k" * 7, "l" * 7]        # group 2: all lengths equal
CORRECT = [1, 1, 0, 1,
           0, 0, 0, 0,
           1, 0, 1, 1]
LENGTHS = [len(c) for c in COMPLETIONS]


def test_shortest_correct_per_group_first_of_ties_none_without_a_correct_sample():
    picks = shortest_correct(COMPLETIONS, CORRECT, LENGTHS, group_size=4)
    # indices into the 12 samples: the shortest wrong sample ("h", index 7) is never picked
    assert picks == [1, None, 8]
    assert shortest_correct(COMPLETIONS, torch.tensor(CORRECT).bool(), torch.tensor(LENGTHS), 4) == [1, None, 8]
    assert shortest_correct(COMPLETIONS, CORRECT, LENGTHS, group_size=12) == [1]
    assert shortest_correct(COMPLETIONS, CORRECT, LENGTHS, group_size=1) == [0, 1, None, 3, None, None, None,
                                                                              None, 8, None, 10, 11]
    assert shortest_correct([], [], [], group_size=8) == []


def test_shortest_correct_uses_the_given_lengths_not_the_text():
    # token lengths can disagree with character lengths: the lengths argument decides
    assert shortest_correct(["long text", "x"], [1, 1], [3, 5], group_size=2) == [0]


@pytest.mark.parametrize("bad, match", [
    (dict(completions="ab", correct=[1, 1], lengths=[1, 1], group_size=2), "list of strings"),
    (dict(completions=["a"] * 3, correct=[1] * 3, lengths=[1] * 3, group_size=2), "group_size"),
    (dict(completions=["a"] * 4, correct=[1] * 3, lengths=[1] * 4, group_size=2), "group_size"),
    (dict(completions=["a"] * 4, correct=[1] * 4, lengths=[1] * 5, group_size=2), "group_size"),
    (dict(completions=["a"] * 2, correct=[1, 1], lengths=[1, 1], group_size=0), "group_size"),
    (dict(completions=["a"] * 2, correct=[1, 2], lengths=[1, 1], group_size=2), "correct"),
    (dict(completions=["a"] * 2, correct=[1, 0], lengths=[1, -1], group_size=2), "lengths"),
])
def test_shortest_correct_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        shortest_correct(**bad)


def test_dpo_pairs_chosen_shortest_correct_rejected_wrong_or_long():
    pairs = dpo_pairs(["p0", "p1", "p2"], COMPLETIONS, CORRECT, LENGTHS, group_size=4)
    # group 0: chosen "bbbb" (4); rejected the wrong "cccccc" and the correct "aaaaaaaaa" (9 >= 1.5 * 4 = 6);
    # "dddd" is correct and as short as the chosen one: neither. Group 1 has no correct sample: no pair.
    # Group 2 (all lengths equal): nothing is longer than the chosen one, so no pair at all.
    assert pairs == [{"prompt": "p0", "chosen": "bbbb", "rejected": "a" * 9},
                     {"prompt": "p0", "chosen": "bbbb", "rejected": "cccccc"}]


def test_dpo_pairs_the_ratio_is_at_least_not_more_than():
    completions = ["short", "exactly 1.5x", "just under", "wrong short", "wrong long"]
    lengths, correct = [10, 15, 14, 3, 11], [1, 1, 1, 0, 0]
    pairs = dpo_pairs(["p"], completions, correct, lengths, group_size=5)
    # 15 >= 1.5 * 10 is rejected (a strict > would drop it), 14 is not; a wrong answer is rejected when it is
    # longer than the chosen one (Kimi: "wrong longer responses"), a shorter wrong one is not
    assert [p["rejected"] for p in pairs] == ["exactly 1.5x", "wrong long"]
    twice = dpo_pairs(["p"], completions, correct, lengths, group_size=5, long_ratio=2.0)
    assert [p["rejected"] for p in twice] == ["wrong long"]
    every_longer = dpo_pairs(["p"], completions, correct, lengths, group_size=5, long_ratio=1.0)
    assert [p["rejected"] for p in every_longer] == ["exactly 1.5x", "just under", "wrong long"]


def test_dpo_pairs_reject_each_text_once_and_never_the_chosen_text():
    completions = ["ok", "no", "no", "ok long answer", "ok long answer", "ok"]
    pairs = dpo_pairs(["p"], completions, [1, 0, 0, 1, 1, 1], [2, 3, 3, 14, 14, 2], group_size=6)
    assert [p["rejected"] for p in pairs] == ["no", "ok long answer"]
    # a chosen answer of length 0: every correct one is >= 1.5 * 0, but the chosen text itself is not rejected
    empty = dpo_pairs(["p"], ["", "", "x"], [1, 1, 1], [0, 0, 1], group_size=3)
    assert [p["rejected"] for p in empty] == ["x"]


def test_dpo_pairs_no_correct_sample_anywhere_gives_no_pair():
    assert dpo_pairs(["p0", "p1"], ["a", "b", "c", "d"], [0, 0, 0, 0], [1, 2, 3, 4], group_size=2) == []


@pytest.mark.parametrize("bad, match", [
    (dict(prompts=["p0", "p1"]), "one entry per group"),
    (dict(prompts=["p0"] * 12), "one entry per group"),
    (dict(prompts="p0p1p2"), "prompts"),
    (dict(prompts=["p0", "p1", "p2"], long_ratio=0.9), "long_ratio"),
    (dict(prompts=["p0", "p1", "p2"], group_size=5), "group_size"),
])
def test_dpo_pairs_reject_bad_input(bad, match):
    args = dict(completions=COMPLETIONS, correct=CORRECT, lengths=LENGTHS, group_size=4) | bad
    with pytest.raises(ValueError, match=match):
        dpo_pairs(**args)
