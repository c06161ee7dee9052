"""Baselines for REINFORCE on the LM: moving average, leave-one-out, the sequence loss."""

import pytest
import torch

from rlllm_course.llm.baseline_study import ESTIMATORS, gradient_variance, late_reward
from rlllm_course.llm.grpo import GRPOConfig, train_grpo
from rlllm_course.llm.losses import (moving_average_advantages, policy_loss, reinforce_loss,
                                     rloo_advantages)
from rlllm_course.llm.model import load_policy
from rlllm_course.llm.tasks import addition_problems

SMALL = dict(prompts_per_step=4, group_size=4, max_new_tokens=40)


def test_moving_average_uses_the_baseline_before_updating_it():
    rewards = torch.tensor([1.0, 0.0, 2.0, 1.0])  # mean 1
    adv, new = moving_average_advantages(rewards, 0.5, decay=0.9)
    # A = r - b_{k-1} (the old baseline, independent of this batch), then b_k = 0.9 * 0.5 + 0.1 * 1
    assert torch.allclose(adv, torch.tensor([0.5, -0.5, 1.5, 0.5]), atol=0, rtol=0)
    assert new == pytest.approx(0.55, abs=1e-12)
    # decay = 0: the new baseline is this batch's mean
    assert moving_average_advantages(rewards, 3.0, decay=0.0)[1] == pytest.approx(1.0, abs=1e-12)


def test_moving_average_converges_to_a_constant_reward():
    b = 0.0
    for _ in range(200):
        _, b = moving_average_advantages(torch.full((8,), 1.5), b, decay=0.9)
    assert b == pytest.approx(1.5, abs=1e-8)  # 1.5 * (1 - 0.9^200)


def test_moving_average_checks_its_inputs():
    with pytest.raises(ValueError, match="rewards"):
        moving_average_advantages(torch.zeros(2, 3), 0.0, 0.9)
    with pytest.raises(ValueError, match="decay"):
        moving_average_advantages(torch.zeros(4), 0.0, 1.0)


def test_rloo_is_g_over_g_minus_1_times_the_centered_reward():
    torch.manual_seed(0)
    rewards = torch.rand(6 * 5, dtype=torch.float64)
    grouped = rewards.view(6, 5)
    expected = 5 / 4 * (grouped - grouped.mean(1, keepdim=True))  # (N, G)
    assert torch.allclose(rloo_advantages(rewards, 5), expected.reshape(-1), atol=1e-12, rtol=0)


def test_reinforce_loss_is_minus_advantage_times_sequence_logprob():
    logp = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, -0.5, -0.5]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    loss, metrics = reinforce_loss(logp, torch.tensor([2.0, -1.0]), mask)
    # -(2 * (-3) + (-1) * (-1.5)) / 2 = 2.25; the masked -9 never counts
    assert loss.item() == pytest.approx(2.25, abs=1e-6)
    assert metrics["reinforce/seq_logp"] == pytest.approx(-2.25, abs=1e-6)
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[-1.0, -1.0, 0.0], [0.5, 0.5, 0.5]]))
    with pytest.raises(ValueError, match="advantages"):
        reinforce_loss(logp, torch.zeros(3), mask)


def test_reinforce_gradient_equals_the_surrogate_gradient_at_ratio_one():
    # one update per batch: the clipped surrogate (dr_grpo, normalizer B * 1) has REINFORCE's gradient
    torch.manual_seed(1)
    logp = (-torch.rand(4, 6)).requires_grad_()
    mask = (torch.rand(4, 6) < 0.8).long()
    adv = torch.randn(4)
    g1, = torch.autograd.grad(reinforce_loss(logp, adv, mask)[0], logp)
    g2, = torch.autograd.grad(policy_loss(logp, logp.detach(), adv, mask, aggregation="dr_grpo",
                                          max_completion_length=1)[0], logp)
    assert torch.allclose(g1, g2, atol=1e-6)


def test_grpo_runs_with_a_moving_average_baseline_and_resumes_it(tmp_path):
    cfg = dict(advantage="moving_average", baseline_decay=0.5, **SMALL)
    _, _, straight = train_grpo(GRPOConfig(steps=3, **cfg), progress=False)
    b = 0.0
    for h in straight:  # the logged baseline follows b_k = 0.5 b_{k-1} + 0.5 * mean reward
        b = 0.5 * b + 0.5 * h["reward"]
        assert h["baseline"] == pytest.approx(b, abs=1e-6)
    ckpt = str(tmp_path / "run")
    train_grpo(GRPOConfig(steps=2, checkpoint_dir=ckpt, **cfg), progress=False)
    _, _, resumed = train_grpo(GRPOConfig(steps=3, checkpoint_dir=ckpt, **cfg), progress=False)
    assert resumed[2]["baseline"] == pytest.approx(straight[2]["baseline"], abs=1e-9)
    assert resumed[2]["reward"] == straight[2]["reward"]


def test_gradient_variance_reports_every_estimator():
    model, tokenizer = load_policy("tiny")
    problems = addition_problems(12, seed=0)
    res = gradient_variance(model, tokenizer, problems, n_batches=2, prompts_per_batch=2, group_size=4,
                            n_pilot=1, max_new_tokens=24, progress=False)
    for name in ESTIMATORS:
        assert res[name]["variance"] >= 0 and res[name]["projection"].shape == (2,)
    assert res["rewards"].shape == (2, 8)
    with pytest.raises(ValueError, match="problems"):
        gradient_variance(model, tokenizer, problems[:3], n_batches=2, prompts_per_batch=2, progress=False)


def test_late_reward_pools_the_last_steps_samples():
    history = [{"rewards": [5.0, 5.0]}, {"rewards": [0.0, 1.0]}, {"rewards": [2.0, 1.0]}]
    mean, se, n = late_reward(history, last=2)
    # only the last two steps count: samples 0, 1, 2, 1 -> mean 1, Bessel variance 2/3, s.e. sqrt(2/3 / 4)
    assert (mean, n) == (1.0, 4)
    assert se == pytest.approx((2 / 3 / 4) ** 0.5, abs=1e-12)
    # asking for more steps than the run has pools all of them
    assert late_reward(history, last=10)[2] == 6
    with pytest.raises(ValueError, match="history"):
        late_reward([], last=5)


def test_budget_curves_put_runs_on_the_completions_axis():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rlllm_course.plots.rloo import budget_curves
    small = [{"step": k, "rewards": [0.0, 1.0, 1.0, 2.0], **({"eval/pass@1": 0.5} if k == 1 else {})}
             for k in range(2)]
    big = [{"step": k, "rewards": [1.0] * 8} for k in range(2)]
    fig, axes = plt.subplots(1, 2)
    budget_curves(axes, {"a": (small, 4, {"color": "C0"}), "b": (big, 8, {"color": "C1"})}, start=0.1, n_eval=10)
    # x is (step + 1) * completions per step, so 2 steps of 4 end where 1 step of 8 does
    assert list(axes[0].lines[0].get_xdata()) == [4, 8] and list(axes[0].lines[1].get_xdata()) == [8, 16]
    # the pass@1 curve starts at 0 completions with the initial model's value
    assert list(axes[1].lines[0].get_xdata()) == [0, 8] and list(axes[1].lines[0].get_ydata()) == [0.1, 0.5]
    plt.close(fig)
