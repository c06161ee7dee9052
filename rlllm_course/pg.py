"""REINFORCE: the policy gradient from complete episodes (§2.1-2.2).

    grad J(theta) = E[ sum_t grad log pi(a_t | s_t) * (Psi_t - b(s_t)) ]

Psi_t is the whole episode's return G_0 (the policy gradient theorem as first
written) or the reward-to-go G_t (actions cannot change rewards already
received, so dropping them keeps the gradient unbiased and lowers its
variance). Any baseline b(s_t) that does not depend on a_t keeps it unbiased
too; a learned V(s_t) usually lowers the variance most. The "constant" baseline is
the mean Psi of the batch's *other* episodes (``leave_one_out_baseline``): a
batch mean that includes the step's own episode would depend on its actions.
``pg_variance.policy_gradient_variance`` measures the reduction.

Read top to bottom: the losses, the weights Psi_t, the config, the loop.
"""

import dataclasses
from collections import defaultdict

import numpy as np
import torch

from .agents import ActorCritic
from .checks import check_positive, check_same_shape, check_unit_interval
from .returns import gae
from .training import (Progress, explained_variance, load_checkpoint, make_envs, play_episodes, rng_state,
                       seed_everything, set_rng_state)

BASELINES = ("none", "constant", "value")


def reinforce_loss(logp, weights, baseline=None, reduction="mean"):
    """The REINFORCE surrogate: minimizing it ascends the policy gradient.

        loss = -(1/T) * sum_t log pi(a_t | s_t) * (Psi_t - b_t)      (reduction="mean")

    logp: (T,) tensor, log pi(a_t | s_t) of the actions taken, with grad.
    weights: (T,) Psi_t: the episode return or the reward-to-go of each step.
    baseline: None (b = 0), a number, or a (T,) tensor b_t = V(s_t).
    reduction: "mean" averages over all T steps of the batch (whatever episode
        they belong to); "sum" adds them up -- divide by the number of
        episodes yourself for the textbook (1/N) sum_episodes sum_t estimator.
    Sign: the minus makes gradient *descent* on the loss ascend J.
    Weights and baseline are detached: the policy loss never trains the critic.
    Returns (loss, metrics): a scalar tensor, and floats "pg/loss",
    "pg/advantage_mean", "pg/advantage_std" of Psi_t - b_t (population std).
    """
    if not isinstance(logp, torch.Tensor) or logp.ndim != 1:
        raise ValueError(f"logp must be a 1-D tensor of shape (T,), got {getattr(logp, 'shape', type(logp))}")
    check_same_shape("weights", weights, "logp", logp)
    if baseline is not None and np.ndim(baseline) != 0:
        check_same_shape("baseline", baseline, "logp", logp)
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    advantages = torch.as_tensor(weights, dtype=logp.dtype).detach()
    if baseline is not None:
        advantages = advantages - torch.as_tensor(baseline, dtype=logp.dtype).detach()
    per_step = -logp * advantages  # (T,)
    loss = per_step.mean() if reduction == "mean" else per_step.sum()
    metrics = {"pg/loss": loss.item(), "pg/advantage_mean": advantages.mean().item(),
               "pg/advantage_std": advantages.std(correction=0).item()}
    return loss, metrics


def value_loss(values, returns, old_values=None, clip_eps=None):
    """Regression of the critic on its targets: 0.5 * mean((V(s_t) - R_t)^2).

    values: (B,) tensor V(s_t) with grad; returns: (B,) targets R_t.
    The factor 0.5 makes the gradient V - R. Optional PPO-style clipping
    (clip_eps with old_values, the critic's values at rollout time): with
    V_clip = old_V + clamp(V - old_V, -clip_eps, clip_eps) the loss is
    0.5 * mean(max((V - R)^2, (V_clip - R)^2)), a pessimistic bound that keeps
    V near old_V. Without clip_eps the loss is the plain (unclipped) MSE.
    Returns (loss, metrics): "v/loss", and "v/clip_frac" (fraction of steps with
    |V - old_V| > clip_eps) when clipped.
    """
    if not isinstance(values, torch.Tensor) or values.ndim != 1:
        raise ValueError(f"values must be a 1-D tensor of shape (B,), got {getattr(values, 'shape', type(values))}")
    check_same_shape("returns", returns, "values", values)
    returns = torch.as_tensor(returns, dtype=values.dtype).detach()
    if (old_values is None) != (clip_eps is None):
        raise ValueError("old_values and clip_eps must be given together (clipped value loss)")
    metrics = {}
    if clip_eps is None:
        loss = 0.5 * ((values - returns) ** 2).mean()
    else:
        check_same_shape("old_values", old_values, "values", values)
        check_positive("clip_eps", clip_eps)
        old_values = torch.as_tensor(old_values, dtype=values.dtype).detach()
        clipped = old_values + (values - old_values).clamp(-clip_eps, clip_eps)  # (B,)
        loss = 0.5 * torch.max((values - returns) ** 2, (clipped - returns) ** 2).mean()
        metrics["v/clip_frac"] = ((values - old_values).abs() > clip_eps).float().mean().item()
    metrics["v/loss"] = loss.item()
    return loss, metrics


