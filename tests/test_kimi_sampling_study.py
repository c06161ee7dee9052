"""The sampling study's readers (reasoning.kimi_sampling): steps to a level, drawn levels, replayed weights."""

import pytest
import torch

from rlllm_course.llm.grpo import train_grpo
from rlllm_course.reasoning.kimi_sampling import (STRATEGIES, level_shares, pool, sampling_config, steps_to, trim,
                                                  weights_after)

KEY = "eval/pass@1/level_5"


def test_steps_to_counts_steps_from_one_and_reads_only_evaluations():
    history = [{"step": 0}, {"step": 1, KEY: 0.2}, {"step": 2}, {"step": 3, KEY: 0.6}, {"step": 4, KEY: 0.9}]
    assert steps_to(history, 0.6) == 4  # reached after the 4th step (step index 3), not at index 3
    assert steps_to(history, 0.1) == 2
    assert steps_to(history, 0.95) is None


def test_every_strategy_is_r1_zero_with_its_own_sampling():
    for strategy in STRATEGIES:
        config = sampling_config(strategy, seed=2)
        assert config.sampling == strategy and config.seed == 2 and config.model == "reasoning"
    assert sampling_config("curriculum").curriculum_warmup > 0
    with pytest.raises(ValueError, match="strategy"):
        sampling_config("sequential")


def test_the_study_replays_a_run_from_its_trimmed_history():
    config = sampling_config("prioritized", seed=0, model="reasoning-small", steps=3, prompts_per_step=4,
                             group_size=3, max_new_tokens=20, pool_size=10, eval_every=0)
    _, _, history = train_grpo(config, progress=False)
    trimmed = trim(history)
    assert "completions" not in trimmed[0] and trimmed[0]["problems"] == history[0]["problems"]
    shares = level_shares(trimmed, config)
    problems = pool(config)
    for step, log in enumerate(trimmed):
        drawn = [problems[i]["level"] for i in log["problems"]]
        assert sum(shares[d][step] for d in shares) == pytest.approx(1.0)
        assert shares[5][step] == pytest.approx(drawn.count(5) / 4)
    # the replayed weights after two steps drew step 2's problems: same generator, same weights
    from rlllm_course.reasoning.sampling import ProblemSampler
    sampler = ProblemSampler(problems, "prioritized", seed=0)
    weights = weights_after(trimmed, config, 2)
    sampler.tracker.attempts.zero_()
    for log in trimmed[:2]:
        sampler.update(torch.tensor(log["problems"]).repeat_interleave(3), torch.tensor(log["correct"]))
    assert torch.allclose(weights, sampler.tracker.weights())
    assert sampler.draw(2, 4).tolist() == trimmed[2]["problems"]


def test_the_shipped_runs_follow_their_strategies():
    from rlllm_course.reasoning.kimi_sampling import CURRICULUM_WARMUP, SEEDS, STEPS, load_sampling_runs
    runs = load_sampling_runs()
    assert set(runs) == set(STRATEGIES)
    for strategy, histories in runs.items():
        assert len(histories) == len(SEEDS)
        for seed, history in zip(SEEDS, histories):
            config = sampling_config(strategy, seed)
            assert [log["step"] for log in history] == list(range(STEPS))
            shares = level_shares(history, config)
            late = [shares[5][t] for t in range(CURRICULUM_WARMUP, STEPS)]
            if strategy == "curriculum":  # the hard level only after the warm-up
                assert all(x == 1.0 for x in late)
            else:
                assert sum(late) / len(late) < 0.8
            assert steps_to(history, 0.6) is not None  # every run learns the hard level
