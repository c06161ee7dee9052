"""Proximal policy optimization with a clipped surrogate (§2.4), CleanRL-style.

PPO reuses each rollout for several epochs of minibatch updates. The samples
come from the policy that collected them, pi_old, so the policy gradient is
reweighted by the importance ratio pi_theta / pi_old, and the ratio is
clipped so that one rollout cannot move the policy far.

Read top to bottom: the losses, the config, the environments, then the loop
in the order the algorithm runs it (rollout, bootstrap, GAE, flatten, epochs
over shuffled minibatches, logging).
"""

import dataclasses
import functools
from collections import defaultdict

import gymnasium as gym
import numpy as np
import torch

from .agents import ActorCritic
from .checks import check_positive, check_same_shape, check_unit_interval
from .pg import value_loss  # PPO fits its critic with the same regression as REINFORCE's baseline
from .returns import gae
from .training import Progress, explained_variance, load_checkpoint, rng_state, seed_everything, set_rng_state

__all__ = ["approx_kl", "ppo_clip_loss", "value_loss", "PPOConfig", "make_vector_env", "train_ppo"]


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
    reduction: "mean" -> scalar tensor; "none" -> (B,) per-sample values.
    """
    _check_logps(logp, old_logp)
    d = logp - torch.as_tensor(old_logp, dtype=logp.dtype)
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
    target_kl: float | None = None  # stop the epochs early once approx-KL exceeds it
    hidden: tuple = (64, 64)
    checkpoint: str | None = None   # path: save every checkpoint_every updates, resume if it exists
    checkpoint_every: int = 50
    progress: bool = True           # tqdm bar


def make_vector_env(env_id, num_envs, seed):
    """num_envs copies of env_id stepping together, reset once with seeds seed, seed + 1, ...

    SAME_STEP autoreset: when an episode ends, the env is reset within the same
    ``step`` call, the returned observation is already the next episode's first
    one, and the real final observation is in info["final_obs"] (needed to
    bootstrap truncated episodes).
    """
    envs = gym.vector.SyncVectorEnv([functools.partial(gym.make, env_id) for _ in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs.reset(seed=seed)  # seeds every sub-env's generator; later resets continue them
    return envs


def train_ppo(config=None, callback=None):
    """Train an ``ActorCritic`` with PPO on ``config.env_id``; returns (agent, history).

    callback(agent, history) -> bool runs after every update (its time is not
    counted in history["time"]); returning True stops training.
    history: per update "step" (env steps so far), "time" (training seconds),
    "lr", the loss metrics averaged over the update's minibatches, and
    "ppo/entropy", "v/explained_variance"; per episode "episode/return",
    "episode/length", "episode/step" (env steps when it ended).
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
    if batch_size % c.num_minibatches:
        raise ValueError(f"config.num_minibatches ({c.num_minibatches}) must divide "
                         f"num_envs * num_steps ({batch_size})")
    minibatch_size = batch_size // c.num_minibatches
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

    # Rollout storage, time first: (num_steps, num_envs, ...)
    obs = torch.zeros((c.num_steps, c.num_envs, obs_dim))
    actions = torch.zeros((c.num_steps, c.num_envs), dtype=torch.long)
    logprobs = torch.zeros((c.num_steps, c.num_envs))
    values = torch.zeros((c.num_steps, c.num_envs))
    rewards = np.zeros((c.num_steps, c.num_envs))
    dones = np.zeros((c.num_steps, c.num_envs), dtype=bool)
    truncated = np.zeros((c.num_steps, c.num_envs), dtype=bool)
    final_values = np.zeros((c.num_steps, c.num_envs))

    progress = Progress(c, num_updates * batch_size, global_step, elapsed, desc="PPO")
    while update < num_updates:
        lr = c.lr * (1.0 - update / num_updates) if c.anneal_lr else c.lr
        for group in optimizer.param_groups:
            group["lr"] = lr

        # 1. Rollout: num_steps steps in every env with the current policy
        for t in range(c.num_steps):
            obs[t] = next_obs
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
            actions[t], logprobs[t], values[t] = action, logprob, value
            raw_obs, reward, term, trunc, info = envs.step(action.numpy())
            next_obs = torch.as_tensor(raw_obs)
            rewards[t], dones[t], truncated[t] = reward, term | trunc, trunc & ~term
            final_values[t] = 0.0
            if truncated[t].any():  # bootstrap a time limit from the true final observation
                cut = np.flatnonzero(truncated[t])
                with torch.no_grad():
                    final_values[t, cut] = agent.get_value(torch.as_tensor(np.stack(info["final_obs"][cut]))).numpy()
            global_step += c.num_envs
            ep_return += reward
            ep_length += 1
            for i in np.flatnonzero(dones[t]):
                history["episode/return"].append(float(ep_return[i]))
                history["episode/length"].append(int(ep_length[i]))
                history["episode/step"].append(global_step)
            ep_return[dones[t]], ep_length[dones[t]] = 0.0, 0

        # 2. Bootstrap from the last observation and run GAE backwards in time
        with torch.no_grad():
            last_value = agent.get_value(next_obs).numpy()  # (N,)
        advantages, returns = gae(rewards, values.numpy(), dones, last_value, c.gamma, c.lam,
                                  truncated, final_values)  # (num_steps, N) each

        # 3. Flatten the batch: (num_steps, N, ...) -> (num_steps * N, ...)
        b_obs = obs.reshape(-1, obs_dim)  # (B, obs_dim)
        b_actions, b_logprobs, b_values = actions.reshape(-1), logprobs.reshape(-1), values.reshape(-1)  # (B,)
        b_advantages = torch.as_tensor(advantages, dtype=torch.float32).reshape(-1)  # (B,)
        b_returns = torch.as_tensor(returns, dtype=torch.float32).reshape(-1)  # (B,)

        # 4. Epochs over shuffled minibatches
        sums, count = defaultdict(float), 0
        for epoch in range(c.update_epochs):
            order = torch.randperm(batch_size)
            for begin in range(0, batch_size, minibatch_size):
                mb = order[begin:begin + minibatch_size]  # (M,)
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb], b_actions[mb])
                mb_adv = b_advantages[mb]
                if c.norm_adv:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss, pg_metrics = ppo_clip_loss(newlogprob, b_logprobs[mb], mb_adv, c.clip_eps)
                v_loss, v_metrics = (value_loss(newvalue, b_returns[mb]) if c.clip_value is None else
                                     value_loss(newvalue, b_returns[mb], b_values[mb], c.clip_value))
                entropy = entropy.mean()
                loss = pg_loss - c.ent_coef * entropy + c.vf_coef * v_loss
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(agent.parameters(), c.max_grad_norm)
                optimizer.step()
                for key, value in {**pg_metrics, **v_metrics, "ppo/entropy": entropy.item()}.items():
                    sums[key] += value
                count += 1
            if c.target_kl is not None and pg_metrics["ppo/approx_kl"] > c.target_kl:
                break

        # 5. Log: minibatch averages, and how much of the return the critic explained
        update += 1
        history["step"].append(global_step)
        history["time"].append(progress.clock())
        history["lr"].append(lr)
        for key, total in sums.items():
            history[key].append(total / count)
        history["v/explained_variance"].append(explained_variance(b_values, b_returns))
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
