"""REINFORCE with continuous actions: a Gaussian policy (lecture §2.2, the fourth drawback).

A categorical policy lists a probability per action; a continuous action needs
a parametrised density instead. The usual one is a diagonal Gaussian,

    pi_theta(a | s) = N(a; mu_theta(s), diag(sigma^2)),   sigma = exp(log_std),

with the mean from an MLP and a learned, state-independent log-std. Its score
has a closed form: for a = mu + sigma * eps, eps ~ N(0, 1),

    d log pi / d mu      = (a - mu) / sigma^2 = eps / sigma,
    d log pi / d log_std = ((a - mu) / sigma)^2 - 1 = eps^2 - 1,

so the part of the gradient that moves the mean has a spread of order 1/sigma:
the sharper the policy, the noisier its REINFORCE gradient, while the gradient
it estimates stays finite. ``gaussian_gradient_variance`` measures that.

Read top to bottom: the density and its score, the policy, playing episodes
with it, the trainer, the variance measurement.
"""

import copy
import dataclasses
import math
from collections import defaultdict

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .agents import mlp
from .checks import check_positive, check_unit_interval
from .pg import leave_one_out_baseline, reinforce_loss, reinforce_weights
from .training import make_envs, play_episodes

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(actions, mean, log_std):
    """log N(a; mu, diag(sigma^2)), summed over the action dimensions.

        log pi(a | s) = sum_i [ -0.5 ((a_i - mu_i) / sigma_i)^2 - log sigma_i - 0.5 log(2 pi) ]

    actions, mean: (B, D) tensors; log_std: (D,) or (B, D), log sigma.
    Returns (B,), differentiable in mean and log_std (equal to
    torch.distributions.Normal(mean, exp(log_std)).log_prob(actions).sum(-1)).
    """
    if actions.shape != mean.shape or actions.ndim != 2:
        raise ValueError(f"actions and mean must both have shape (B, D), got {tuple(actions.shape)} "
                         f"and {tuple(mean.shape)}")
    z = (actions - mean) * torch.exp(-log_std)  # (B, D)
    return (-0.5 * z ** 2 - log_std - 0.5 * LOG_2PI).sum(-1)  # (B,)


def gaussian_score(actions, mean, log_std):
    """The closed-form gradient of ``gaussian_log_prob`` for each sample.

    Returns (d log pi / d mean, d log pi / d log_std), both (B, D):
    (a - mu) / sigma^2 and ((a - mu) / sigma)^2 - 1 (per sample, before any sum
    over the batch; a shared log_std's gradient is the sum over B of the second).
    """
    inv_var = torch.exp(-2 * log_std)
    diff = actions - mean  # (B, D)
    return diff * inv_var, diff ** 2 * inv_var - 1  # (B, D), (B, D)


class GaussianPolicy(nn.Module):
    """pi(a | s) = N(mu(s), diag(exp(log_std)^2)): an MLP mean and a learned log-std.

    obs_dim, act_dim: sizes of the observation and the action; hidden: MLP widths;
    log_std: the initial log sigma, the same for every action dimension.
    The mean head starts near 0 (gain 0.01), so the first actions are ~ N(0, sigma^2).
    Actions are not squashed: an environment that clips them (Pendulum: [-2, 2])
    clips after sampling, and log pi is that of the unclipped sample.
    """

    def __init__(self, obs_dim, act_dim, hidden=(64, 64), log_std=0.0):
        super().__init__()
        self.mean = mlp((obs_dim, *hidden, act_dim), output_std=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std)))

    def log_prob(self, obs, actions):
        """log pi(a | s): obs (B, obs_dim), actions (B, D) -> (B,)."""
        return gaussian_log_prob(actions, self.mean(obs), self.log_std.expand(len(obs), -1))

    @torch.no_grad()
    def act(self, obs, generator=None):
        """Sampled actions for a numpy batch of observations (N, obs_dim) -> numpy (N, D).

        generator: a torch.Generator for the noise (reproducible runs), else torch's global one.
        """
        mean = self.mean(torch.as_tensor(obs, dtype=torch.float32))  # (N, D)
        noise = torch.randn(mean.shape, generator=generator)
        return (mean + self.log_std.exp() * noise).numpy()


def _surrogate(policy, batch, gamma, baseline):
    """REINFORCE loss of one batch (reward-to-go, optional leave-one-out baseline) and its metrics."""
    weights, _ = reinforce_weights(batch["rewards"], batch["dones"], gamma, reward_to_go=True)
    b = leave_one_out_baseline(weights, batch["dones"]) if baseline == "constant" else None
    logp = policy.log_prob(torch.as_tensor(batch["obs"]), torch.as_tensor(batch["actions"]))  # (T,)
    return reinforce_loss(logp, weights, b)


@dataclasses.dataclass
class GaussianReinforceConfig:
    """Hyperparameters of ``train_gaussian_reinforce``; small enough for seconds on a CPU."""
    env_id: str = "Pendulum-v1"
    seed: int = 0
    total_steps: int = 40_000       # environment steps; the last batch may overshoot
    batch_episodes: int = 8         # complete episodes per policy-gradient step
    gamma: float = 0.99
    baseline: str = "constant"      # "none" or "constant" (the other episodes' mean Psi, leave-one-out)
    lr: float = 3e-3                # Adam, mean network and log-std
    init_log_std: float = 0.0       # sigma = 1 at the start
    hidden: tuple = (64, 64)
    progress: bool = True           # tqdm bar


