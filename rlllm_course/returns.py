"""Returns and advantages along a trajectory (lecture §1 and §2.3).

Arrays are indexed by time step t = 0..T-1. ``dones[t] = 1`` means the episode
ended *after* the reward ``rewards[t]``: nothing after t is added to the
return at t. Several episodes may be concatenated in one array.
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
