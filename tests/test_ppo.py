"""PPO: the clipped loss by hand for both advantage signs, k3 approx-KL against the exact KL,
explained variance, rollout collection, one update against a loop written out, a short
CartPole run, truncation handling, and checkpoint/resume."""

import copy
import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlllm_course import pg
from rlllm_course.agents import ActorCritic
from rlllm_course.ppo import PPOConfig, approx_kl, ppo_clip_loss, ppo_update, train_ppo, value_loss
from rlllm_course.returns import gae
from resume import interrupted_and_straight
from rlllm_course.training import collect_rollout, evaluate_agent, explained_variance, make_vector_env

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


def test_k3_gradient_flows_through_logp_only():
    # d k3 / d logp = exp(d) - 1 per sample; old_logp is a constant of the rollout
    logp = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    old_logp = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    approx_kl(logp, old_logp, reduction="none").sum().backward()
    torch.testing.assert_close(logp.grad, torch.expm1(logp.detach()), rtol=1e-12, atol=0)
    assert old_logp.grad is None


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
    (lambda: train_ppo(PPOConfig(num_minibatches=200)), "num_minibatches"),  # minibatches of 1: no std
    (lambda: train_ppo(PPOConfig(lam=1.5)), "lam"),
])
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def rollout_case(seed=0, num_envs=3, num_steps=13, max_episode_steps=10):
    """A fresh agent and a rollout of it with episodes that end mid-batch, some by the time limit."""
    torch.manual_seed(seed)
    agent = ActorCritic(4, 2)
    envs = make_vector_env("CartPole-v1", num_envs, seed, max_episode_steps=max_episode_steps)
    rollout = collect_rollout(agent, envs, torch.as_tensor(envs.reset(seed=seed)[0]), num_steps)
    return agent, rollout


def updated(agent, rollout, config, seed=0, trace=None, sgd=False):
    """A copy of `agent` after ppo_update (Adam as in train_ppo, or plain SGD), and the metrics."""
    agent = copy.deepcopy(agent)
    optimizer = (torch.optim.SGD(agent.parameters(), lr=0.05) if sgd else
                 torch.optim.Adam(agent.parameters(), lr=config.lr, eps=1e-5))
    metrics = ppo_update(agent, optimizer, rollout, config, torch.Generator().manual_seed(seed), trace=trace)
    return agent, metrics


def test_collect_rollout_records_what_the_agent_did():
    # a 5-step time limit: no episode of a fresh CartPole agent falls that early, so every
    # episode is truncated at t = 4 and 9, and only there final_values holds V(final obs)
    agent, r = rollout_case(num_steps=12, max_episode_steps=5)
    assert r.obs.shape == (12, 3, 4) and r.next_obs.shape == (3, 4)
    assert r.actions.dtype == torch.long and r.rewards.dtype == torch.float64 and r.dones.dtype == torch.bool
    assert torch.equal(r.dones, r.truncated)
    assert r.truncated.any(dim=1).nonzero().flatten().tolist() == [4, 9] and bool(r.truncated[[4, 9]].all())
    assert bool((r.final_values[[4, 9]] != 0).all()) and bool((r.final_values[~r.truncated] == 0).all())
    with torch.no_grad():  # stored log-probs and values are the collecting agent's
        _, logp, _, value = agent.get_action_and_value(r.obs.reshape(-1, 4), r.actions.reshape(-1))
    torch.testing.assert_close(r.logprobs.reshape(-1), logp)
    torch.testing.assert_close(r.values.reshape(-1), value)
    assert not torch.equal(r.obs[5], r.obs[4])  # a new episode starts in the row after a reset


def loop_written_out(agent, optimizer, r, c, generator):
    """ppo_update's contract in the plainest code: an independent check of the reference."""
    T, N = r.rewards.shape
    with torch.no_grad():
        last = agent.get_value(r.next_obs).numpy()
    adv, ret = gae(r.rewards.numpy(), r.values.numpy(), r.dones.numpy(), last, c.gamma, c.lam,
                   r.truncated.numpy(), r.final_values.numpy())
    adv, ret = (torch.tensor(x.reshape(-1), dtype=torch.float32) for x in (adv, ret))
    obs, act, old_logp, old_v = r.obs.reshape(T * N, 4), r.actions.reshape(-1), r.logprobs.reshape(-1), r.values.reshape(-1)
    logs = []
    for _ in range(c.update_epochs):
        for mb in torch.randperm(T * N, generator=generator).tensor_split(c.num_minibatches):
            dist = agent.distribution(obs[mb])
            a = adv[mb]
            a = (a - a.mean()) / (a.std() + 1e-8) if c.norm_adv else a
            pl, pm = ppo_clip_loss(dist.log_prob(act[mb]), old_logp[mb], a, c.clip_eps)
            vl, vm = value_loss(agent.get_value(obs[mb]), ret[mb], *(() if c.clip_value is None else (old_v[mb], c.clip_value)))
            optimizer.zero_grad()
            (pl - c.ent_coef * dist.entropy().mean() + c.vf_coef * vl).backward()
            torch.nn.utils.clip_grad_norm_(agent.parameters(), c.max_grad_norm)
            optimizer.step()
            logs.append({**pm, **vm, "ppo/entropy": dist.entropy().mean().item()})
        if c.target_kl is not None and logs[-1]["ppo/approx_kl"] > c.target_kl:
            break
    return {**{k: float(np.mean([m[k] for m in logs])) for k in logs[0]}, "v/explained_variance": explained_variance(old_v, ret)}


