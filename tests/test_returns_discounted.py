"""Unit tests of rlllm_course.returns.discounted_returns (graded in 00_rl_basics)."""

import numpy as np
import pytest

from rlllm_course.returns import discounted_returns


def explicit_returns(rewards, dones, gamma):
    """G_t = sum_k gamma^k r_{t+k} up to the end of t's episode, as a plain double loop."""
    T = len(rewards)
    G = np.zeros(T)
    for t in range(T):
        for k in range(T - t):
            G[t] += gamma ** k * rewards[t + k]
            if dones[t + k]:
                break
    return G


def test_one_episode_by_hand():
    # gamma=0.5: G_2 = 1, G_1 = 1 + 0.5 * 1, G_0 = 1 + 0.5 * 1.5
    G = discounted_returns(np.array([1.0, 1.0, 1.0]), np.array([0, 0, 1]), 0.5)
    np.testing.assert_allclose(G, [1.75, 1.5, 1.0], rtol=0, atol=1e-15)


def test_done_mid_trajectory_stops_the_sum():
    # the first episode ends after step 1: G_1 = 2 alone, G_0 = 1 + 0.5 * 2; then G_2 = 3 + 0.5 * 4
    G = discounted_returns(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 1, 0, 0]), 0.5)
    np.testing.assert_allclose(G, [2.0, 2.0, 5.0, 4.0], rtol=0, atol=1e-15)


def test_gamma_zero_gives_the_rewards():
    # gamma=0: only the immediate reward counts, whatever the dones
    rewards = np.array([0.5, -1.0, 2.0, 3.0])
    np.testing.assert_array_equal(discounted_returns(rewards, np.array([0, 1, 0, 0]), 0.0), rewards)


def test_gamma_one_gives_undiscounted_tail_sums_per_episode():
    # gamma=1: plain sums to the end of each episode (episode 1 = steps 0-1, episode 2 = steps 2-3)
    G = discounted_returns(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 1, 0, 0]), 1.0)
    np.testing.assert_allclose(G, [3.0, 2.0, 7.0, 4.0], rtol=0, atol=1e-15)


def test_nothing_is_bootstrapped_past_the_end():
    # an unfinished last episode: its last return is just its reward (no value added)
    np.testing.assert_array_equal(discounted_returns(np.array([5.0]), np.array([0]), 0.9), [5.0])
    np.testing.assert_allclose(discounted_returns(np.array([1.0, 1.0]), np.array([0, 0]), 0.9), [1.9, 1.0],
                               rtol=0, atol=1e-15)


def test_every_step_done_gives_the_rewards_for_any_gamma():
    # each step is its own one-step episode
    rewards = np.array([0.3, -0.7, 1.1])
    np.testing.assert_array_equal(discounted_returns(rewards, np.ones(3), 0.99), rewards)


@pytest.mark.parametrize("seed", range(5))
def test_matches_the_explicit_double_sum(seed):
    # the backward recursion equals the definition, on random episodes of random lengths
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 40))
    rewards, dones, gamma = rng.normal(size=T), rng.random(T) < 0.2, float(rng.uniform())
    np.testing.assert_allclose(discounted_returns(rewards, dones, gamma), explicit_returns(rewards, dones, gamma),
                               rtol=1e-12, atol=1e-12)


def test_bool_and_float_dones_agree_and_inputs_are_untouched():
    # dones may be bools or 0/1 numbers; the function must not write into its inputs
    rng = np.random.default_rng(0)
    rewards, dones = rng.normal(size=20), rng.random(20) < 0.3
    kept = rewards.copy(), dones.copy()
    G = discounted_returns(rewards, dones, 0.9)
    assert G.dtype == np.float64 and G.shape == (20,)
    np.testing.assert_array_equal(G, discounted_returns(rewards, dones.astype(float), 0.9))
    np.testing.assert_array_equal(rewards, kept[0])
    np.testing.assert_array_equal(dones, kept[1])


@pytest.mark.parametrize("gamma", [-0.1, 1.5, np.array([0.9])])
def test_gamma_outside_unit_interval_is_rejected(gamma):
    # the error names the argument
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns(np.ones(3), np.zeros(3), gamma)


def test_bad_shapes_are_rejected():
    # rewards must be (T,), dones the same shape
    with pytest.raises(ValueError, match="rewards"):
        discounted_returns(np.ones((2, 3)), np.zeros((2, 3)), 0.9)
    with pytest.raises(ValueError, match="dones"):
        discounted_returns(np.ones(3), np.zeros(4), 0.9)
