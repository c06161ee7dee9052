"""Proximal policy optimization with a clipped surrogate (§2.4), CleanRL-style.

PPO reuses each rollout for several epochs of minibatch updates. The samples
come from the policy that collected them, pi_old, so the policy gradient is
reweighted by the importance ratio pi_theta / pi_old, and the surrogate is
clipped: it stops rewarding a sample's ratio once it is past 1 +- clip_eps in
its advantage's direction (the ratio itself is not bounded; approx-KL tells how
far the policy moved).

Read top to bottom: the losses, the config, one update on a collected
rollout (bootstrap, GAE, flatten, epochs over shuffled minibatches), then the
loop around it (rollout, update, logging). Vector environments and rollout
collection live in ``training.py``.
"""

import dataclasses
from collections import defaultdict

import numpy as np
import torch

from .agents import ActorCritic
from .checks import check_positive, check_same_shape, check_unit_interval
from .pg import value_loss  # PPO fits its critic with the same regression as REINFORCE's baseline
from .returns import gae
from .training import (Progress, Rollout, collect_rollout, explained_variance, load_checkpoint, make_vector_env,
                       rng_state, seed_everything, set_rng_state)

__all__ = ["approx_kl", "ppo_clip_loss", "value_loss", "PPOConfig", "ppo_update", "train_ppo",
           "Rollout", "collect_rollout", "make_vector_env"]


def _check_logps(logp, old_logp):
    if not isinstance(logp, torch.Tensor):
        raise ValueError(f"logp must be a torch tensor of shape (B,), got {type(logp).__name__}")
    check_same_shape("old_logp", old_logp, "logp", logp)


def approx_kl(logp, old_logp, reduction="mean"):
    """The k3 estimator of KL(pi_old || pi_theta) from samples a ~ pi_old.

        d = logp - old_logp = log pi_theta(a|s) - log pi_old(a|s),   k3 = exp(d) - d - 1

    logp: (B,) log pi_theta of the sampled actions; old_logp: (B,) log pi_old.
    Direction: the samples come from pi_old (the rollout), so in the form
    "k3 = exp(d) - d - 1 with d = logp_ref - logp, E_policy[k3] = KL(policy || ref)"
    the sampling policy is pi_old and the reference is pi_theta:
    E_{a ~ pi_old}[k3] = KL(pi_old || pi_theta). Each term is >= 0 (exp(d) >= 1 + d),
    and E[exp(d) - 1] = 0, so k3 is unbiased with lower variance than -d (k1).
    Gradients flow through logp only: old_logp is a constant of the rollout (detached).
    reduction: "mean" -> scalar tensor; "none" -> (B,) per-sample values.
    """
    _check_logps(logp, old_logp)
    d = logp - torch.as_tensor(old_logp, dtype=logp.dtype).detach()
    k3 = torch.expm1(d) - d  # exp(d) - 1 - d, accurate for small d
    if reduction == "none":
        return k3
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return k3.mean()


def ppo_clip_loss(logp, old_logp, advantages, clip_eps):
    """The clipped surrogate, as a loss to minimize (Schulman et al., 2017, eq. 7).

        ratio = exp(logp - old_logp)
        loss = -mean( min(ratio * A, clip(ratio, 1 - clip_eps, 1 + clip_eps) * A) )

    logp: (B,) log pi_theta(a|s) with grad; old_logp: (B,) log pi_old(a|s) at
    rollout time; advantages: (B,) A (normalize them beforehand if you want to).
    clip_eps: in (0, 1). The min makes the objective pessimistic: for A > 0
    the gain stops once ratio > 1 + clip_eps, for A < 0 once ratio < 1 - clip_eps;
    a step that made things worse is never clipped. old_logp and advantages are
    detached. Mean over the B samples.
    Returns (loss, metrics): "ppo/pg_loss", "ppo/clip_frac" (fraction with
    |ratio - 1| > clip_eps, the CleanRL/SB3 definition), "ppo/approx_kl" (k3, see
    ``approx_kl``).
    """
    _check_logps(logp, old_logp)
    check_same_shape("advantages", advantages, "logp", logp)
    if not np.isscalar(clip_eps) or not 0 < clip_eps < 1:
        raise ValueError(f"clip_eps must be a number in (0, 1), got {clip_eps!r}")
    old_logp = torch.as_tensor(old_logp, dtype=logp.dtype).detach()
    advantages = torch.as_tensor(advantages, dtype=logp.dtype).detach()
    ratio = torch.exp(logp - old_logp)  # (B,)
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages)
    loss = -surrogate.mean()
    with torch.no_grad():
        metrics = {"ppo/pg_loss": loss.item(),
                   "ppo/clip_frac": ((ratio - 1).abs() > clip_eps).float().mean().item(),
                   "ppo/approx_kl": approx_kl(logp.detach(), old_logp).item()}
    return loss, metrics


