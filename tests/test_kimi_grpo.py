"""Kimi k1.5's pieces in the GRPO loop: the length reward after a warm-up, problems drawn by a sampler."""

import pytest
import torch

from rlllm_course.llm.grpo import GRPOConfig, train_grpo
from rlllm_course.llm.rewards import length_penalty
from rlllm_course.reasoning.sampling import ProblemSampler
from rlllm_course.reasoning.tasks import reasoning_problems

SMALL = dict(model="reasoning-small", task="reasoning", prompts_per_step=3, group_size=4, max_new_tokens=24,
             log_kl=False)


def test_the_length_reward_is_added_after_its_warm_up():
    weight = 0.5
    _, _, history = train_grpo(GRPOConfig(steps=2, length_weight=weight, length_warmup=1, **SMALL), progress=False)
    first, second = history
    assert "length_reward" not in first  # the warm-up step has no length reward
    assert first["rewards"] == pytest.approx([a + f for a, f in zip(first["correct"], _formats(first))])
    # after it: r = accuracy + format + weight * lambda, lambda from the group's lengths (eos included)
    lam = length_penalty(second["lengths"], second["correct"], SMALL["group_size"])
    expected = [a + f + weight * x for a, f, x in zip(second["correct"], _formats(second), lam.tolist())]
    assert second["rewards"] == pytest.approx(expected, abs=1e-6)
    assert second["length_reward"] == pytest.approx(lam.mean().item(), abs=1e-6)


def _formats(log):
    from rlllm_course.llm.rewards import format_reward
    return format_reward(log["completions"]).tolist()


@pytest.mark.parametrize("strategy", ["uniform", "curriculum", "prioritized"])
def test_a_sampling_strategy_draws_from_the_pool_and_resumes(strategy, tmp_path):
    cfg = dict(sampling=strategy, pool_size=12, curriculum_warmup=1, **SMALL)
    _, _, straight = train_grpo(GRPOConfig(steps=2, **cfg), progress=False)
    pool = reasoning_problems(12, seed=0, split="train")
    for log in straight:
        assert len(log["problems"]) == SMALL["prompts_per_step"]
        assert all(0 <= i < 12 for i in log["problems"])
    if strategy == "curriculum":  # after the warm-up step, the top level only
        assert all(pool[i]["level"] == 5 for log in straight[1:] for i in log["problems"])
    ckpt = str(tmp_path / "run")
    train_grpo(GRPOConfig(steps=1, checkpoint_dir=ckpt, checkpoint_every=1, **cfg), progress=False)
    _, _, resumed = train_grpo(GRPOConfig(steps=2, checkpoint_dir=ckpt, **cfg), progress=False)
    # same problems (the prioritized weights came back with the checkpoint) and same samples
    assert resumed[1]["problems"] == straight[1]["problems"]
    assert resumed[1]["rewards"] == straight[1]["rewards"]
    # the success counts carried over: after the resumed step they hold both steps' samples
    state = torch.load(f"{ckpt}/checkpoint.pt", weights_only=False)["sampler"]
    per_step = SMALL["prompts_per_step"] * SMALL["group_size"]
    assert state["attempts"].sum() == 2 * per_step
    assert state["successes"].sum() == sum(sum(log["correct"]) for log in straight)


def test_the_prioritized_sampler_grades_every_sample_of_a_group():
    pool = reasoning_problems(6, seed=0, split="train")
    sampler = ProblemSampler(pool, "prioritized", seed=3)
    index = torch.tensor([2, 2, 5])  # a problem drawn twice in a step counts both groups
    sampler.update(index.repeat_interleave(2), torch.tensor([1, 1, 1, 0, 0, 0]))
    assert sampler.tracker.attempts.tolist() == [0, 0, 4, 0, 0, 2]
    assert sampler.tracker.successes.tolist() == [0, 0, 3, 0, 0, 0]
    w = sampler.tracker.weights()
    assert w[2] == pytest.approx(0.25 / 5.25) and w[5] == pytest.approx(1 / 5.25)
    # the draws of a step depend on (seed, step) only: a fresh sampler with the same counts agrees
    again = ProblemSampler(pool, "prioritized", seed=3)
    again.load_state_dict(sampler.state_dict())
    assert torch.equal(again.draw(7, 20), sampler.draw(7, 20))
    assert not torch.equal(sampler.draw(7, 20), sampler.draw(8, 20))


def test_the_curriculum_sampler_follows_its_schedule():
    pool = reasoning_problems(40, seed=1, split="train")
    sampler = ProblemSampler(pool, "curriculum", seed=0, warmup_steps=2, hard_levels=(4, 5))
    warm = {pool[i]["level"] for i in sampler.draw(0, 200).tolist()}
    hard = {pool[i]["level"] for i in sampler.draw(2, 200).tolist()}
    assert warm == {2, 3, 4, 5} and hard == {4, 5}


@pytest.mark.parametrize("bad, match", [
    (dict(pool=[], strategy="uniform"), "pool"),
    (dict(pool=[{"question": "1+2"}], strategy="curriculum"), "level"),
    (dict(pool=[{"level": 2}], strategy="greedy"), "strategy"),
])
def test_the_sampler_rejects_bad_arguments(bad, match):
    with pytest.raises(ValueError, match=match):
        ProblemSampler(**bad)


def test_grpo_rejects_an_unknown_sampling():
    with pytest.raises(ValueError, match="sampling"):
        train_grpo(GRPOConfig(steps=1, sampling="random", **SMALL), progress=False)
