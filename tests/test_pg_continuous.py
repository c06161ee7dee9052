"""REINFORCE with a Gaussian policy: the density, its score, the trainer, the variance measurement."""

import math

import numpy as np
import pytest
import torch

from rlllm_course.pg_continuous import (GaussianPolicy, GaussianReinforceConfig, gaussian_gradient_variance,
                                        gaussian_log_prob, gaussian_score, train_gaussian_reinforce)
from rlllm_course.training import make_envs, play_episodes

torch.set_num_threads(1)  # small networks: one thread is fastest


@pytest.mark.parametrize("per_sample_std", [False, True])
def test_log_prob_equals_torch_normal(per_sample_std):
    # the density is a product over action dimensions: the sum of torch's per-dimension log-probs
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    log_std = torch.randn(7, 3, generator=gen, dtype=torch.float64) if per_sample_std else \
        torch.randn(3, generator=gen, dtype=torch.float64)
    actions = torch.randn(7, 3, generator=gen, dtype=torch.float64) * 2
    ours = gaussian_log_prob(actions, mean, log_std)
    theirs = torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)
    assert ours.shape == (7,)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_closed_form_score_equals_autograd():
    # d log pi / d mu = (a - mu) / sigma^2 and d log pi / d log sigma = ((a - mu) / sigma)^2 - 1, per sample
    gen = torch.Generator().manual_seed(1)
    mean = torch.randn(5, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    log_std = (torch.randn(5, 2, generator=gen, dtype=torch.float64) * 0.5).requires_grad_(True)
    actions = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    d_mean, d_log_std = torch.autograd.grad(gaussian_log_prob(actions, mean, log_std).sum(), (mean, log_std))
    c_mean, c_log_std = gaussian_score(actions, mean.detach(), log_std.detach())
    torch.testing.assert_close(d_mean, c_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(d_log_std, c_log_std, rtol=1e-12, atol=1e-12)


def test_score_function_gradient_equals_the_exact_gradient():
    # E_{a ~ N(mu, sigma^2)}[a^3] = mu^3 + 3 mu sigma^2 in closed form. The expectation of the
    # score-function estimator grad log pi(a) * a^3 is taken exactly by Gauss-Hermite quadrature
    # (exact for polynomials of this degree), so it must equal autograd of the closed form.
    nodes, w = np.polynomial.hermite_e.hermegauss(10)  # probabilists': weight exp(-x^2 / 2)
    nodes, w = torch.as_tensor(nodes), torch.as_tensor(w / w.sum())
    mu = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    log_std = torch.tensor([math.log(1.3)], dtype=torch.float64, requires_grad=True)
    actions = (mu + log_std.exp() * nodes).detach()[:, None]  # (K, 1): samples are constants
    logp = gaussian_log_prob(actions, mu.expand(len(nodes), 1), log_std)  # (K,)
    surrogate = (w * logp * actions[:, 0] ** 3).sum()
    estimated = torch.autograd.grad(surrogate, (mu, log_std))
    sigma = log_std.exp()
    exact = torch.autograd.grad((mu ** 3 + 3 * mu * sigma ** 2).sum(), (mu, log_std))
    for e, x in zip(estimated, exact):
        torch.testing.assert_close(e, x, rtol=1e-10, atol=1e-12)


def test_policy_samples_follow_its_density_and_its_generator():
    torch.manual_seed(0)
    policy = GaussianPolicy(3, 2, log_std=math.log(0.5))
    obs = np.zeros((20_000, 3), dtype=np.float32)
    a = policy.act(obs, torch.Generator().manual_seed(4))
    b = policy.act(obs, torch.Generator().manual_seed(4))
    np.testing.assert_array_equal(a, b)  # the same generator seed, the same actions
    mean = policy.mean(torch.as_tensor(obs[:1])).detach().numpy()[0]
    assert a.shape == (20_000, 2)
    np.testing.assert_allclose(a.mean(0), mean, atol=0.02)  # 4 standard errors of 0.5 / sqrt(20000)
    np.testing.assert_allclose(a.std(0), [0.5, 0.5], rtol=0.03)


def test_episodes_on_pendulum_are_laid_end_to_end():
    # Pendulum never terminates: every episode is cut by the 200-step time limit
    envs = make_envs("Pendulum-v1", 2, seed=0)
    policy = GaussianPolicy(3, 1)
    batch = play_episodes(lambda obs: policy.act(obs, torch.Generator().manual_seed(0)), envs)
    assert batch["obs"].shape == (400, 3) and batch["actions"].shape == (400, 1)
    np.testing.assert_array_equal(batch["episode_lengths"], [200, 200])
    assert np.flatnonzero(batch["dones"]).tolist() == [199, 399]
    np.testing.assert_array_equal(batch["truncated"], batch["dones"])
    np.testing.assert_allclose(batch["episode_returns"], [batch["rewards"][:200].sum(), batch["rewards"][200:].sum()])
    assert np.all(batch["rewards"] <= 0)  # Pendulum's reward is minus a cost


def test_trainer_is_reproducible_from_its_seed():
    config = GaussianReinforceConfig(total_steps=1_600, batch_episodes=4, progress=False, seed=3)
    p1, h1 = train_gaussian_reinforce(config)
    p2, h2 = train_gaussian_reinforce(config)
    assert h1["episode/return"] == h2["episode/return"] and h1["std"] == h2["std"]
    for a, b in zip(p1.parameters(), p2.parameters()):
        assert torch.equal(a, b)
    _, h3 = train_gaussian_reinforce(GaussianReinforceConfig(total_steps=1_600, batch_episodes=4,
                                                             progress=False, seed=4))
    assert h3["episode/return"] != h1["episode/return"]  # another seed, another run
    assert h1["step"] == [800, 1600] and len(h1["episode/return"]) == 8


def test_trainer_updates_the_policy_and_its_std():
    config = GaussianReinforceConfig(total_steps=800, batch_episodes=4, progress=False, seed=0)
    policy, history = train_gaussian_reinforce(config)
    torch.manual_seed(0)
    fresh = GaussianPolicy(3, 1)
    assert not torch.equal(policy.log_std, fresh.log_std)  # one Adam step moves log sigma
    assert history["std"][0] != 1.0


def test_mean_gradient_variance_grows_as_sigma_shrinks():
    # the mean's score is eps / sigma: ten times smaller sigma, ~100 times the variance
    # (less at sigma = 1, where Pendulum's clipping at +-2 also changes the returns)
    torch.manual_seed(0)
    result = gaussian_gradient_variance(GaussianPolicy(3, 1), [0.1, 1.0], n_batches=3, batch_episodes=2, seed=0)
    assert result["variance"].shape == (2,)
    assert result["variance"][0] > 10 * result["variance"][1]
    np.testing.assert_allclose(result["noise_norm"], np.sqrt(result["variance"] / 3))


@pytest.mark.parametrize("call, name", [
    (lambda: gaussian_log_prob(torch.zeros(3, 2), torch.zeros(3, 1), torch.zeros(2)), "actions"),
    (lambda: train_gaussian_reinforce(GaussianReinforceConfig(baseline="value")), "baseline"),
    (lambda: train_gaussian_reinforce(GaussianReinforceConfig(batch_episodes=1)), "batch_episodes"),
    (lambda: train_gaussian_reinforce(GaussianReinforceConfig(gamma=1.5)), "gamma"),
    (lambda: train_gaussian_reinforce(GaussianReinforceConfig(env_id="CartPole-v1")), "env_id"),  # discrete
    (lambda: gaussian_gradient_variance(GaussianPolicy(3, 1), [0.0, 1.0]), "stds"),
    (lambda: gaussian_gradient_variance(GaussianPolicy(3, 1), [1.0], n_batches=1), "n_batches"),
])
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()