@dataclasses.dataclass
class PPOConfig:
    """Hyperparameters of ``train_ppo``; the defaults solve CartPole-v1 on a CPU in seconds.

    Tuned on CartPole-v1 (benchmarks/cartpole.py). Against the rl-zoo settings
    (20 epochs over one 256-sample batch at lr 1e-3), 6 epochs of 4 minibatches
    of 64 at lr 2e-3 take about as many gradient steps per sample and reach
    "solved" in fewer environment steps.
    """
    env_id: str = "CartPole-v1"
    seed: int = 1
    total_steps: int = 100_000      # environment steps, all envs together
    num_envs: int = 8
    num_steps: int = 32             # steps per env per rollout: a batch of num_envs * num_steps
    gamma: float = 0.98
    lam: float = 0.8                # GAE lambda
    update_epochs: int = 6          # passes over each rollout
    num_minibatches: int = 4        # of 64 samples: many small steps learn faster than few big ones
    lr: float = 2e-3                # Adam
    anneal_lr: bool = True          # linearly to 0 over the run
    clip_eps: float = 0.2
    clip_value: float | None = None  # clip the value loss with this range (None: plain MSE)
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    norm_adv: bool = True           # per minibatch: (A - mean) / (std + 1e-8), std with Bessel's correction
    target_kl: float | None = None  # stop after an epoch whose last minibatch's approx-KL exceeds it
    hidden: tuple = (64, 64)
    checkpoint: str | None = None   # path: save every checkpoint_every updates, resume if it exists
    checkpoint_every: int = 50
    progress: bool = True           # tqdm bar


