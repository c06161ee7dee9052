"""TD residuals and GAE: hand-computed cases, the lam = 0 / lam = 1 limits, bad inputs."""

import numpy as np
import pytest

from rlllm_course.returns import discounted_returns, gae, td_residuals

# One small trajectory used by the hand-computed cases (gamma = 0.9, lam = 0.8).
REWARDS = [1.0, 2.0, 3.0]
VALUES = [0.5, 1.0, 1.5]
GAMMA, LAM = 0.9, 0.8


def test_td_residuals_by_hand():
    # delta_t = r_t + gamma * (1 - done_t) * V(s_{t+1}) - V(s_t); step 1 is terminal
    deltas = td_residuals(REWARDS, VALUES, [1.0, 1.5, 2.0], [0, 1, 0], GAMMA)
    np.testing.assert_allclose(deltas, [1.0 + 0.9 * 1.0 - 0.5, 2.0 - 1.0, 3.0 + 0.9 * 2.0 - 1.5], rtol=1e-12)


def test_gae_no_done_bootstraps_from_last_value():
    # deltas 1.4, 2.35, 3.3 (the last one uses last_value = 2); A_t = delta_t + 0.72 * A_{t+1}
    advantages, returns = gae(REWARDS, VALUES, [0, 0, 0], 2.0, GAMMA, LAM)
    np.testing.assert_allclose(advantages, [4.80272, 4.726, 3.3], rtol=1e-12)
    np.testing.assert_allclose(returns, np.array([4.80272, 4.726, 3.3]) + VALUES, rtol=1e-12)


def test_gae_done_mid_trajectory_cuts_bootstrap_and_sum():
    # step 1 ends an episode: delta_1 = r_1 - V_1 = 1.0, A_1 = delta_1, A_0 = 1.4 + 0.72 * 1.0
    advantages, _ = gae(REWARDS, VALUES, [0, 1, 0], 2.0, GAMMA, LAM)
    np.testing.assert_allclose(advantages, [2.12, 1.0, 3.3], rtol=1e-12)


def test_gae_last_step_done_ignores_last_value():
    # the episode ended at the last step: last_value (100, absurd on purpose) must not leak in
    advantages, _ = gae(REWARDS, VALUES, [0, 0, 1], 100.0, GAMMA, LAM)
    np.testing.assert_allclose(advantages, [1.4 + 0.72 * 3.43, 3.43, 1.5], rtol=1e-12)


def test_gae_truncation_bootstraps_from_final_value():
    # step 1 hit a time limit, V(final obs) = 4: delta_1 = 2 + 0.9 * 4 - 1 = 4.6, and the sum
    # still stops there. Treating it as terminal would give 1.0; bootstrapping from the next
    # episode's first state (V = 1.5) would give 2.35.
    advantages, returns = gae(REWARDS, VALUES, [0, 1, 0], 2.0, GAMMA, LAM,
                              truncated=[0, 1, 0], final_values=[0.0, 4.0, 0.0])
    np.testing.assert_allclose(advantages, [1.4 + 0.72 * 4.6, 4.6, 3.3], rtol=1e-12)
    np.testing.assert_allclose(returns[1], 2.0 + 0.9 * 4.0, rtol=1e-12)  # the bootstrapped target


def test_gae_terminated_and_truncated_at_once_is_terminal():
    # gymnasium can report both flags; the caller passes truncated & ~terminated, so a
    # truncated flag that is not also a done is an error
    with pytest.raises(ValueError, match="truncated"):
        gae(REWARDS, VALUES, [0, 0, 0], 0.0, GAMMA, LAM, truncated=[0, 1, 0], final_values=[0, 1, 0])


def random_trajectory(rng, T=40, N=None):
    shape = (T,) if N is None else (T, N)
    rewards = rng.normal(size=shape)
    values = rng.normal(size=shape)
    dones = rng.random(shape) < 0.15
    last_value = rng.normal(size=shape[1:]) if N else float(rng.normal())
    return rewards, values, dones, last_value


