"""REINFORCE: the loss by hand and against the closed-form gradient, the weights, the value
loss, a short training run, checkpoint/resume, and the baseline's variance reduction."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from rlllm_course.agents import ActorCritic
from rlllm_course.pg import (ReinforceConfig, leave_one_out_baseline, reinforce_loss, reinforce_weights,
                             train_reinforce, value_loss)
from rlllm_course.pg_variance import fit_critic, policy_gradient_variance
from resume import interrupted_and_straight
from rlllm_course.training import evaluate_agent

torch.set_num_threads(1)  # small networks: one thread is fastest


def test_reinforce_loss_by_hand():
    # loss = -mean(logp * (Psi - b)); mean over the T = 2 steps
    logp = torch.log(torch.tensor([0.5, 0.25], dtype=torch.float64))
    loss, metrics = reinforce_loss(logp, torch.tensor([2.0, 4.0]))
    assert loss.item() == pytest.approx(-(math.log(0.5) * 2 + math.log(0.25) * 4) / 2, rel=1e-12)
    loss, _ = reinforce_loss(logp, torch.tensor([2.0, 4.0]), baseline=1.0)
    assert loss.item() == pytest.approx(-(math.log(0.5) * 1 + math.log(0.25) * 3) / 2, rel=1e-12)
    loss, _ = reinforce_loss(logp, torch.tensor([2.0, 4.0]), baseline=1.0, reduction="sum")
    assert loss.item() == pytest.approx(-(math.log(0.5) * 1 + math.log(0.25) * 3), rel=1e-12)
    assert metrics["pg/advantage_mean"] == pytest.approx(3.0)
    assert metrics["pg/advantage_std"] == pytest.approx(1.0)  # population std of [2, 4]


def test_reinforce_gradient_matches_closed_form_for_a_softmax_policy():
    # one state, logits theta: grad log pi(a) = onehot(a) - pi, so the loss gradient is
    # -(1/T) sum_t (onehot(a_t) - pi) * (Psi_t - b_t). A stray factor or sign shows here.
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(4, dtype=torch.float64, generator=gen, requires_grad=True)
    actions = torch.randint(0, 4, (9,), generator=gen)
    weights = torch.randn(9, dtype=torch.float64, generator=gen)
    baseline = torch.randn(9, dtype=torch.float64, generator=gen)
    logp = torch.log_softmax(theta, 0)[actions]  # (T,)
    loss, _ = reinforce_loss(logp, weights, baseline)
    (grad,) = torch.autograd.grad(loss, theta)
    pi = torch.softmax(theta, 0).detach()
    closed = -((torch.eye(4, dtype=torch.float64)[actions] - pi) * (weights - baseline)[:, None]).mean(0)
    torch.testing.assert_close(grad, closed, rtol=1e-12, atol=1e-14)


def test_a_baseline_has_zero_expected_gradient():
    # E_{a~pi}[grad log pi(a) * b] = b * grad sum_a pi(a) = 0: weight every action by pi(a) * b
    theta = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    logp_all = torch.log_softmax(theta, 0)  # (K,)
    loss, _ = reinforce_loss(logp_all, torch.softmax(theta, 0).detach() * 5.0, reduction="sum")
    (grad,) = torch.autograd.grad(loss, theta)
    torch.testing.assert_close(grad, torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-14)


def test_weights_and_baseline_are_detached():
    # the policy loss must not push gradients into the critic that produced the baseline
    logp = torch.log(torch.tensor([0.5, 0.5], requires_grad=True))
    baseline = torch.tensor([1.0, 2.0], requires_grad=True)
    loss, _ = reinforce_loss(logp, torch.tensor([3.0, 3.0]), baseline)
    loss.backward()
    assert baseline.grad is None


def test_reinforce_weights_reward_to_go_and_full_return():
    # two episodes of two steps, gamma 0.5: G_t = [1.5, 1 | 1.5, 1]; full return G_0 per episode
    rewards, dones = np.ones(4), np.array([0, 1, 0, 1], dtype=bool)
    rtg, targets = reinforce_weights(rewards, dones, 0.5, reward_to_go=True)
    full, _ = reinforce_weights(rewards, dones, 0.5, reward_to_go=False)
    np.testing.assert_allclose(rtg, [1.5, 1.0, 1.5, 1.0], rtol=1e-12)
    np.testing.assert_allclose(full, [1.5, 1.5, 1.5, 1.5], rtol=1e-12)
    np.testing.assert_allclose(targets, rtg, rtol=1e-12)  # the critic always regresses on G_t
    # the first episode was truncated with V(final obs) = 2: G_1 = 1 + 0.5 * 2
    rtg, _ = reinforce_weights(rewards, dones, 0.5, True, [0, 1, 0, 0], [0.0, 2.0, 0.0, 0.0])
    np.testing.assert_allclose(rtg, [2.0, 2.0, 1.5, 1.0], rtol=1e-12)


def test_value_loss_by_hand_unclipped_and_clipped():
    # 0.5 * mean((V - R)^2) = 0.5 * (1 + 4) / 2
    loss, _ = value_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0]))
    assert loss.item() == pytest.approx(1.25, rel=1e-6)
    # clipped: V moved from 1.0 to 0.5 (> 0.2 away); V_clip = 0.8, (0.8 - 0.4)^2 = 0.16 > 0.01,
    # so the pessimistic clipped term is used and its gradient w.r.t. V is 0
    values = torch.tensor([0.5], requires_grad=True)
    loss, metrics = value_loss(values, torch.tensor([0.4]), torch.tensor([1.0]), clip_eps=0.2)
    assert loss.item() == pytest.approx(0.5 * 0.16, rel=1e-5)
    assert metrics["v/clip_frac"] == 1.0
    loss.backward()
    assert values.grad.item() == 0.0


@pytest.mark.parametrize("call, name", [
    (lambda: reinforce_loss(torch.zeros(3), torch.zeros(2)), "weights"),
    (lambda: reinforce_loss(torch.zeros(3), torch.zeros(3), torch.zeros(2)), "baseline"),
    (lambda: reinforce_loss(torch.zeros(3, 2), torch.zeros(3, 2)), "logp"),
    (lambda: reinforce_loss(torch.zeros(3), torch.zeros(3), reduction="max"), "reduction"),
    (lambda: value_loss(torch.zeros(3), torch.zeros(4)), "returns"),
    (lambda: value_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3)), "clip_eps"),
    (lambda: train_reinforce(ReinforceConfig(baseline="mean")), "baseline"),
    (lambda: train_reinforce(ReinforceConfig(gamma=2.0)), "gamma"),
])
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_reinforce_learns_cartpole():
    # random play lasts ~22 steps; after 40k steps of REINFORCE with a value baseline the
    # sampled episodes last hundreds of steps (seeds 1-6: 290-460) and greedy play more
    agent, history = train_reinforce(ReinforceConfig(total_steps=40_000, progress=False))
    assert history["step"][-1] >= 40_000
    assert np.mean(history["episode/return"][-20:]) > 200
    assert evaluate_agent(agent).mean() > 300
    assert len(history["episode/return"]) == len(history["episode/step"])


def test_same_seed_same_run():
    config = ReinforceConfig(total_steps=3_000, progress=False, seed=5)
    _, a = train_reinforce(config)
    _, b = train_reinforce(config)
    assert a["episode/return"] == b["episode/return"]


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path):
    # the run dies after batch 7; the last checkpoint is from batch 6, and resuming redoes
    # batch 7 onwards with the saved networks, optimizers, environments and generators
    config = ReinforceConfig(total_steps=4_000, baseline="value", progress=False, seed=3)
    agent, resumed, agent_full, full, resumable = interrupted_and_straight(
        train_reinforce, config, tmp_path / "reinforce.pt", crash_after=7, checkpoint_every=3)
    assert resumed["step"] == full["step"]
    assert resumed["episode/return"] == full["episode/return"]
    for key in ("pg/loss", "v/loss"):
        assert resumed[key] == full[key]
    for p, q in zip(agent.parameters(), agent_full.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="lr"):  # a different config cannot resume this run
        train_reinforce(dataclasses.replace(resumable, lr=1.0))


def test_value_baseline_reduces_gradient_variance_at_the_initial_policy():
    # same episodes for both estimators; a fitted V(s) removes much of the reward-to-go's spread
    torch.manual_seed(0)
    agent = ActorCritic(4, 2)
    fit_critic(agent, n_batches=20)
    var = policy_gradient_variance(agent, baselines=("none", "value"), n_batches=40)
    assert var["none"] / var["value"] > 1.5


def test_leave_one_out_baseline_by_hand():
    # episodes [1, 2 | 4 | 6, 6, 6]: each step gets the mean Psi of the *other* episodes' steps
    weights, dones = np.array([1.0, 2, 4, 6, 6, 6]), np.array([0, 1, 1, 0, 0, 1], dtype=bool)
    b = leave_one_out_baseline(weights, dones)
    np.testing.assert_allclose(b, [22 / 4, 22 / 4, 21 / 5, 7 / 3, 7 / 3, 7 / 3], rtol=1e-12)
    # an episode's own weights never enter its baseline (that is what keeps it action-independent)
    changed = weights.copy()
    changed[2] = -100.0
    np.testing.assert_allclose(leave_one_out_baseline(changed, dones)[2], b[2], rtol=1e-12)


def test_leave_one_out_is_unbiased_and_the_plain_batch_mean_is_not():
    # E = 2 one-step episodes of a 3-armed softmax bandit, every joint outcome enumerated exactly.
    # The batch mean contains the episode's own reward, which shrinks the expected gradient by
    # (1 - 1/E); leaving the episode out gives the true gradient.
    theta = torch.tensor([0.2, -0.4, 0.9], dtype=torch.float64, requires_grad=True)
    reward = np.array([1.0, 2.0, 5.0])
    pi = torch.softmax(theta, 0)
    (true,) = torch.autograd.grad((pi * torch.as_tensor(reward)).sum(), theta)
    dones = np.array([True, True])
    expected = {"loo": torch.zeros(3, dtype=torch.float64), "mean": torch.zeros(3, dtype=torch.float64)}
    for a1 in range(3):
        for a2 in range(3):
            weights = reward[[a1, a2]]
            prob = (pi[a1] * pi[a2]).detach()
            for name, b in (("loo", leave_one_out_baseline(weights, dones)), ("mean", float(weights.mean()))):
                logp = torch.log_softmax(theta, 0)[[a1, a2]]  # (2,)
                loss, _ = reinforce_loss(logp, weights, b, reduction="sum")
                (g,) = torch.autograd.grad(-loss / 2, theta)  # (1/E) sum over episodes
                expected[name] += prob * g
    torch.testing.assert_close(expected["loo"], true, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(expected["mean"], true / 2, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("weights, dones, name", [
    (np.ones(3), np.array([0, 0, 1], dtype=bool), "two episodes"),  # a single episode has no "others"
    (np.ones(3), np.array([1, 0, 0], dtype=bool), "dones"),  # the last episode is incomplete
    (np.ones(3), np.array([1, 1], dtype=bool), "dones"),  # shapes differ
])
def test_leave_one_out_bad_inputs(weights, dones, name):
    with pytest.raises(ValueError, match=name):
        leave_one_out_baseline(weights, dones)


def test_baselines_agree_on_the_mean_gradient_within_the_noise():
    # the constant (leave-one-out) and value baselines are unbiased, so the paired difference of
    # the averages is of the size noise alone gives; difference_noise measures that size
    torch.manual_seed(1)
    agent = ActorCritic(4, 2)
    fit_critic(agent, n_batches=5, seed=1)
    var = policy_gradient_variance(agent, baselines=("none", "constant", "value"), n_batches=12, seed=2)
    assert var["difference_noise"]["none"] == 0.0
    for name in ("constant", "value"):
        diff = np.linalg.norm(var["mean_gradient"][name] - var["mean_gradient"]["none"])
        assert 0 < diff < 4 * var["difference_noise"][name]
