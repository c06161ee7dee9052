"""Unit tests of rlllm_course.basics: the episode loop, Monte Carlo values, Bellman backups."""

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")  # draw off-screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rlllm_course import basics  # noqa: E402
from rlllm_course.grading import ReferenceUsedError, reference_disabled  # noqa: E402
from rlllm_course.plots import basics as plots  # noqa: E402

# A 2-state chain: 0 -> 1 pays 1, then 1 -> end pays 2.  V(1) = 2, V(0) = 1 + gamma * 2.
CHAIN = {0: {0: [(1.0, 1, 1.0, False)]}, 1: {0: [(1.0, 1, 2.0, True)]}}
# One state that pays 1 and stays, or ends with 0, with probability 1/2 each.  V = 0.5 / (1 - 0.5 gamma).
COIN = {0: {0: [(0.5, 0, 1.0, False), (0.5, 0, 0.0, True)]}}


def lake(**kwargs):
    return gym.make("FrozenLake-v1", **kwargs)


def random_policy(n_actions, seed):
    rng = np.random.default_rng(seed)
    return lambda obs: int(rng.integers(n_actions))


# --- run_episode ---------------------------------------------------------------------

def test_run_episode_scripted_walk_to_the_goal():
    # non-slippery ice: down, down, right, right, down, right visits 4, 8, 9, 10, 14, then the goal 15
    script = iter([1, 1, 2, 2, 1, 2])
    ep = basics.run_episode(lake(is_slippery=False, render_mode="rgb_array"), lambda obs: next(script),
                            seed=0, render=True)
    assert list(ep["obs"]) == [0, 4, 8, 9, 10, 14, 15]
    assert list(ep["actions"]) == [1, 1, 2, 2, 1, 2]
    np.testing.assert_array_equal(ep["rewards"], [0, 0, 0, 0, 0, 1])  # reward follows its action
    assert ep["rewards"].dtype == np.float64
    assert ep["terminated"] is True and ep["truncated"] is False
    assert len(ep["frames"]) == 7 and ep["frames"][0].shape == (256, 256, 3)  # after reset + each step


def test_run_episode_hole_terminates_with_zero_reward():
    # straight down from the start falls into the hole at 12 after 3 steps
    ep = basics.run_episode(lake(is_slippery=False), lambda obs: 1, seed=0)
    assert list(ep["obs"]) == [0, 4, 8, 12] and ep["rewards"].sum() == 0 and ep["terminated"]


def test_run_episode_time_limit_truncates():
    # pushing right into the wall forever: the 100-step TimeLimit cuts it, not a terminal state
    ep = basics.run_episode(lake(is_slippery=False), lambda obs: 2, seed=0)
    assert len(ep["actions"]) == 100 and len(ep["obs"]) == 101
    assert ep["truncated"] is True and ep["terminated"] is False and ep["frames"] == []


def test_run_episode_calls_the_policy_once_per_step_on_the_current_obs():
    # the policy sees obs[t] and is called exactly T times
    seen = []
    inner = random_policy(2, 0)

    def policy(obs):
        seen.append(obs.copy())
        return inner(obs)

    ep = basics.run_episode(gym.make("CartPole-v1"), policy, seed=3)
    assert len(seen) == len(ep["actions"])
    np.testing.assert_array_equal(np.array(seen), ep["obs"][:-1])
    assert ep["obs"].shape == (len(ep["actions"]) + 1, 4)


def test_run_episode_same_seed_same_episode():
    # the env seed and a seeded policy fix the slippery trajectory
    a = basics.run_episode(lake(), random_policy(4, 7), seed=5)
    b = basics.run_episode(lake(), random_policy(4, 7), seed=5)
    np.testing.assert_array_equal(a["obs"], b["obs"])
    np.testing.assert_array_equal(a["actions"], b["actions"])


def test_run_episode_bad_inputs_name_the_argument():
    with pytest.raises(TypeError, match="policy"):
        basics.run_episode(lake(), policy=3)
    with pytest.raises(ValueError, match="render_mode"):  # render needs rgb_array frames
        basics.run_episode(lake(), lambda obs: 0, render=True)


