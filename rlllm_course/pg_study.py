"""Checks and measurements around REINFORCE (lecture §2.1-2.2).

Two things the notebook shows and ``pg.py`` does not need:

- an exact policy gradient. A tiny deterministic MDP with a short horizon has
  few enough trajectories to list them all, so J(theta) = sum_tau p(tau) R(tau)
  is an exact, differentiable sum: autograd of it is the true gradient, against
  which the policy-gradient theorem (and the baseline's zero term) are checked;
- the costs of REINFORCE read off a training history: how many environment
  steps each update waits for, and how many steps a run needs to reach a return.
"""

import itertools

import numpy as np
import torch

from .checks import check_positive


def enumerate_trajectories(next_state, horizon, start=0):
    """Every trajectory of `horizon` steps of a deterministic MDP, from state `start`.

    next_state: (S, A) int array, the state after action a in state s.
    Returns states (N, H) and actions (N, H) as int64 tensors, N = A**H: row n
    is one action sequence and the states it visits (states[:, 0] = start).
    """
    next_state = np.asarray(next_state)
    if next_state.ndim != 2:
        raise ValueError(f"next_state must have shape (S, A), got {next_state.shape}")
    check_positive("horizon", horizon)
    actions = np.array(list(itertools.product(range(next_state.shape[1]), repeat=horizon)))  # (N, H)
    states = np.zeros_like(actions)
    states[:, 0] = start
    for t in range(1, horizon):
        states[:, t] = next_state[states[:, t - 1], actions[:, t - 1]]
    return torch.as_tensor(states), torch.as_tensor(actions)


def trajectory_terms(logits, rewards, states, actions):
    """Per-step log-probabilities and rewards of listed trajectories under a softmax policy.

    logits: (S, A) tensor theta, pi(a | s) = softmax(theta[s])[a] (with grad).
    rewards: (S, A) tensor r(s, a). states, actions: (N, H) from ``enumerate_trajectories``.
    Returns logp (N, H) = log pi(a_t | s_t), r (N, H) = r(s_t, a_t), and
    prob (N,) = p(tau) = prod_t pi(a_t | s_t), all differentiable in logits.
    """
    logp = torch.log_softmax(logits, dim=-1)[states, actions]  # (N, H)
    return logp, rewards[states, actions], logp.sum(-1).exp()  # (N, H), (N, H), (N,)


def exact_objective(logits, rewards, states, actions):
    """J(theta) = sum_tau p(tau) R(tau), undiscounted: a differentiable scalar."""
    _, r, prob = trajectory_terms(logits, rewards, states, actions)
    return (prob * r.sum(-1)).sum()


def update_sizes(history):
    """Environment steps collected for each update of a ``train_reinforce`` or ``train_ppo`` run.

    history: the run's history (its "step" list: env steps after each update).
    Returns (U,) int array: the steps each update had to wait for.
    """
    steps = np.asarray(history["step"], dtype=np.int64)
    return np.diff(np.concatenate([[0], steps]))  # (U,)


def steps_to_reach(history, threshold, window=20):
    """Env steps when the mean return of the last `window` episodes first reaches `threshold`.

    history: from ``train_reinforce`` / ``train_ppo`` ("episode/return",
    "episode/step"). Returns an int, or None if the run never got there.
    """
    returns = np.asarray(history["episode/return"], dtype=np.float64)
    steps = np.asarray(history["episode/step"])
    if len(returns) < window:
        return None
    means = np.convolve(returns, np.ones(window) / window, mode="valid")  # (E - window + 1,)
    hits = np.flatnonzero(means >= threshold)
    return int(steps[hits[0] + window - 1]) if len(hits) else None
