"""What every trainer shares: seeds, checkpoints, playing and evaluating episodes.

Nothing here is an RL algorithm; ``pg.py`` and ``ppo.py`` build on it so that
neither repeats the other's plumbing. REINFORCE plays whole episodes
(``play_episodes``); PPO collects fixed-length rollouts from vector
environments (``make_vector_env``, ``collect_rollout``).

Checkpoints are whole training states (network, optimizer, environments, random
number generators, history) written with ``torch.save``; reading one unpickles
Python objects, so only load checkpoints you wrote yourself.
"""

import dataclasses
import functools
import os
import random
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm


def seed_everything(seed):
    """Seed Python's, numpy's and torch's global generators (environments seed separately)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state():
    """The state of the three global generators, for a checkpoint."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state):
    """Restore what ``rng_state`` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(path, state):
    """Write `state` (a dict) to `path` atomically: a crash mid-write keeps the old file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path):
    """The checkpoint dict a trainer saved at `path`, or None when `path` is None or not written yet."""
    if path is None or not Path(path).exists():
        return None
    return torch.load(path, weights_only=False)  # our own file: it holds optimizer states and logs


def checkpoint_due(step, every, steps):
    """Save after `step` (0-based)? Every `every` steps, and after the last of `steps`."""
    return (step + 1) % every == 0 or step + 1 == steps


def load_checkpoint(config, free_fields=("progress", "checkpoint", "checkpoint_every")):
    """The state saved at ``config.checkpoint``, or None when there is none yet.

    Raises ValueError if the checkpoint was written with a different config,
    apart from `free_fields` (which do not change the run's result): resuming
    it would not continue the same run.
    """
    if not config.checkpoint or not os.path.exists(config.checkpoint):
        return None
    state = torch.load(config.checkpoint, weights_only=False)  # our own file: it holds envs and RNG states
    now = dataclasses.asdict(config)
    changed = sorted(k for k, v in state["config"].items()
                     if k not in free_fields and now.get(k) != v)
    if changed:
        raise ValueError(f"config differs from the one in checkpoint {config.checkpoint} "
                         f"in {changed}; use another checkpoint path to start a new run")
    return state


class Progress:
    """A trainer's bookkeeping between updates: tqdm bar, training clock, checkpoints, callback.

    config: the trainer's config (reads ``progress`` and ``checkpoint``).
    total, done: environment steps planned and already done (when resuming).
    elapsed: training seconds already spent (when resuming).
    """

    def __init__(self, config, total, done=0, elapsed=0.0, desc=None):
        self.config = config
        self.bar = tqdm(total=total, initial=min(done, total), disable=not config.progress, desc=desc)
        self.start = time.perf_counter() - elapsed

    def clock(self):
        """Training seconds so far; callback time is not counted."""
        return time.perf_counter() - self.start

    def end_update(self, steps, agent, history, callback, save_now, state):
        """Advance the bar by `steps`, save ``state()`` if `save_now`, run the callback.

        state: a function returning the checkpoint dict (only called when saving).
        Returns True when callback(agent, history) asked to stop.
        """
        self.bar.update(steps)
        if history["episode/return"]:
            self.bar.set_postfix(ret=f"{np.mean(history['episode/return'][-100:]):.0f}")
        if self.config.checkpoint and save_now:
            save_checkpoint(self.config.checkpoint, state())
        paused = time.perf_counter()
        stop = callback is not None and bool(callback(agent, history))
        self.start += time.perf_counter() - paused  # callback time is not training time
        return stop

    def close(self):
        self.bar.close()