def monte_carlo_returns(rewards, dones, last_value, gamma):
    """Forward sums G_t = sum_k gamma^k r_{t+k} up to the episode's end, plus
    gamma^(T-t) * last_value if the array ends first (independent of the recursion)."""
    T = len(rewards)
    out = np.zeros(T)
    for t in range(T):
        for k in range(t, T):
            out[t] += gamma ** (k - t) * rewards[k]
            if dones[k]:
                break
        else:
            out[t] += gamma ** (T - t) * last_value
    return out


@pytest.mark.parametrize("seed", range(5))
def test_gae_lam0_is_the_td_residual(seed):
    # lam = 0 keeps only the one-step term: A_t = delta_t
    rewards, values, dones, last_value = random_trajectory(np.random.default_rng(seed))
    advantages, _ = gae(rewards, values, dones, last_value, 0.95, 0.0)
    next_values = np.append(values[1:], last_value)
    np.testing.assert_allclose(advantages, td_residuals(rewards, values, next_values, dones, 0.95), rtol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_gae_lam1_is_monte_carlo_return_minus_value(seed):
    # lam = 1: the deltas telescope to G_t - V(s_t), G bootstrapped with last_value at the end
    rewards, values, dones, last_value = random_trajectory(np.random.default_rng(seed))
    advantages, returns = gae(rewards, values, dones, last_value, 0.95, 1.0)
    expected = monte_carlo_returns(rewards, dones, last_value, 0.95)
    np.testing.assert_allclose(returns, expected, rtol=1e-10)
    np.testing.assert_allclose(advantages, expected - values, rtol=1e-10, atol=1e-12)


def test_gae_lam1_without_bootstrap_matches_discounted_returns():
    # the last step done: nothing to bootstrap, so returns are the plain discounted returns
    rng = np.random.default_rng(7)
    rewards, values, dones, _ = random_trajectory(rng)
    dones[-1] = True
    _, returns = gae(rewards, values, dones, 123.0, 0.9, 1.0)
    np.testing.assert_allclose(returns, discounted_returns(rewards, dones, 0.9), rtol=1e-12)


def test_gae_columns_are_independent_envs():
    # (T, N) input: each column is its own env; same result as N separate calls
    rewards, values, dones, last_value = random_trajectory(np.random.default_rng(3), T=25, N=4)
    advantages, returns = gae(rewards, values, dones, last_value, 0.97, 0.9)
    for i in range(4):
        a, r = gae(rewards[:, i], values[:, i], dones[:, i], last_value[i], 0.97, 0.9)
        np.testing.assert_allclose(advantages[:, i], a, rtol=1e-12)
        np.testing.assert_allclose(returns[:, i], r, rtol=1e-12)


def test_gae_gamma0_is_reward_minus_value():
    # no future at all: A_t = r_t - V(s_t) whatever lam
    rewards, values, dones, last_value = random_trajectory(np.random.default_rng(4))
    advantages, _ = gae(rewards, values, dones, last_value, 0.0, 0.7)
    np.testing.assert_allclose(advantages, rewards - values, rtol=1e-12)


@pytest.mark.parametrize("call, name", [
    (lambda: gae([1.0, 2.0], [1.0], [0, 0], 0.0, 0.9, 0.9), "values"),
    (lambda: gae([1.0, 2.0], [1.0, 1.0], [0], 0.0, 0.9, 0.9), "dones"),
    (lambda: gae([1.0, 2.0], [1.0, 1.0], [0, 0], 0.0, 1.5, 0.9), "gamma"),
    (lambda: gae([1.0, 2.0], [1.0, 1.0], [0, 0], 0.0, 0.9, -0.1), "lam"),
    (lambda: gae(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(3), 0.9, 0.9), "last_value"),
    (lambda: gae(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), 0.0, 0.9, 0.9), "rewards"),
    (lambda: gae([1.0], [1.0], [1], 0.0, 0.9, 0.9, truncated=[1]), "final_values"),
    (lambda: td_residuals([1.0, 2.0], [1.0, 1.0], [1.0], [0, 0], 0.9), "next_values"),
])
def test_bad_inputs_name_the_argument(call, name):
    # a wrong shape or range fails at the boundary and says which argument
    with pytest.raises(ValueError, match=name):
        call()