def train_gaussian_reinforce(config=None):
    """REINFORCE with a ``GaussianPolicy`` on a Box-action env; returns (policy, history).

    Each update plays ``batch_episodes`` complete episodes, weights each step by its
    reward-to-go (a time limit counts as the episode's end: no critic to bootstrap),
    subtracts the baseline and takes one Adam step on ``reinforce_loss``. The
    environments, the weights and the action noise all follow ``config.seed``.
    history: per update "step" (env steps so far), "std" (mean sigma after the
    update), "pg/loss"; per episode "episode/return", "episode/step".
    """
    config = config or GaussianReinforceConfig()
    if config.baseline not in ("none", "constant"):
        raise ValueError(f"config.baseline must be 'none' or 'constant', got {config.baseline!r}")
    check_unit_interval("config.gamma", config.gamma)
    for name in ("total_steps", "batch_episodes", "lr"):
        check_positive(f"config.{name}", getattr(config, name))
    if config.baseline == "constant" and config.batch_episodes < 2:
        raise ValueError("config.batch_episodes must be >= 2 for the leave-one-out baseline")

    torch.manual_seed(config.seed)  # the networks' initial weights
    generator = torch.Generator().manual_seed(config.seed)  # the action noise
    envs = make_envs(config.env_id, config.batch_episodes, config.seed)
    if not isinstance(envs[0].action_space, gym.spaces.Box):
        raise ValueError(f"config.env_id must have continuous (Box) actions, {config.env_id} has "
                         f"{envs[0].action_space}")
    policy = GaussianPolicy(envs[0].observation_space.shape[0], envs[0].action_space.shape[0],
                            config.hidden, config.init_log_std)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
    history, step = defaultdict(list), 0
    bar = tqdm(total=config.total_steps, disable=not config.progress, desc="Gaussian REINFORCE")
    while step < config.total_steps:
        batch = play_episodes(lambda obs: policy.act(obs, generator), envs)
        loss, metrics = _surrogate(policy, batch, config.gamma, config.baseline)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ends = step + np.cumsum(batch["episode_lengths"])
        step += len(batch["rewards"])
        history["episode/return"] += batch["episode_returns"].tolist()
        history["episode/step"] += ends.tolist()
        history["step"].append(step)
        history["std"].append(policy.log_std.exp().mean().item())
        history["pg/loss"].append(metrics["pg/loss"])
        bar.update(len(batch["rewards"]))
        bar.set_postfix(ret=f"{np.mean(history['episode/return'][-20:]):.0f}")
    bar.close()
    return policy, dict(history)


def gaussian_gradient_variance(policy, stds, env_id="Pendulum-v1", n_batches=20, batch_episodes=8,
                               gamma=0.99, seed=0):
    """Variance of the REINFORCE gradient w.r.t. the mean network, at fixed sigmas.

    For each sigma in `stds`, a copy of `policy` with log_std = log(sigma) (the
    mean network unchanged) plays `n_batches` batches of `batch_episodes`
    episodes; on each batch the gradient of ``reinforce_loss`` (reward-to-go,
    leave-one-out baseline) w.r.t. the mean network's parameters is taken.
    Every sigma starts from the same environment seeds and noise seed.
    Returns {"std": (K,), "variance": (K,) total variance sum_p Var_batches[g_p]
    (Bessel-corrected over batches), "mean_norm": (K,) |average gradient|,
    "noise_norm": (K,) sqrt(variance / n_batches), the size that noise alone
    gives the average}.
    """
    stds = np.asarray(stds, dtype=np.float64)
    if stds.ndim != 1 or not np.all(stds > 0):
        raise ValueError(f"stds must be a 1-D array of positive numbers, got {stds.tolist()}")
    check_positive("n_batches", n_batches)
    if n_batches < 2 or batch_episodes < 2:
        raise ValueError(f"n_batches and batch_episodes must be >= 2, got {n_batches} and {batch_episodes}")
    variance, mean_norm = [], []
    for sigma in stds:
        probe = copy.deepcopy(policy)
        with torch.no_grad():
            probe.log_std.fill_(math.log(sigma))
        generator = torch.Generator().manual_seed(seed)
        envs = make_envs(env_id, batch_episodes, seed)
        params = list(probe.mean.parameters())
        grads = []
        for _ in range(n_batches):
            batch = play_episodes(lambda obs: probe.act(obs, generator), envs)
            loss, _ = _surrogate(probe, batch, gamma, "constant")
            grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]).numpy())
        grads = np.stack(grads)  # (n_batches, P)
        variance.append(float(grads.var(axis=0, ddof=1).sum()))
        mean_norm.append(float(np.linalg.norm(grads.mean(axis=0))))
    variance = np.array(variance)
    return {"std": stds, "variance": variance, "mean_norm": np.array(mean_norm),
            "noise_norm": np.sqrt(variance / n_batches)}