def explained_variance(values, returns):
    """1 - Var[returns - values] / Var[returns]: how much of the return the critic explains.

    values, returns: (B,) arrays or tensors. Population variances (no Bessel
    correction). 1 is a perfect critic, 0 is no better than a constant, < 0 is
    worse than a constant. NaN when the returns do not vary.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    returns = np.asarray(returns, dtype=np.float64).ravel()
    var = returns.var()
    return float("nan") if var == 0 else float(1.0 - (returns - values).var() / var)


def make_envs(env_id, n, seed):
    """`n` separate gymnasium environments, the i-th seeded with seed + i once.

    Later resets are unseeded, so each environment's generator continues and a
    pickled environment (in a checkpoint) resumes exactly where it was.
    """
    envs = [gym.make(env_id) for _ in range(n)]
    for i, env in enumerate(envs):
        env.reset(seed=seed + i)
    return envs


def play_episodes(act, envs):
    """Play one complete episode in each environment, all in lockstep.

    act: callable, observations (n, obs_dim) numpy -> actions numpy, (n,) for a
        Discrete action space or (n, D) for a Box one; it is called once per time
        step on the environments still running.
    envs: list of E gymnasium environments; each is reset (unseeded) first.
    Returns a dict of numpy arrays; episodes are concatenated one after the
    other (episode 0's steps, then episode 1's, ...), T steps in total:
        obs (T, obs_dim), actions (T,) int64 or (T, D) float32, rewards (T,), dones (T,) -- True on each
        episode's last step, truncated (T,) -- True where a time limit ended it,
        final_obs (E, obs_dim) -- the observation each episode ended in,
        episode_returns (E,) undiscounted, episode_lengths (E,).
    """
    discrete = isinstance(envs[0].action_space, gym.spaces.Discrete)
    obs = np.stack([env.reset()[0] for env in envs])  # (E, obs_dim)
    steps = [[] for _ in envs]  # per env: (obs, action, reward)
    final_obs, truncated = [None] * len(envs), [False] * len(envs)
    running = np.ones(len(envs), dtype=bool)
    while running.any():
        idx = np.flatnonzero(running)
        actions = act(obs[idx])
        for i, a in zip(idx, actions):
            next_obs, reward, term, trunc, _ = envs[i].step(a.item() if discrete else a)
            steps[i].append((obs[i].copy(), a, reward))  # copy: obs[i] is overwritten below
            if term or trunc:
                running[i], final_obs[i], truncated[i] = False, next_obs, trunc and not term
            obs[i] = next_obs
    lengths = np.array([len(s) for s in steps])
    flat = [step for s in steps for step in s]
    dones = np.zeros(lengths.sum(), dtype=bool)
    dones[np.cumsum(lengths) - 1] = True
    rewards = np.array([r for _, _, r in flat], dtype=np.float64)
    return {
        "obs": np.stack([o for o, _, _ in flat]).astype(np.float32),  # (T, obs_dim)
        "actions": (np.array([a for _, a, _ in flat], dtype=np.int64) if discrete  # (T,)
                    else np.stack([a for _, a, _ in flat]).astype(np.float32)),  # (T, D)
        "rewards": rewards,
        "dones": dones,
        "truncated": dones & np.repeat(truncated, lengths),  # (T,): only the last step of a cut episode
        "final_obs": np.stack(final_obs).astype(np.float32),  # (E, obs_dim)
        "episode_returns": np.add.reduceat(rewards, np.cumsum(lengths) - lengths),  # (E,)
        "episode_lengths": lengths,
    }


def evaluate_agent(agent, env_id="CartPole-v1", episodes=10, seed=10_000, greedy=True):
    """Undiscounted returns of `episodes` evaluation episodes, shape (episodes,).

    agent: an ``ActorCritic`` (played greedily, argmax of pi, unless
        greedy=False) or any callable observations (n, obs_dim) -> actions (n,).
    seed: the evaluation environments get seed, seed + 1, ...; keep it away
        from the training seeds so evaluation starts from unseen states.
    Uses its own environments and does not touch the global generators when
    greedy (a sampled evaluation draws from torch's generator).
    """
    act = agent if not hasattr(agent, "act") else (lambda obs: agent.act(obs, greedy=greedy))
    envs = make_envs(env_id, episodes, seed)
    try:
        return play_episodes(act, envs)["episode_returns"]
    finally:
        for env in envs:
            env.close()


def make_vector_env(env_id, num_envs, seed, max_episode_steps=None):
    """num_envs copies of env_id stepping together, reset once with seeds seed, seed + 1, ...

    SAME_STEP autoreset: when an episode ends, the env is reset within the same
    ``step`` call, the returned observation is already the next episode's first
    one, and the real final observation is in info["final_obs"] (needed to
    bootstrap truncated episodes). max_episode_steps: optional time limit
    replacing the environment's own (CartPole-v1: 500).
    """
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    envs = gym.vector.SyncVectorEnv([functools.partial(gym.make, env_id, **kwargs) for _ in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs.reset(seed=seed)  # seeds every sub-env's generator; later resets continue them
    return envs


@dataclasses.dataclass
class Rollout:
    """T steps of N vector environments, time first, collected by pi_old (``collect_rollout``).

    obs: (T, N, obs_dim) float32, s_t.            actions: (T, N) long, a_t ~ pi_old(.|s_t).
    logprobs: (T, N) float32, log pi_old(a_t|s_t). values: (T, N) float32, V_old(s_t).
    rewards: (T, N) float64, r_t.
    dones: (T, N) bool, the episode ended after step t (terminated or truncated).
    truncated: (T, N) bool, ... because of a time limit (a subset of dones).
    final_values: (T, N) float32, V_old(final observation) where truncated, 0 elsewhere.
    next_obs: (N, obs_dim) float32, the observation after the last step (to bootstrap).
    logprobs, values and final_values are the collecting agent's, frozen: an
    update treats them as constants.
    """
    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    truncated: torch.Tensor
    final_values: torch.Tensor
    next_obs: torch.Tensor


@torch.no_grad()
def collect_rollout(agent, envs, next_obs, num_steps):
    """Play num_steps steps in every env of `envs` with the agent's sampled actions.

    agent: an ``ActorCritic``; envs: a SAME_STEP vector env (``make_vector_env``);
    next_obs: (N, obs_dim) float32 tensor, the observation the envs are in.
    Actions are sampled with torch's global generator. Episodes that end are
    reset by the env within the step, so every row is a real transition.
    Returns a ``Rollout``; its next_obs is where the envs are now.
    """
    T, N = num_steps, envs.num_envs
    obs = torch.zeros((T, N, *next_obs.shape[1:]))
    actions = torch.zeros((T, N), dtype=torch.long)
    logprobs, values, final_values = torch.zeros((T, N)), torch.zeros((T, N)), torch.zeros((T, N))
    rewards = torch.zeros((T, N), dtype=torch.float64)
    dones, truncated = torch.zeros((T, N), dtype=torch.bool), torch.zeros((T, N), dtype=torch.bool)
    for t in range(T):
        obs[t] = next_obs
        actions[t], logprobs[t], _, values[t] = agent.get_action_and_value(next_obs)
        raw_obs, reward, term, trunc, info = envs.step(actions[t].numpy())
        next_obs = torch.as_tensor(raw_obs)
        rewards[t] = torch.as_tensor(reward)
        dones[t], truncated[t] = torch.as_tensor(term | trunc), torch.as_tensor(trunc & ~term)
        if truncated[t].any():  # bootstrap a time limit from the true final observation
            cut = np.flatnonzero(trunc & ~term)
            final_values[t, torch.as_tensor(cut)] = agent.get_value(torch.as_tensor(np.stack(info["final_obs"][cut])))
    return Rollout(obs, actions, logprobs, values, rewards, dones, truncated, final_values, next_obs)
