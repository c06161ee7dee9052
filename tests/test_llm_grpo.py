"""Tests of the GRPO loop on the tiny model: logging, estimators, checkpoint and resume."""

import pytest
import torch

from rlllm_course.llm.grpo import GRPOConfig, train_grpo

SMALL = dict(prompts_per_step=4, group_size=4, max_new_tokens=40)


def test_grpo_logs_every_quantity():
    _, _, history = train_grpo(GRPOConfig(steps=2, **SMALL), progress=False)
    assert [h["step"] for h in history] == [0, 1]
    for key in ("reward", "accuracy", "format", "length", "policy/kl", "policy/clip_frac", "seconds"):
        assert key in history[-1], key
    # reward = accuracy + format_weight * format, averaged over the batch
    assert history[0]["reward"] == pytest.approx(history[0]["accuracy"] + history[0]["format"])
    assert history[0]["policy/kl"] == 0.0  # the first step samples from the reference itself


@pytest.mark.parametrize("advantage", ["rloo", "dr_grpo"])
def test_grpo_other_estimators_run(advantage):
    _, _, history = train_grpo(GRPOConfig(steps=1, advantage=advantage, aggregation="dr_grpo",
                                          beta=0.04, updates_per_batch=2, **SMALL), progress=False)
    assert torch.isfinite(torch.tensor(history[0]["policy/loss"]))


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    # 3 steps in one go == 2 steps, stop, then resume to 3 (same problems, same samples)
    straight, _, h_straight = train_grpo(GRPOConfig(steps=3, **SMALL), progress=False)
    ckpt = str(tmp_path / "run")
    train_grpo(GRPOConfig(steps=2, checkpoint_dir=ckpt, checkpoint_every=1, **SMALL), progress=False)
    resumed, _, h_resumed = train_grpo(GRPOConfig(steps=3, checkpoint_dir=ckpt, **SMALL), progress=False)
    assert [h["step"] for h in h_resumed] == [0, 1, 2]
    assert h_resumed[2]["reward"] == h_straight[2]["reward"]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_grpo_runs_on_countdown():
    # the loop is task-agnostic: rewards come from the task's rule
    _, _, history = train_grpo(GRPOConfig(steps=1, task="countdown", **SMALL), progress=False)
    assert 0.0 <= history[0]["accuracy"] <= 1.0


def test_grpo_config_checks_its_choices():
    with pytest.raises(ValueError, match="advantage"):
        train_grpo(GRPOConfig(steps=1, advantage="ppo"), progress=False)
    with pytest.raises(ValueError, match="task"):
        train_grpo(GRPOConfig(steps=1, task="chess"), progress=False)
