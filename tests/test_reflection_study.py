import random

import pytest

from rlllm_course.reasoning.pretrain import ReasoningPretrainConfig, sample_trace
from rlllm_course.reasoning.reflection_study import check_is_clean, cot_form, parse_step, recheck_profile
from rlllm_course.reasoning.tasks import reasoning_problem, reasoning_problems

P = reasoning_problem(4785, 3561)  # columns: 5+1, 8+6, 7+5+1, 4+3+1


def test_parse_step_both_notations():
    assert parse_step("7+5+1=13") == (7, 5, 1, 13)
    assert parse_step("七+五=一二") == (7, 5, 0, 12)
    assert parse_step("wait") is None and parse_step("7+5=") is None


@pytest.mark.parametrize("text, form", [
    ("<answer>8346</answer>", "none"),
    ("8346", "none"),
    ("<think>8346</think><answer>8346</answer>", "guess"),
    ("<think>7246 wait 5+1=6,8+6=14,7+5+1=13,4+3+1=8</think><answer>8346</answer>", "recheck"),
    ("<think>7246 wait 五+一=六,8+6=14</think><answer>8346</answer>", "recheck"),
    ("<think>5+1=6,8+6=14</think><answer>8346</answer>", "other"),  # columns without a guess
    ("<think>7246 wait 5+1=6 wait 5+1=6</think>", "other"),  # a second wait
    ("<think></think><answer>8346</answer>", "other"),  # an empty thought
])
def test_cot_form(text, form):
    assert cot_form(text) == form


def test_clean_check():
    assert check_is_clean("<think>7246 wait 5+1=6,8+6=14,7+5+1=13,4+3+1=8</think>", P)
    assert not check_is_clean("<think>7246 wait 5+1=6,8+6=14,7+5=12,4+3+1=8</think>", P)  # a slip
    assert not check_is_clean("<think>7246 wait 5+1=6,8+6=14,7+5+1=13</think>", P)  # a column short


def test_profile_recovers_the_mixture():
    config, rng = ReasoningPretrainConfig(), random.Random(1)
    problems = reasoning_problems(6000, seed=1, levels=(5,))
    traces = [sample_trace(p, rng, config) for p in problems]
    prof = recheck_profile(traces, problems)
    for form, share in zip(("none", "guess", "recheck"), (0.65, 0.31, 0.04)):
        assert prof["forms"][form] == pytest.approx(share, abs=0.02)
    assert prof["forms"]["other"] == 0.0
    # nearly every 5-digit sum has a carry, so the quick-sum guess is wrong about half the time
    assert prof["wrong_guess"] == pytest.approx(config.wrong_guess_prob, abs=0.1)
    # at 5 digits the Q&A's direct answers are quick sums: right only for the rare sum without a carry
    assert prof["accuracy_other"] < 0.1 < 0.5 < prof["accuracy_recheck"]
    assert prof["caught"] == pytest.approx(prof["clean_check"], abs=0.1)
    with pytest.raises(ValueError, match="one entry per completion"):
        recheck_profile(traces, problems[:-1])
