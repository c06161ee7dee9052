"""k-step advantages: by hand, the k = 1 / k >= T limits, GAE as their average, bad inputs."""

import numpy as np
import pytest

from rlllm_course.returns import gae, kstep_advantages, td_residuals

# The small trajectory of test_returns_gae.py (gamma = 0.9); deltas 1.4, 2.35, 3.3 with last_value 2.
REWARDS = [1.0, 2.0, 3.0]
VALUES = [0.5, 1.0, 1.5]
GAMMA = 0.9


def random_trajectory(rng, shape, p_done=0.15):
    rewards, values = rng.normal(size=shape), rng.normal(size=shape)
    dones = rng.random(shape) < p_done
    truncated = dones & (rng.random(shape) < 0.5)
    return rewards, values, dones, rng.normal(size=shape[1:]), truncated, rng.normal(size=shape)


def test_kstep_by_hand():
    # k = 2: A_0 = delta_0 + 0.9 delta_1, A_1 = delta_1 + 0.9 delta_2, A_2 = delta_2 (no more data)
    advantages = kstep_advantages(REWARDS, VALUES, [0, 0, 0], 2.0, GAMMA, 2)
    np.testing.assert_allclose(advantages, [1.4 + 0.9 * 2.35, 2.35 + 0.9 * 3.3, 3.3], rtol=1e-12)


def test_kstep_is_kstep_return_minus_value():
    # the telescoped form: r_0 + gamma r_1 + gamma^2 V(s_2) - V(s_0)
    advantages = kstep_advantages(REWARDS, VALUES, [0, 0, 0], 2.0, GAMMA, 2)
    assert advantages[0] == pytest.approx(1.0 + 0.9 * 2.0 + 0.81 * 1.5 - 0.5, abs=1e-12)


def test_kstep_stops_at_a_done_and_ignores_last_value_after_it():
    # step 1 terminates: A_0 = delta_0 + 0.9 (r_1 - V_1) whatever k; step 2 still bootstraps from last_value
    for k in (2, 3, 10):
        advantages = kstep_advantages(REWARDS, VALUES, [0, 1, 0], 2.0, GAMMA, k)
        np.testing.assert_allclose(advantages, [1.4 + 0.9 * 1.0, 1.0, 3.3], rtol=1e-12)
    advantages = kstep_advantages(REWARDS, VALUES, [0, 0, 1], 100.0, GAMMA, 3)  # last step terminal
    np.testing.assert_allclose(advantages[2], 3.0 - 1.5, rtol=1e-12)


def test_kstep_truncation_bootstraps_from_final_value():
    # step 1 hit a time limit with V(final obs) = 4: delta_1 = 2 + 0.9 * 4 - 1 = 4.6, nothing after it
    advantages = kstep_advantages(REWARDS, VALUES, [0, 1, 0], 2.0, GAMMA, 3, [0, 1, 0], [0.0, 4.0, 0.0])
    np.testing.assert_allclose(advantages, [1.4 + 0.9 * 4.6, 4.6, 3.3], rtol=1e-12)


@pytest.mark.parametrize("shape", [(1,), (40,), (40, 3)])
def test_kstep_limits_match_gae(shape):
    # k = 1 is the TD residual (gae with lam = 0); k >= T is the Monte Carlo advantage (lam = 1)
    rng = np.random.default_rng(0)
    r, v, d, lv, tr, fv = random_trajectory(rng, shape)
    for gamma in (0.0, 0.95, 1.0):
        np.testing.assert_allclose(kstep_advantages(r, v, d, lv, gamma, 1, tr, fv),
                                   gae(r, v, d, lv, gamma, 0.0, tr, fv)[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(kstep_advantages(r, v, d, lv, gamma, shape[0] + 5, tr, fv),
                                   gae(r, v, d, lv, gamma, 1.0, tr, fv)[0], rtol=1e-10, atol=1e-10)


def test_kstep_k1_is_td_residual_without_done():
    r, v = np.array([1.0, -2.0]), np.array([0.3, 0.7])
    np.testing.assert_allclose(kstep_advantages(r, v, [0, 0], 5.0, 0.9, 1),
                               td_residuals(r, v, [0.7, 5.0], [0, 0], 0.9), rtol=1e-12)


def test_gae_is_the_exponential_average_of_kstep_advantages():
    # (1 - lam) sum_{k<K} lam^(k-1) A^(k) + lam^(K-1) A^(K), with K >= T so that A^(K) = A^(inf)
    rng = np.random.default_rng(1)
    r, v, d, lv, tr, fv = random_trajectory(rng, (30, 2))
    lam, K = 0.8, 31
    mix = sum((1 - lam) * lam ** (k - 1) * kstep_advantages(r, v, d, lv, 0.97, k, tr, fv) for k in range(1, K))
    mix = mix + lam ** (K - 1) * kstep_advantages(r, v, d, lv, 0.97, K, tr, fv)
    np.testing.assert_allclose(mix, gae(r, v, d, lv, 0.97, lam, tr, fv)[0], rtol=1e-10, atol=1e-10)


def test_kstep_rejects_bad_inputs():
    with pytest.raises(ValueError, match="k"):
        kstep_advantages(REWARDS, VALUES, [0, 0, 0], 0.0, GAMMA, 0)
    with pytest.raises(ValueError, match="k"):
        kstep_advantages(REWARDS, VALUES, [0, 0, 0], 0.0, GAMMA, 2.0)  # an int, not a float
    with pytest.raises(ValueError, match="values"):
        kstep_advantages(REWARDS, [1.0, 2.0], [0, 0, 0], 0.0, GAMMA, 2)
    with pytest.raises(ValueError, match="last_value"):
        kstep_advantages(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(3), GAMMA, 2)
    with pytest.raises(ValueError, match="gamma"):
        kstep_advantages(REWARDS, VALUES, [0, 0, 0], 0.0, 1.5, 2)
    with pytest.raises(ValueError, match="truncated"):
        kstep_advantages(REWARDS, VALUES, [0, 0, 0], 0.0, GAMMA, 2, truncated=[0, 1, 0])
    with pytest.raises(ValueError, match="subset"):
        kstep_advantages(REWARDS, VALUES, [0, 0, 0], 0.0, GAMMA, 2, [0, 1, 0], [0.0, 1.0, 0.0])
