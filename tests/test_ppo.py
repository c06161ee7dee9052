"""PPO: the clipped loss by hand for both advantage signs, k3 approx-KL against the exact KL,
explained variance, a short CartPole run, truncation handling, and checkpoint/resume."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlllm_course import pg
from rlllm_course.ppo import PPOConfig, approx_kl, ppo_clip_loss, train_ppo, value_loss
from resume import interrupted_and_straight
from rlllm_course.training import evaluate_agent, explained_variance

torch.set_num_threads(1)  # small networks: one thread is fastest

# (advantage, ratio, expected loss, expected d loss / d logp) with clip_eps = 0.2; the
# gradient w.r.t. logp of -ratio * A is -ratio * A, and 0 where the clipped term is taken
CASES = [
    (+1.0, 1.1, -1.1, -1.1),  # A > 0, inside the range: plain ratio * A
    (+1.0, 1.5, -1.2, 0.0),   # A > 0, above 1 + eps: clipped, no incentive to go further
    (+1.0, 0.5, -0.5, -0.5),  # A > 0, below 1 - eps: the min keeps the unclipped (worse) term
    (-1.0, 0.9, 0.9, 0.9),    # A < 0, inside the range
    (-1.0, 0.5, 0.8, 0.0),    # A < 0, below 1 - eps: clipped, no incentive to go further
    (-1.0, 1.5, 1.5, 1.5),    # A < 0, above 1 + eps: unclipped, the mistake is fully penalized
]


@pytest.mark.parametrize("advantage, ratio, loss_expected, grad_expected", CASES)
def test_clip_loss_by_hand(advantage, ratio, loss_expected, grad_expected):
    logp = torch.tensor([math.log(ratio) - 0.7], dtype=torch.float64, requires_grad=True)
    old_logp = torch.tensor([-0.7], dtype=torch.float64)
    loss, _ = ppo_clip_loss(logp, old_logp, torch.tensor([advantage], dtype=torch.float64), clip_eps=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(loss_expected, rel=1e-12)
    assert logp.grad.item() == pytest.approx(grad_expected, abs=1e-12)


def test_clip_loss_metrics_on_the_six_cases():
    # mean over samples; clip fraction counts |ratio - 1| > eps: 4 of the 6 cases
    advantages, ratios, losses, _ = (torch.tensor(column, dtype=torch.float64) for column in zip(*CASES))
    old_logp = torch.zeros(6, dtype=torch.float64)
    loss, metrics = ppo_clip_loss(torch.log(ratios), old_logp, advantages, clip_eps=0.2)
    assert loss.item() == pytest.approx(losses.mean().item(), rel=1e-12)
    assert metrics["ppo/clip_frac"] == pytest.approx(4 / 6)
    expected_kl = torch.mean(ratios - 1 - torch.log(ratios)).item()
    assert metrics["ppo/approx_kl"] == pytest.approx(expected_kl, rel=1e-12)


def test_ratio_one_gives_the_vanilla_policy_gradient():
    # at the start of each update logp == old_logp: the loss is -mean(A) and its gradient
    # is the REINFORCE gradient -(1/B) A
    logp = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    advantages = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    loss, metrics = ppo_clip_loss(logp, logp.detach(), advantages, 0.2)
    loss.backward()
    torch.testing.assert_close(logp.grad, -advantages / 3, rtol=1e-12, atol=0)
    assert metrics["ppo/clip_frac"] == 0.0 and metrics["ppo/approx_kl"] == 0.0


def test_k3_by_hand_and_nonnegative():
    # d = log 2: k3 = e^d - d - 1 = 1 - log 2
    assert approx_kl(torch.tensor([math.log(2.0)]), torch.tensor([0.0])).item() == pytest.approx(1 - math.log(2))
    d = torch.linspace(-8, 8, 1001, dtype=torch.float64)
    assert torch.all(approx_kl(d, torch.zeros_like(d), reduction="none") >= 0)


def categorical_pair():
    old = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    new = torch.tensor([0.2, 0.2, 0.2, 0.4], dtype=torch.float64)
    kl_old_new = torch.sum(old * torch.log(old / new)).item()  # KL(pi_old || pi_theta) ~ 0.50
    kl_new_old = torch.sum(new * torch.log(new / old)).item()  # the other direction ~ 0.64
    return old, new, kl_old_new, kl_new_old


def test_k3_expectation_under_the_old_policy_is_exactly_kl_old_new():
    # enumerate the 4 actions, each weighted by pi_old: E_old[k3] = KL(pi_old || pi_theta)
    old, new, kl_old_new, kl_new_old = categorical_pair()
    per_action = approx_kl(torch.log(new), torch.log(old), reduction="none")
    assert torch.sum(old * per_action).item() == pytest.approx(kl_old_new, rel=1e-12)
    assert abs(kl_old_new - kl_new_old) > 0.1  # the directions really differ here


def test_k3_sampled_estimate_is_close_to_the_exact_kl():
    # 400k samples from pi_old; standard error ~0.002, the wrong direction is 0.14 away
    old, new, kl_old_new, kl_new_old = categorical_pair()
    actions = torch.multinomial(old, 400_000, replacement=True, generator=torch.Generator().manual_seed(0))
    estimate = approx_kl(torch.log(new)[actions], torch.log(old)[actions]).item()
    assert estimate == pytest.approx(kl_old_new, abs=0.01)
    assert abs(estimate - kl_new_old) > 0.1


def test_value_loss_is_the_shared_one():
    # one regression for both trainers (REINFORCE's baseline and PPO's critic)
    assert value_loss is pg.value_loss


def test_explained_variance_by_hand():
    returns = np.array([1.0, 2.0, 3.0, 4.0])  # population variance 1.25
    assert explained_variance(returns, returns) == 1.0
    assert explained_variance(np.full(4, 2.5), returns) == pytest.approx(0.0, abs=1e-12)
    assert explained_variance(returns + 1.0, returns) == pytest.approx(1.0)  # an offset is not penalized
    assert explained_variance(np.array([2.0, 1.0, 4.0, 3.0]), returns) == pytest.approx(1 - 1.0 / 1.25)
    assert math.isnan(explained_variance(returns, np.ones(4)))


@pytest.mark.parametrize("call, name", [
    (lambda: ppo_clip_loss(torch.zeros(3), torch.zeros(2), torch.zeros(3), 0.2), "old_logp"),
    (lambda: ppo_clip_loss(torch.zeros(3), torch.zeros(3), torch.zeros(4), 0.2), "advantages"),
    (lambda: ppo_clip_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3), 0.0), "clip_eps"),
    (lambda: ppo_clip_loss(np.zeros(3), torch.zeros(3), torch.zeros(3), 0.2), "logp"),
    (lambda: approx_kl(torch.zeros(3), torch.zeros(2)), "old_logp"),
    (lambda: train_ppo(PPOConfig(num_minibatches=5)), "num_minibatches"),
    (lambda: train_ppo(PPOConfig(lam=1.5)), "lam"),
])
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_ppo_solves_cartpole_quickly():
    # random play lasts ~22 steps; within 25k steps the default PPO solves CartPole by the
    # benchmark's definition (A): a greedy 10-episode evaluation with mean >= 475 (seeds 1-6
    # all reach 500), and the sampled training episodes are long too
    agent, history = train_ppo(PPOConfig(total_steps=25_000, progress=False))
    assert evaluate_agent(agent).mean() >= 475
    assert np.mean(history["episode/return"][-20:]) > 300
    for key in ("ppo/approx_kl", "ppo/clip_frac", "ppo/entropy", "v/explained_variance"):
        assert len(history[key]) == len(history["step"])  # logged on every update
    assert history["lr"][0] > history["lr"][-1] > 0  # annealed


def test_time_limit_truncations_are_handled():
    # a 20-step time limit: every episode of a decent policy is truncated; the loop must
    # bootstrap them from info["final_obs"] (exercised here) and keep episode lengths right
    gym.register("CartPoleShort-v1", entry_point="gymnasium.envs.classic_control:CartPoleEnv",
                 max_episode_steps=20)
    _, history = train_ppo(PPOConfig(env_id="CartPoleShort-v1", total_steps=4_096, progress=False))
    assert max(history["episode/length"]) == 20
    assert np.mean(history["episode/return"][-30:]) > 15


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path):
    # the run dies after update 5; the last checkpoint is from update 4, and resuming redoes
    # update 5 onwards with the saved networks, optimizer, environments and generators
    config = PPOConfig(total_steps=256 * 8, update_epochs=4, progress=False, seed=2)
    agent, resumed, agent_full, full, resumable = interrupted_and_straight(
        train_ppo, config, tmp_path / "ppo.pt", crash_after=5, checkpoint_every=2)
    for key in ("step", "episode/return", "episode/step", "ppo/pg_loss", "ppo/approx_kl", "v/loss"):
        assert resumed[key] == full[key], key
    for p, q in zip(agent.parameters(), agent_full.parameters()):
        assert torch.equal(p, q)
    # finished runs resume to themselves: nothing more to train, same result
    _, again = train_ppo(resumable)
    assert again["step"] == full["step"]