def ppo_update(agent, optimizer, rollout, config, generator, trace=None):
    """One PPO update on a collected rollout; returns the update's metrics.

    agent: the ``ActorCritic`` to train (normally the one that collected the
        rollout; if it has moved since, the rollout still defines pi_old, V_old).
    optimizer: a torch optimizer over agent.parameters(), at the learning rate to use.
    rollout: a ``Rollout`` of T steps of N envs; B = T * N samples.
    config: a ``PPOConfig``; reads gamma, lam, update_epochs, num_minibatches,
        norm_adv, clip_eps, clip_value, ent_coef, vf_coef, max_grad_norm, target_kl.
    generator: torch.Generator that draws the minibatch permutations.
    trace: optional list; each minibatch's metrics (and its "epoch") are appended.

    1. Bootstrap: last_value = V(rollout.next_obs) with the agent as passed in, no grad.
    2. GAE: ``gae(rewards, values, dones, last_value, gamma, lam, truncated,
       final_values)`` on the rollout's (T, N) arrays (float64), then advantages
       and returns as float32.
    3. Flatten time first, (T, N) -> (B,): sample i is step t = i // N of env n = i % N.
    4. update_epochs epochs; each draws order = torch.randperm(B, generator=generator)
       and takes the minibatches torch.tensor_split(order, num_minibatches) in
       turn (nearly equal sizes, none dropped). Per minibatch: log pi_theta,
       entropy and V_phi of the stored obs and actions from
       agent.get_action_and_value; advantages normalized within the minibatch,
       (A - mean) / (std + 1e-8) with Bessel's std, if norm_adv;
           loss = ppo_clip_loss(logp, old_logp, A, clip_eps)
                  - ent_coef * mean entropy
                  + vf_coef * value_loss(V, returns [, old_values, clip_value])
       (the value loss clipped around the old values only if clip_value is not
       None); zero_grad, backward, clip_grad_norm_(agent.parameters(),
       max_grad_norm), step. After an epoch, stop early if target_kl is not
       None and the last minibatch's approx-KL exceeds it.
    Constants, never differentiated: the old log-probs and values (rollout.logprobs,
    rollout.values, pi_old and V_old), the advantages and the returns.
    Returns a dict of floats: the mean over the minibatches run of
    "ppo/pg_loss", "ppo/clip_frac", "ppo/approx_kl" (each measured before that
    minibatch's step), "v/loss" (and "v/clip_frac" when clipped), "ppo/entropy";
    and "v/explained_variance" of V_old against the returns.
    """
    c = config
    T, N = rollout.rewards.shape
    if 2 * c.num_minibatches > T * N:
        raise ValueError(f"config.num_minibatches ({c.num_minibatches}) leaves fewer than 2 samples per "
                         f"minibatch in a batch of {T * N}: the advantages' std needs 2")
    old_values = rollout.values.detach()  # (T, N) V_old
    # 1-2. Bootstrap from the observation after the last step and run GAE backwards in time
    with torch.no_grad():
        last_value = agent.get_value(rollout.next_obs).numpy()  # (N,)
    advantages, returns = gae(rollout.rewards.detach().numpy(), old_values.numpy(), rollout.dones.numpy(),
                              last_value, c.gamma, c.lam, rollout.truncated.numpy(),
                              rollout.final_values.detach().numpy())  # (T, N) each, float64

    # 3. Flatten the batch: (T, N, ...) -> (T * N, ...)
    b_obs = rollout.obs.reshape(T * N, -1)  # (B, obs_dim)
    b_actions, b_logprobs = rollout.actions.reshape(-1), rollout.logprobs.detach().reshape(-1)  # (B,)
    b_values = old_values.reshape(-1)  # (B,)
    b_advantages = torch.as_tensor(advantages, dtype=torch.float32).reshape(-1)  # (B,)
    b_returns = torch.as_tensor(returns, dtype=torch.float32).reshape(-1)  # (B,)

    # 4. Epochs over shuffled minibatches
    sums, count = defaultdict(float), 0
    for epoch in range(c.update_epochs):
        order = torch.randperm(T * N, generator=generator)  # (B,) a fresh shuffle every epoch
        for mb in torch.tensor_split(order, c.num_minibatches):  # (M,) each
            _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb], b_actions[mb])
            mb_adv = b_advantages[mb]
            if c.norm_adv:  # per minibatch: every gradient step sees advantages of mean 0 and std 1
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
            pg_loss, pg_metrics = ppo_clip_loss(newlogprob, b_logprobs[mb], mb_adv, c.clip_eps)
            v_loss, v_metrics = (value_loss(newvalue, b_returns[mb]) if c.clip_value is None else
                                 value_loss(newvalue, b_returns[mb], b_values[mb], c.clip_value))
            entropy = entropy.mean()
            loss = pg_loss - c.ent_coef * entropy + c.vf_coef * v_loss  # minimized: the entropy is a bonus
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(agent.parameters(), c.max_grad_norm)
            optimizer.step()
            metrics = {**pg_metrics, **v_metrics, "ppo/entropy": entropy.item()}
            for key, value in metrics.items():
                sums[key] += value
            count += 1
            if trace is not None:
                trace.append({"epoch": epoch, **metrics})
        if c.target_kl is not None and pg_metrics["ppo/approx_kl"] > c.target_kl:
            break

    # 5. Minibatch averages, and how much of the return the critic explained
    metrics = {key: total / count for key, total in sums.items()}
    metrics["v/explained_variance"] = explained_variance(b_values, b_returns)
    return metrics


