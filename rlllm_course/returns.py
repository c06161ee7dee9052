"""Returns and advantages along a trajectory (lecture §1 and §2.3).

Arrays are indexed by time step t = 0..T-1. ``dones[t] = 1`` means the episode
ended *after* the reward ``rewards[t]``: nothing after t is added to the
return at t. Several episodes may be concatenated in one array; ``td_residuals``
and ``gae`` also take (T, N) arrays, time first, one column per parallel env.

An episode ends in one of two ways (gymnasium's ``terminated`` / ``truncated``):
it reaches a terminal state, whose value is 0, or a time limit cuts it, and the
value of the state where it stopped is still V(final observation). ``gae``
takes both flags; see its docstring for how the bootstrap value is passed.
"""

import numpy as np

from .checks import check_ndim, check_same_shape, check_unit_interval


def discounted_returns(rewards, dones, gamma):
    """Discounted return from every step: G_t = r_t + gamma * (1 - done_t) * G_{t+1}.

    rewards: (T,) float, the reward received after the action at step t.
    dones: (T,) bool or 0/1, episode ended after step t (the sum stops there).
    gamma: discount factor in [0, 1].
    Returns G: (T,) float64. The last step's return is its reward: nothing is
    bootstrapped past the end of the array (see ``gae`` for bootstrapping).
    """
    check_ndim("rewards", rewards, 1, "(T,)")
    check_same_shape("dones", dones, "rewards", rewards)
    check_unit_interval("gamma", gamma)
    rewards = np.asarray(rewards, dtype=np.float64)
    not_done = 1.0 - np.asarray(dones, dtype=np.float64)
    returns = np.zeros_like(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):  # G_t needs G_{t+1}: sweep backwards
        running = rewards[t] + gamma * not_done[t] * running
        returns[t] = running
    return returns


def _check_time_major(name, array):
    """Trajectory arrays are (T,) for one stream of episodes or (T, N) for N envs."""
    if np.ndim(array) not in (1, 2):
        raise ValueError(f"{name} must have shape (T,) or (T, N), got shape {tuple(np.shape(array))}")


def td_residuals(rewards, values, next_values, dones, gamma):
    """One-step TD errors: delta_t = r_t + gamma * (1 - done_t) * V(s_{t+1}) - V(s_t).

    rewards: (T,) or (T, N) float, reward after the action at step t.
    values: same shape, V(s_t).
    next_values: same shape, V(s_{t+1}) where s_{t+1} is the observation the
        step really led to -- for the last step of an episode that is the
        episode's final observation, not the first observation of the next one.
    dones: same shape, bool or 0/1: s_{t+1} is a *terminal* state, whose value
        is 0 by definition, so nothing is bootstrapped.
    gamma: discount factor in [0, 1].
    Returns delta: float64, the shape of rewards.

    Terminated vs truncated: an episode cut by a time limit (CartPole-v1 stops
    at 500 steps) did not reach a terminal state; its future return is not 0.
    For such a step pass done = 0 and next_values[t] = V(final observation):
    the residual then bootstraps as if the episode went on. Passing done = 1
    instead treats the time limit as part of the task.
    """
    _check_time_major("rewards", rewards)
    for name, array in (("values", values), ("next_values", next_values), ("dones", dones)):
        check_same_shape(name, array, "rewards", rewards)
    check_unit_interval("gamma", gamma)
    rewards, values, next_values = (np.asarray(a, dtype=np.float64) for a in (rewards, values, next_values))
    not_done = 1.0 - np.asarray(dones, dtype=np.float64)
    return rewards + gamma * not_done * next_values - values


def _episode_residuals(rewards, values, dones, last_value, gamma, truncated, final_values):
    """Checked inputs -> (TD residuals with the right bootstrap at every step, ended).

    Shared by ``gae`` and ``kstep_advantages`` (arguments as documented there):
    a step inside an episode bootstraps from the next row's value, the last
    row from last_value, a terminated step from 0 and a truncated step from
    final_values. ended: bool, where an episode ended (terminated or truncated).
    """
    _check_time_major("rewards", rewards)
    check_same_shape("values", values, "rewards", rewards)
    check_same_shape("dones", dones, "rewards", rewards)
    if np.shape(last_value) not in ((), np.shape(rewards)[1:]):
        raise ValueError(f"last_value must be a number or have shape {np.shape(rewards)[1:]} (N,), "
                         f"got shape {np.shape(last_value)}")
    check_unit_interval("gamma", gamma)
    if (truncated is None) != (final_values is None):
        raise ValueError("truncated and final_values must be given together")
    values = np.asarray(values, dtype=np.float64)
    ended = np.asarray(dones, dtype=bool)
    # V(s_{t+1}) for every step: the next row, and last_value after the final row
    next_values = np.concatenate([values[1:], np.broadcast_to(last_value, values[:1].shape)])  # (T, ...)
    terminal = ended.copy()
    if truncated is not None:
        check_same_shape("truncated", truncated, "rewards", rewards)
        check_same_shape("final_values", final_values, "rewards", rewards)
        cut = np.asarray(truncated, dtype=bool)
        if np.any(cut & ~ended):
            raise ValueError("truncated must be a subset of dones: a truncated step also ends its episode")
        next_values = np.where(cut, np.asarray(final_values, dtype=np.float64), next_values)
        terminal &= ~cut
    return td_residuals(rewards, values, next_values, terminal, gamma), ended