# --- mc_value_estimate ---------------------------------------------------------------

EPISODES = [{"obs": np.array([0, 1, 0, 2]), "rewards": np.array([0.0, 0.0, 1.0])},
            {"obs": np.array([0, 3]), "rewards": np.array([2.0])}]


def test_mc_every_visit_by_hand():
    # gamma=0.5: episode 1 returns [0.25, 0.5, 1.0] at states [0, 1, 0]; episode 2 returns [2.0] at 0
    V = basics.mc_value_estimate(EPISODES, 4, 0.5)
    np.testing.assert_allclose(V, [(0.25 + 1.0 + 2.0) / 3, 0.5, 0.0, 0.0], rtol=0, atol=1e-15)


def test_mc_first_visit_by_hand():
    # only the first visit of state 0 in episode 1 counts (G = 0.25), so V(0) = (0.25 + 2) / 2
    V = basics.mc_value_estimate(EPISODES, 4, 0.5, first_visit=True)
    np.testing.assert_allclose(V, [1.125, 0.5, 0.0, 0.0], rtol=0, atol=1e-15)


def test_mc_gamma_zero_averages_immediate_rewards_and_gamma_one_sums():
    # gamma=0: V(0) = mean(0, 1, 2); gamma=1: V(0) = mean(1, 1, 2), V(1) = 1
    np.testing.assert_allclose(basics.mc_value_estimate(EPISODES, 4, 0.0)[:2], [1.0, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(basics.mc_value_estimate(EPISODES, 4, 1.0)[:2], [4 / 3, 1.0], rtol=0, atol=1e-15)


def test_mc_first_and_every_visit_agree_without_revisits():
    # if no state repeats within an episode the two estimators are the same average
    rng = np.random.default_rng(0)
    episodes = [{"obs": rng.permutation(10)[:T + 1], "rewards": rng.normal(size=T)} for T in range(1, 9)]
    np.testing.assert_allclose(basics.mc_value_estimate(episodes, 12, 0.9),
                               basics.mc_value_estimate(episodes, 12, 0.9, first_visit=True), rtol=0, atol=1e-15)


def test_mc_converges_to_the_exact_value_on_frozenlake():
    # 3000 random episodes: the standard error of V(s) is below 0.01 on the often visited squares
    env, policy = lake(), random_policy(4, 0)
    episodes = [basics.run_episode(env, policy, seed=i) for i in range(3000)]
    V_exact = basics.exact_value(env.unwrapped.P, np.full((16, 4), 0.25), 0.99)
    for first_visit in [False, True]:
        V = basics.mc_value_estimate(episodes, 16, 0.99, first_visit=first_visit)
        assert abs(V[0] - V_exact[0]) < 0.005  # the start, visited in every episode
        assert np.abs(V - V_exact).max() < 0.05
    assert np.all(V[[5, 7, 11, 12, 15]] == 0)  # holes and goal: no action is ever taken there


def test_mc_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="gamma"):
        basics.mc_value_estimate(EPISODES, 4, 1.2)
    with pytest.raises(ValueError, match="n_states"):
        basics.mc_value_estimate(EPISODES, 0, 0.9)
    with pytest.raises(ValueError, match="episodes"):  # obs must be one longer than rewards
        basics.mc_value_estimate([{"obs": np.array([0, 1]), "rewards": np.array([1.0, 1.0])}], 2, 0.9)


def test_mc_error_curve_is_the_rms_error_and_falls():
    # one block of all episodes gives the RMS error of the full estimate; more episodes, less error
    env, policy = lake(), random_policy(4, 1)
    episodes = [basics.run_episode(env, policy, seed=i) for i in range(2000)]
    V_exact = basics.exact_value(env.unwrapped.P, np.full((16, 4), 0.25), 0.99)
    full = basics.mc_value_estimate(episodes, 16, 0.99)
    errors = basics.mc_error_curve(episodes, V_exact, 0.99, [20, 200, 2000])
    assert errors[-1] == pytest.approx(np.sqrt(np.mean((full - V_exact) ** 2)), rel=1e-12)
    assert errors[0] > errors[1] > errors[2]
    with pytest.raises(ValueError, match="sizes"):
        basics.mc_error_curve(episodes, V_exact, 0.99, [10, 5000])


# --- q_from_v and exact_value ----------------------------------------------------------

def test_q_from_v_non_slippery_lake_by_hand():
    P, V = lake(is_slippery=False).unwrapped.P, np.arange(16) / 10
    Q = basics.q_from_v(P, V, 0.9)
    assert Q.shape == (16, 4)
    assert Q[0, 2] == pytest.approx(0.9 * 0.1, abs=1e-15)  # right: reward 0, then gamma * V(1)
    assert Q[0, 0] == pytest.approx(0.0, abs=1e-15)         # left: the wall keeps the agent on 0
    assert Q[14, 2] == pytest.approx(1.0, abs=1e-15)        # onto the goal: reward 1, no V(15) after the end
    np.testing.assert_array_equal(Q[5], 0.0)                # a hole is terminal


def test_q_from_v_slippery_lake_weights_outcomes():
    # right from 14 slides to 14, 15 (goal, reward 1) or 10 with probability 1/3 each
    V = np.arange(16) / 10
    Q = basics.q_from_v(lake().unwrapped.P, V, 0.9)
    assert Q[14, 2] == pytest.approx((0.9 * 1.4 + 1.0 + 0.9 * 1.0) / 3, abs=1e-15)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
def test_exact_value_small_mdps_by_hand(gamma):
    # closed forms stated next to CHAIN and COIN
    np.testing.assert_allclose(basics.exact_value(CHAIN, np.ones((2, 1)), gamma), [1 + 2 * gamma, 2],
                               rtol=1e-14)
    np.testing.assert_allclose(basics.exact_value(COIN, np.ones((1, 1)), gamma), [0.5 / (1 - 0.5 * gamma)],
                               rtol=1e-14)
    # and the backup of the exact V gives the same numbers as Q (one action per state)
    np.testing.assert_allclose(basics.q_from_v(COIN, [0.5 / (1 - 0.5 * gamma)], gamma)[0, 0],
                               0.5 + 0.5 * gamma * 0.5 / (1 - 0.5 * gamma), rtol=1e-14)


@pytest.mark.parametrize("seed", range(3))
def test_bellman_consistency_v_is_the_policy_average_of_q(seed):
    # V^pi = sum_a pi(a|s) Q^pi(s, a) with Q^pi = q_from_v(V^pi), for random policies on the slippery lake
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(4), size=16)  # (16, 4)
    P = lake().unwrapped.P
    V = basics.exact_value(P, pi, 0.95)
    np.testing.assert_allclose((pi * basics.q_from_v(P, V, 0.95)).sum(axis=1), V, rtol=1e-12, atol=1e-14)


