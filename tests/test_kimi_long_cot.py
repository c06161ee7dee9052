"""The long-CoT data of module 11 (reasoning.long_cot): checks repeated, always right."""

import collections

import pytest

from rlllm_course.llm.rewards import accuracy_reward, format_reward
from rlllm_course.reasoning.long_cot import CHECK_WEIGHTS, CHECKS, long_cot_data, long_cot_response
from rlllm_course.reasoning.tasks import REFLECTION_WORD, reasoning_problem, write_cot


def test_a_long_response_writes_the_same_right_columns_checks_times():
    problem = reasoning_problem(4785, 3561)
    cot, answer = write_cot(4785, 3561)
    for k in (1, 2, 3):
        text = long_cot_response(problem, k, "7246")
        assert text == (f"<think>7246{f' {REFLECTION_WORD} {cot}' * k}</think><answer>{answer}</answer>")
        assert text.count(REFLECTION_WORD) == k and text.count(cot) == k
        assert format_reward([text]).item() == 1.0 and accuracy_reward([text], [problem]).item() == 1.0
    with pytest.raises(ValueError, match="checks"):
        long_cot_response(problem, 0, "7246")


def test_the_long_cot_set_mixes_lengths_for_the_same_kind_of_problem():
    problems, prompts, responses, checks = long_cot_data(3000, seed=5)
    again = long_cot_data(3000, seed=5)  # reproducible
    assert responses == again[2] and checks == again[3]
    assert accuracy_reward(responses, problems).mean().item() == 1.0  # every check is right
    counts = collections.Counter(checks)
    for k, w in zip(CHECKS, CHECK_WEIGHTS):  # the draw follows the weights (3000 draws: within 3 points)
        assert abs(counts[k] / len(checks) - w) < 0.03, (k, counts[k])
    assert all(r.count(REFLECTION_WORD) == k for r, k in zip(responses, checks))
    assert all(p.endswith("A:") for p in prompts)


def test_the_shipped_long_model_checks_once_to_three_times_and_is_right():
    import torch
    from rlllm_course.llm.model import load_policy
    from rlllm_course.llm.rollout import generate
    from rlllm_course.llm.tasks import make_prompt
    from rlllm_course.reasoning.long_cot import MAX_NEW_TOKENS
    from rlllm_course.reasoning.tasks import levelled_eval_set
    model, tokenizer = load_policy("kimi-long")
    problems = levelled_eval_set(4, seed=77)  # 16 held-out problems, 4 per level
    greedy = generate(model, tokenizer, [make_prompt(p) for p in problems], max_new_tokens=MAX_NEW_TOKENS,
                      greedy=True)
    assert accuracy_reward(greedy.completions, problems).mean().item() >= 0.9
    torch.manual_seed(0)
    sampled = generate(model, tokenizer, [make_prompt(p) for p in problems[:8]], group_size=8,
                       max_new_tokens=MAX_NEW_TOKENS)
    checks = collections.Counter(c.count(REFLECTION_WORD) for c in sampled.completions)
    # 64 samples, checks drawn 20/40/40 in training: several counts appear, none far past three
    assert len(checks) >= 2 and set(checks) <= {0, 1, 2, 3, 4}, dict(checks)