@pytest.mark.parametrize("config", [
    PPOConfig(update_epochs=3, num_minibatches=4, ent_coef=0.05),  # B = 39: minibatches 10, 10, 10, 9
    PPOConfig(update_epochs=2, num_minibatches=3, clip_value=0.2, gamma=0.99, lam=0.95),  # clipped critic
    PPOConfig(update_epochs=6, num_minibatches=2, norm_adv=False, target_kl=1e-4),  # stops early
])
def test_ppo_update_equals_the_loop_written_out(config):
    # parameters after the update agree to float32 noise; a different convention (no
    # reshuffle, Bessel-free std, entropy sign, ...) moves them by 1e-5 or more
    agent, r = rollout_case()
    got, metrics = updated(agent, r, config, seed=4)
    want = copy.deepcopy(agent)
    want_metrics = loop_written_out(want, torch.optim.Adam(want.parameters(), lr=config.lr, eps=1e-5), r, config,
                                    torch.Generator().manual_seed(4))
    for p, q in zip(got.parameters(), want.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
    assert set(metrics) == set(want_metrics)
    for key in metrics:
        assert metrics[key] == pytest.approx(want_metrics[key], rel=1e-5, abs=1e-7), key


def test_ppo_update_scores_its_only_minibatch_at_theta_old():
    # one epoch of one minibatch: scored before any step, every ratio is 1, and the
    # per-minibatch normalized advantages have mean 0, so the policy loss is 0
    agent, r = rollout_case()
    _, metrics = updated(agent, r, PPOConfig(update_epochs=1, num_minibatches=1))
    assert metrics["ppo/approx_kl"] == 0.0 and metrics["ppo/clip_frac"] == 0.0
    assert abs(metrics["ppo/pg_loss"]) < 1e-6


def test_ppo_update_uses_every_sample_once_per_epoch_in_the_generators_order():
    # B = 39 and 4 minibatches: tensor_split sizes 10, 10, 10, 9, none dropped, a new
    # permutation every epoch, drawn from the generator passed in
    agent, r = rollout_case()
    agent = copy.deepcopy(agent)
    seen, score = [], agent.get_action_and_value
    agent.get_action_and_value = lambda obs, action=None: (seen.append(obs), score(obs, action))[1]
    ppo_update(agent, torch.optim.SGD(agent.parameters(), lr=0.01), r, PPOConfig(update_epochs=2, num_minibatches=4),
               torch.Generator().manual_seed(5))
    assert [len(o) for o in seen] == [10, 10, 10, 9] * 2
    g = torch.Generator().manual_seed(5)
    orders = [torch.randperm(39, generator=g) for _ in range(2)]
    assert torch.equal(torch.cat(seen), r.obs.reshape(39, 4)[torch.cat(orders)])
    assert not torch.equal(orders[0], orders[1])


def test_ppo_update_never_differentiates_the_rollout():
    # old log-probs, old values, rewards and bootstraps are constants of the rollout
    agent, r = rollout_case()
    leaves = {name: getattr(r, name).clone().requires_grad_(True) for name in ("logprobs", "values", "final_values")}
    leaves["rewards"] = r.rewards.clone().requires_grad_(True)
    updated(agent, dataclasses.replace(r, **leaves), PPOConfig(update_epochs=2, num_minibatches=3, clip_value=0.2))
    assert all(x.grad is None for x in leaves.values())


def test_ppo_update_trace_and_early_stop():
    # target_kl = 0: the first epoch ends with KL > 0, so exactly one epoch runs; the
    # first minibatch of an update is always scored at theta_old (KL 0)
    agent, r = rollout_case()
    trace = []
    updated(agent, r, PPOConfig(update_epochs=5, num_minibatches=3, target_kl=0.0), trace=trace)
    assert [m["epoch"] for m in trace] == [0, 0, 0] and trace[0]["ppo/approx_kl"] == 0.0 and trace[-1]["ppo/approx_kl"] > 0
    trace = []
    updated(agent, r, PPOConfig(update_epochs=5, num_minibatches=3), trace=trace, sgd=True)
    assert [m["epoch"] for m in trace] == [e for e in range(5) for _ in range(3)]


def test_ppo_update_rejects_minibatches_of_one():
    agent, r = rollout_case(num_envs=2, num_steps=3)  # B = 6
    with pytest.raises(ValueError, match="num_minibatches"):
        updated(agent, r, PPOConfig(num_minibatches=4))


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