def test_greedy_on_q_improves_the_random_policy():
    # policy improvement theorem: acting greedily on Q^pi is at least as good in every state
    P, pi = lake().unwrapped.P, np.full((16, 4), 0.25)
    V = basics.exact_value(P, pi, 0.99)
    V_greedy = basics.exact_value(P, np.eye(4)[basics.q_from_v(P, V, 0.99).argmax(axis=1)], 0.99)
    assert np.all(V_greedy >= V - 1e-12) and V_greedy[0] > 10 * V[0]


def test_q_from_v_and_exact_value_bad_inputs_name_the_argument():
    P = lake().unwrapped.P
    with pytest.raises(ValueError, match="V"):
        basics.q_from_v(P, np.zeros(15), 0.9)
    with pytest.raises(ValueError, match="gamma"):
        basics.q_from_v(P, np.zeros(16), -0.5)
    with pytest.raises(ValueError, match="pi"):
        basics.exact_value(P, np.full((16, 3), 1 / 3), 0.9)
    with pytest.raises(ValueError, match="pi"):
        basics.exact_value(P, np.full((16, 4), 0.3), 0.9)  # rows do not sum to 1


# --- value_iteration ---------------------------------------------------------------------

@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9])
def test_value_iteration_small_mdps_by_hand(gamma):
    # one action per state: Q* is the value of the only policy, the closed forms above
    np.testing.assert_allclose(basics.value_iteration(CHAIN, gamma, tol=1e-14)[:, 0], [1 + 2 * gamma, 2],
                               rtol=1e-12)
    np.testing.assert_allclose(basics.value_iteration(COIN, gamma, tol=1e-14)[0, 0], 0.5 / (1 - 0.5 * gamma),
                               rtol=1e-12)