def gae(rewards, values, dones, last_value, gamma, lam, truncated=None, final_values=None):
    """Generalized advantage estimation (Schulman et al., 2016), backwards in time.

        A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1},   returns_t = A_t + V(s_t)

    i.e. A_t = sum_k (gamma * lam)^k delta_{t+k}, summed until the episode ends.
    lam = 0 gives the TD residual delta_t; lam = 1 gives the discounted Monte
    Carlo return (bootstrapped where the data stops) minus V(s_t).

    rewards: (T,) or (T, N) float; time first, N parallel envs second.
    values: same shape, V(s_t) from the critic that acted.
    dones: same shape, bool or 0/1: the episode ended after step t, terminated
        *or* truncated. The advantage sum never crosses such a step.
    last_value: float or (N,): V of the observation after the last step, used
        to bootstrap steps T-1 (and before) whose episode is still running.
        Ignored where dones[T-1] is set.
    gamma, lam: discount and GAE parameter, both in [0, 1].
    truncated: optional, same shape as rewards: the episode was cut by a time
        limit after step t (a subset of dones). Such a step bootstraps from
        final_values[t] instead of stopping at 0: the state was not terminal.
    final_values: same shape, V(final observation of the episode) at truncated
        steps; read only where truncated is set (put anything, e.g. 0, elsewhere).
    Returns (advantages, returns), both float64 of the shape of rewards;
    returns are the lambda-returns, the critic's regression target.
    """
    check_unit_interval("lam", lam)
    deltas, ended = _episode_residuals(rewards, values, dones, last_value, gamma, truncated, final_values)
    advantages = np.zeros_like(deltas)
    running = np.zeros_like(deltas[0])
    for t in reversed(range(len(deltas))):  # A_t needs A_{t+1}: sweep backwards
        running = deltas[t] + gamma * lam * (1.0 - ended[t]) * running
        advantages[t] = running
    return advantages, advantages + np.asarray(values, dtype=np.float64)


def kstep_advantages(rewards, values, dones, last_value, gamma, k, truncated=None, final_values=None):
    """k-step advantage estimates (lecture §2.3): the first k TD residuals, discounted.

        A^(k)_t = sum_{l=0}^{k-1} gamma^l delta_{t+l}
                = r_t + gamma r_{t+1} + ... + gamma^{k-1} r_{t+k-1} + gamma^k V(s_{t+k}) - V(s_t)

    (the sum telescopes: a k-step return minus V). The sum stops early where the
    episode ends (a terminated step bootstraps from 0, a truncated one from
    final_values) or where the data ends (the last step bootstraps from
    last_value): near such a step fewer than k residuals exist and all of them
    are used. So k = 1 gives the TD residual and k >= T the Monte Carlo return
    minus V, which is ``gae`` with lam = 1; ``gae`` with 0 < lam < 1 is the
    average (1 - lam) * sum_k lam^(k-1) A^(k).

    rewards, values, dones, last_value, gamma, truncated, final_values: as in
        ``gae`` -- (T,) or (T, N) time-first arrays, last_value a float or (N,).
    k: positive int, the number of residuals summed.
    Returns advantages: float64, the shape of rewards.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    deltas, ended = _episode_residuals(rewards, values, dones, last_value, gamma, truncated, final_values)
    T = len(deltas)
    advantages = np.zeros_like(deltas)
    weight = np.ones_like(deltas)  # weight[t] = gamma^l while step t's episode is still running at t + l
    for l in range(min(k, T)):  # add the l-th residual to every step at once
        advantages[:T - l] += weight[:T - l] * deltas[l:]  # (T - l, ...)
        weight[:T - l - 1] *= gamma * (1.0 - ended[l:T - 1])  # stop where step t + l ended an episode
    return advantages