def leave_one_out_baseline(weights, dones):
    """A constant baseline that leaves out the step's own episode.

        b_t = mean of Psi_t' over the steps t' of the *other* episodes of the batch

    weights: (T,) Psi_t; dones: (T,) bool, True on each episode's last step
    (dones[T-1] True), episodes laid end to end. Returns (T,) float64, the same
    number on every step of an episode. Why leave the episode out: the plain
    batch mean contains the episode's own Psi, which depends on its actions, so
    the baseline term no longer averages to zero (a bias of order 1/E for E
    episodes). The other episodes are independent of this one's actions, so
    this b keeps the gradient unbiased. Needs at least two episodes.
    """
    weights = np.asarray(weights, dtype=np.float64)
    dones = np.asarray(dones, dtype=bool)
    check_same_shape("dones", dones, "weights", weights)
    if weights.ndim != 1 or len(weights) == 0 or not dones[-1]:
        raise ValueError("weights and dones must be (T,) with T > 0 and dones[-1] True (complete episodes)")
    lengths = np.diff(np.flatnonzero(np.concatenate([[True], dones])))  # (E,) steps per episode
    if len(lengths) < 2:
        raise ValueError("dones must mark at least two episodes for a leave-one-out baseline")
    sums = np.add.reduceat(weights, np.cumsum(lengths) - lengths)  # (E,) sum of Psi per episode
    others = (sums.sum() - sums) / (len(weights) - lengths)  # (E,) mean Psi of the other episodes
    return np.repeat(others, lengths)  # (T,)


def reinforce_weights(rewards, dones, gamma, reward_to_go=True, truncated=None, final_values=None):
    """Psi_t for every step of a batch of complete episodes laid end to end.

    rewards, dones: (T,) as returned by ``play_episodes`` (dones marks each
    episode's last step). reward_to_go=True: Psi_t = G_t = sum_k gamma^k r_{t+k}
    within the episode; False: Psi_t = G_0 of the step's episode, the same for
    all its steps. truncated, final_values: optional (T,), as in ``returns.gae``:
    a time-limited episode then bootstraps G with gamma * V(final observation).
    Returns (weights, reward_to_go_returns), both (T,) float64; the second is
    the critic's regression target whatever the choice of weights.
    """
    # GAE with lam = 1 and V = 0 is the discounted reward-to-go, bootstrapped at truncations
    _, returns = gae(rewards, np.zeros(len(rewards)), dones, 0.0, gamma, 1.0, truncated, final_values)
    if reward_to_go:
        return returns, returns
    lengths = np.diff(np.flatnonzero(np.concatenate([[True], dones])))  # steps per episode
    starts = np.cumsum(lengths) - lengths
    return np.repeat(returns[starts], lengths), returns  # (T,): G_0 broadcast over each episode


@dataclasses.dataclass
class ReinforceConfig:
    """Hyperparameters of ``train_reinforce``; the defaults solve CartPole-v1 on a CPU."""
    env_id: str = "CartPole-v1"
    seed: int = 1
    total_steps: int = 300_000      # environment steps; the last batch may overshoot
    batch_episodes: int = 8         # complete episodes per policy-gradient step
    gamma: float = 0.99
    reward_to_go: bool = True       # Psi_t = G_t (True) or the whole return G_0 (False)
    baseline: str = "value"         # "none", "constant" (other episodes' mean Psi) or "value" (learned V)
    bootstrap_truncated: bool = True  # with baseline="value": time-limited episodes end in gamma * V
    lr: float = 3e-3                # Adam, policy
    value_lr: float = 1e-3          # Adam, critic (only with baseline="value")
    value_iters: int = 20           # critic steps per batch, on the whole batch
    hidden: tuple = (64, 64)
    checkpoint: str | None = None   # path: save every checkpoint_every batches, resume if it exists
    checkpoint_every: int = 20
    progress: bool = True           # tqdm bar


def update_critic(agent, optimizer, obs, returns, iters):
    """`iters` full-batch gradient steps of ``value_loss`` on (obs (T, obs_dim), returns (T,))."""
    for _ in range(iters):
        loss, metrics = value_loss(agent.get_value(obs), returns)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return metrics