def test_value_iteration_solves_the_bellman_optimality_equation_on_the_lake():
    # Q* = backup of max_a Q*, and its greedy policy's exact value is max_a Q* in every state
    P = lake().unwrapped.P
    Q = basics.value_iteration(P, 0.99, tol=1e-13)
    np.testing.assert_allclose(basics.q_from_v(P, Q.max(axis=1), 0.99), Q, rtol=0, atol=1e-10)
    V_greedy = basics.exact_value(P, np.eye(4)[Q.argmax(axis=1)], 0.99)
    np.testing.assert_allclose(V_greedy, Q.max(axis=1), rtol=0, atol=1e-9)
    assert Q[0].argmax() == 0 and Q[0, 0] - np.sort(Q[0])[-2] > 0.01  # left at the start, by a clear margin


def test_value_iteration_beats_every_policy_value():
    # Q* >= Q^pi for any pi (here random ones): the optimum is an upper bound
    P = lake().unwrapped.P
    Q_star = basics.value_iteration(P, 0.95)
    rng = np.random.default_rng(0)
    for _ in range(3):
        pi = rng.dirichlet(np.ones(4), size=16)
        Q_pi = basics.q_from_v(P, basics.exact_value(P, pi, 0.95), 0.95)
        assert np.all(Q_pi <= Q_star + 1e-9)


def test_value_iteration_undiscounted_cliff_is_minus_the_steps_to_go():
    # CliffWalking, gamma = 1: the start is 13 steps from the goal along the edge, Q*(start, up) = -13
    Q = basics.value_iteration(gym.make("CliffWalking-v1").unwrapped.P, 1.0)
    assert Q[36].max() == pytest.approx(-13.0, abs=1e-9) and Q[36].argmax() == 0
    assert Q[36, 1] == pytest.approx(-100 - 13, abs=1e-9)  # right: into the cliff, back to the start


def test_value_iteration_bad_inputs():
    with pytest.raises(ValueError, match="gamma"):
        basics.value_iteration(CHAIN, 1.5)
    with pytest.raises(ValueError, match="tol"):
        basics.value_iteration(CHAIN, 0.9, tol=0)
    with pytest.raises(RuntimeError, match="max_iterations"):
        basics.value_iteration(COIN, 0.999, tol=1e-15, max_iterations=3)


# --- grading and pictures ---------------------------------------------------------------

def test_the_module_can_be_disabled_for_the_hidden_tests():
    # the notebook's hidden tests disarm every function of basics; none may be a closure
    with pytest.raises(ReferenceUsedError):  # the guard also fails the block when its call is caught inside
        with reference_disabled(basics):
            basics.q_from_v(CHAIN, [0.0, 0.0], 0.9)
    assert basics.q_from_v(CHAIN, [0.0, 0.0], 0.9).shape == (2, 1)  # restored afterwards


def test_plots_draw():
    P, desc = lake().unwrapped.P, lake().unwrapped.desc
    V = basics.exact_value(P, np.full((16, 4), 0.25), 0.99)
    plots.agent_env_loop()
    plots.agent_families()
    fig, axes = plt.subplots(1, 5)
    plots.discount_weights(axes[0], [0.5, 0.9, 1.0])
    plots.returns_along_episodes(axes[1], np.ones(6), np.array([0, 0, 1, 0, 0, 1]), {0.9: np.ones(6)})
    plots.value_grid(axes[2], V, desc, pi=np.full((16, 4), 0.25))
    plots.q_grid(axes[3], basics.q_from_v(P, V, 0.99), desc)
    plots.mc_convergence(axes[4], [10, 100], [0.1, 0.03])
    plt.close("all")