def train_ppo(config=None, callback=None):
    """Train an ``ActorCritic`` with PPO on ``config.env_id``; returns (agent, history).

    Each update collects a rollout (``collect_rollout``) and learns from it
    (``ppo_update``, minibatch permutations from torch's global generator).
    callback(agent, history) -> bool runs after every update (its time is not
    counted in history["time"]); returning True stops training.
    history: per update "step" (env steps so far), "time" (training seconds),
    "lr", and the metrics of ``ppo_update`` ("ppo/pg_loss", "ppo/clip_frac",
    "ppo/approx_kl", "ppo/entropy", "v/loss", "v/explained_variance", ...);
    per episode "episode/return", "episode/length", "episode/step" (env steps
    when it ended).
    With ``config.checkpoint`` set, an existing checkpoint is resumed and the
    state is saved every ``checkpoint_every`` updates and at the end.
    """
    c = config or PPOConfig()
    check_unit_interval("config.gamma", c.gamma)
    check_unit_interval("config.lam", c.lam)
    for name in ("total_steps", "num_envs", "num_steps", "update_epochs", "num_minibatches", "lr",
                 "clip_eps", "checkpoint_every"):
        check_positive(f"config.{name}", getattr(c, name))
    batch_size = c.num_envs * c.num_steps
    if 2 * c.num_minibatches > batch_size:
        raise ValueError(f"config.num_minibatches ({c.num_minibatches}) leaves fewer than 2 samples per "
                         f"minibatch in num_envs * num_steps ({batch_size})")
    num_updates = -(-c.total_steps // batch_size)  # ceil

    seed_everything(c.seed)
    envs = make_vector_env(c.env_id, c.num_envs, c.seed)
    obs_dim, n_actions = envs.single_observation_space.shape[0], envs.single_action_space.n
    agent = ActorCritic(obs_dim, n_actions, c.hidden)
    # fused: one kernel for all parameters; with a network this small, per-tensor overhead dominates
    optimizer = torch.optim.Adam(agent.parameters(), lr=c.lr, eps=1e-5, fused=True)
    next_obs = torch.as_tensor(envs.reset(seed=c.seed)[0])  # (N, obs_dim)
    ep_return, ep_length = np.zeros(c.num_envs), np.zeros(c.num_envs, dtype=int)
    history, update, global_step, elapsed = defaultdict(list), 0, 0, 0.0
    state = load_checkpoint(c)
    if state is not None:  # continue the saved run exactly where it stopped
        agent.load_state_dict(state["agent"])
        optimizer.load_state_dict(state["optimizer"])
        envs, next_obs, ep_return, ep_length = state["envs"], state["next_obs"], state["ep_return"], state["ep_length"]
        update, global_step, elapsed = state["update"], state["global_step"], state["elapsed"]
        history.update(state["history"])
        set_rng_state(state["rng"])

    progress = Progress(c, num_updates * batch_size, global_step, elapsed, desc="PPO")
    while update < num_updates:
        lr = c.lr * (1.0 - update / num_updates) if c.anneal_lr else c.lr
        for group in optimizer.param_groups:
            group["lr"] = lr

        # 1. Rollout: num_steps steps in every env with the current policy; log the episodes that end
        rollout = collect_rollout(agent, envs, next_obs, c.num_steps)
        next_obs = rollout.next_obs
        for reward, done in zip(rollout.rewards.numpy(), rollout.dones.numpy()):  # (N,) per step
            global_step += c.num_envs
            ep_return += reward
            ep_length += 1
            for i in np.flatnonzero(done):
                history["episode/return"].append(float(ep_return[i]))
                history["episode/length"].append(int(ep_length[i]))
                history["episode/step"].append(global_step)
            ep_return[done], ep_length[done] = 0.0, 0

        # 2. Learn from it: bootstrap, GAE, epochs over shuffled minibatches
        metrics = ppo_update(agent, optimizer, rollout, c, torch.default_generator)

        # 3. Log
        update += 1
        history["step"].append(global_step)
        history["time"].append(progress.clock())
        history["lr"].append(lr)
        for key, value in metrics.items():
            history[key].append(value)
        state = lambda: {
            "config": dataclasses.asdict(c), "agent": agent.state_dict(), "optimizer": optimizer.state_dict(),
            "envs": envs, "next_obs": next_obs, "ep_return": ep_return, "ep_length": ep_length,
            "update": update, "global_step": global_step, "elapsed": history["time"][-1],
            "history": dict(history), "rng": rng_state()}
        save_now = update % c.checkpoint_every == 0 or update == num_updates
        if progress.end_update(batch_size, agent, history, callback, save_now, state):
            break
    progress.close()
    return agent, dict(history)
