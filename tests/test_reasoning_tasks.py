import random

import pytest

from rlllm_course.llm.rewards import consistency_reward, format_reward
from rlllm_course.llm.tasks import check_addition, is_heldout
from rlllm_course.reasoning.pretrain import (ReasoningPretrainConfig, build_reasoning_tokenizer,
                                             sample_example, sample_trace)
from rlllm_course.reasoning.tasks import (LEVELS, columns, levelled_eval_set, quick_sum, reasoning_problems,
                                          write_cot)


def test_columns_carry_right():
    assert columns(4785, 3561) == [(5, 1, 0), (8, 6, 0), (7, 5, 1), (4, 3, 1)]


def test_correct_cot_gives_the_sum():
    rng = random.Random(0)
    for _ in range(300):
        d = rng.choice(LEVELS)
        a, b = rng.randint(10 ** (d - 1), 10 ** d - 1), rng.randint(10 ** (d - 1), 10 ** d - 1)
        cot, answer = write_cot(a, b)
        assert int(answer) == a + b


def test_slip_forgets_the_carry():
    cot, answer = write_cot(4785, 3561, slips={2})
    assert cot == "5+1=6,8+6=14,7+5=12,4+3+1=8" and answer == "8246"


def test_quick_sum_forgets_every_carry():
    assert quick_sum(4785, 3561) == "7246"
    assert quick_sum(95, 17) == "102"
    assert quick_sum(12, 34) == "46"  # no carry: the quick sum is right


def test_slip_without_a_carry_changes_nothing():
    assert write_cot(4785, 3561, slips={0, 1}) == write_cot(4785, 3561)


def test_slip_in_the_last_column_drops_the_leading_one():
    # 95 + 17: the tens receive a carry; forgetting it gives 9+1=10 -> "102"
    assert write_cot(95, 17, slips={1}) == ("5+7=12,9+1=10", "102")


def test_chinese_columns_and_mixing():
    cot, answer = write_cot(4785, 3561, chinese={2, 3})
    assert cot == "5+1=6,8+6=14,七+五+一=一三,四+三+一=八" and answer == "8346"
    assert consistency_reward([f"<think>{cot}</think><answer>{answer}</answer>"]).item() == 0.5


def test_problems_levels_split_and_reproducible():
    train = reasoning_problems(400, seed=3)
    assert train == reasoning_problems(400, seed=3)
    assert {p["level"] for p in train} == set(LEVELS)
    for p in train:
        a, b = p["question"].split("+")
        assert len(a) == len(b) == p["level"]
        assert not is_heldout(p["question"]) and check_addition(p["answer"], p)
    held = levelled_eval_set(20, seed=5)
    assert [p["level"] for p in held] == [d for d in LEVELS for _ in range(20)]
    assert all(is_heldout(p["question"]) for p in held)
    assert len({p["question"] for p in held}) == len(held)


def test_bad_levels_and_split():
    with pytest.raises(ValueError, match="levels"):
        reasoning_problems(3, 0, levels=(12,))
    with pytest.raises(ValueError, match="split"):
        reasoning_problems(3, 0, split="test")


def test_mixture_shares():
    config, rng = ReasoningPretrainConfig(), random.Random(0)
    problems = reasoning_problems(8000, seed=0)
    examples = [sample_example(p, rng, config) for p in problems]
    sheets = [r for q, r in examples if q.startswith("<bos>")]
    qa = [(q, r) for q, r in examples if not q.startswith("<bos>")]
    assert abs(len(sheets) / len(examples) - config.worksheet_share) < 0.03
    think = [r for _, r in qa if r.startswith("<think>")]
    assert abs(len(think) / len(qa) - sum(config.format_mix[2:])) < 0.03
    rechecks = [r for r in think if "wait" in r]
    assert 0.025 < len(rechecks) / len(qa) < 0.05  # re-checking is rare
    assert format_reward(think).min().item() == 1.0
    assert all(r.startswith("<think>") and " wait " in r for r in sheets)  # worked re-checks
    scores = consistency_reward(sheets)
    # Chinese or switching columns (30%) after an Arabic guess: the CoT mixes scripts
    assert 0.25 < (scores < 1).float().mean().item() < 0.35
    tok = build_reasoning_tokenizer()
    assert all(tok.decode(tok(t)["input_ids"]) == t for t in rechecks[:100] + sheets[:100])  # no <unk>


def test_direct_answers_are_right_only_for_short_sums():
    config, rng = ReasoningPretrainConfig(format_mix=(1.0, 0.0, 0.0, 0.0)), random.Random(0)
    for p in reasoning_problems(200, seed=0):
        a, b = map(int, p["question"].split("+"))
        want = p["answer"] if p["digits"] < config.guess_digits else quick_sum(a, b)
        assert sample_trace(p, rng, config) == f"<answer>{want}</answer>"