def batch_advantages(agent, batch, gamma, baseline, reward_to_go, bootstrap_truncated):
    """Log-probs with grad, Psi_t, the baseline b_t and the critic targets for one batch."""
    obs = torch.as_tensor(batch["obs"])  # (T, obs_dim)
    truncated = final_values = None
    with torch.no_grad():
        values = agent.get_value(obs).numpy() if baseline == "value" else None  # (T,)
        if baseline == "value" and bootstrap_truncated:
            truncated, final_values = batch["truncated"], np.zeros(len(obs))
            final_values[batch["dones"]] = agent.get_value(torch.as_tensor(batch["final_obs"])).numpy()  # (E,)
    weights, returns = reinforce_weights(batch["rewards"], batch["dones"], gamma, reward_to_go,
                                         truncated, final_values)
    b = values if baseline == "value" else None
    if baseline == "constant":
        b = leave_one_out_baseline(weights, batch["dones"])
    logp = agent.distribution(obs).log_prob(torch.as_tensor(batch["actions"]))  # (T,)
    return obs, logp, weights, b, returns


def train_reinforce(config=None, callback=None):
    """Train an ``ActorCritic`` on ``config.env_id`` with REINFORCE; returns (agent, history).

    Each step plays ``batch_episodes`` complete episodes with the current
    policy, takes one Adam step on ``reinforce_loss`` and, with the value
    baseline, ``value_iters`` steps of the critic on the reward-to-go.
    callback(agent, history) -> bool runs after every batch (its time is not
    counted in history["time"]); returning True stops training.
    history: per batch "step" (env steps so far), "time" (training seconds),
    and the loss metrics; per episode "episode/return", "episode/length",
    "episode/step" (env steps when it ended).
    With ``config.checkpoint`` set, an existing checkpoint is resumed and the
    state is saved every ``checkpoint_every`` batches and at the end.
    """
    config = config or ReinforceConfig()
    if config.baseline not in BASELINES:
        raise ValueError(f"config.baseline must be one of {BASELINES}, got {config.baseline!r}")
    check_unit_interval("config.gamma", config.gamma)
    for name in ("total_steps", "batch_episodes", "lr", "value_lr", "checkpoint_every"):
        check_positive(f"config.{name}", getattr(config, name))
    if config.baseline == "constant" and config.batch_episodes < 2:
        raise ValueError("config.batch_episodes must be >= 2 for the leave-one-out constant baseline")

    seed_everything(config.seed)
    envs = make_envs(config.env_id, config.batch_episodes, config.seed)
    agent = ActorCritic(envs[0].observation_space.shape[0], envs[0].action_space.n, config.hidden)
    policy_opt = torch.optim.Adam(agent.actor.parameters(), lr=config.lr)
    value_opt = torch.optim.Adam(agent.critic.parameters(), lr=config.value_lr)
    history, step, batches, elapsed = defaultdict(list), 0, 0, 0.0
    state = load_checkpoint(config)
    if state is not None:  # continue the saved run exactly where it stopped
        agent.load_state_dict(state["agent"])
        policy_opt.load_state_dict(state["policy_opt"])
        value_opt.load_state_dict(state["value_opt"])
        envs, step, batches, elapsed = state["envs"], state["step"], state["batches"], state["elapsed"]
        history.update(state["history"])
        set_rng_state(state["rng"])

    progress = Progress(config, config.total_steps, step, elapsed, desc="REINFORCE")
    while step < config.total_steps:
        batch = play_episodes(agent.act, envs)
        obs, logp, weights, b, returns = batch_advantages(agent, batch, config.gamma, config.baseline,
                                                           config.reward_to_go, config.bootstrap_truncated)
        loss, metrics = reinforce_loss(logp, weights, b)
        policy_opt.zero_grad()
        loss.backward()
        policy_opt.step()
        if config.baseline == "value":
            metrics["v/explained_variance"] = explained_variance(b, returns)
            metrics.update(update_critic(agent, value_opt, obs, torch.as_tensor(returns, dtype=torch.float32),
                                         config.value_iters))

        batches += 1
        ends = step + np.cumsum(batch["episode_lengths"])  # episodes in the batch end in order
        step += len(batch["rewards"])
        history["episode/return"] += batch["episode_returns"].tolist()
        history["episode/length"] += batch["episode_lengths"].tolist()
        history["episode/step"] += ends.tolist()
        history["step"].append(step)
        history["time"].append(progress.clock())
        for key, value in metrics.items():
            history[key].append(value)
        state = lambda: {
            "config": dataclasses.asdict(config), "agent": agent.state_dict(), "policy_opt": policy_opt.state_dict(),
            "value_opt": value_opt.state_dict(), "envs": envs, "step": step, "batches": batches,
            "elapsed": history["time"][-1], "history": dict(history), "rng": rng_state()}
        save_now = batches % config.checkpoint_every == 0 or step >= config.total_steps
        if progress.end_update(len(batch["rewards"]), agent, history, callback, save_now, state):
            break
    progress.close()
    return agent, dict(history)
