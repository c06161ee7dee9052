"""Unit and behaviour tests of rlllm_course.tabular (and its pictures)."""

from dataclasses import replace

import gymnasium as gym
import matplotlib
import numpy as np
import pytest
from gymnasium.spaces import Discrete
from gymnasium.wrappers import TimeLimit

from rlllm_course.tabular import (CONFIGS, TARGETS, GreedyEvaluator, QLearningConfig,
                                  epsilon_greedy, epsilon_greedy_probs, evaluate_policy, greedy_policy, make_env,
                                  q_learning_update, train_q_learning)

matplotlib.use("Agg")


class OneState(gym.Env):
    """One state, one action, reward 1 per step; ends by termination or not at all."""

    observation_space, action_space = Discrete(1), Discrete(1)

    def __init__(self, terminate):
        self.terminate = terminate

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, 1.0, self.terminate, False, {}


def frequencies(Q, state, epsilon, n, seed=0):
    rng = np.random.default_rng(seed)
    actions = [epsilon_greedy(Q, state, epsilon, rng) for _ in range(n)]
    return np.bincount(actions, minlength=Q.shape[1]) / n


# --- epsilon_greedy -------------------------------------------------------------------

def test_epsilon_zero_always_takes_the_unique_greedy_action():
    # epsilon=0 never explores: with one maximum the action is fixed
    Q = np.array([[0.0, 2.0, 1.0, -1.0]])
    assert frequencies(Q, 0, 0.0, 500).tolist() == [0, 1, 0, 0]


def test_greedy_ties_are_broken_uniformly_at_random():
    # actions 1 and 3 tie: each ~1/2 (std 0.008 at n=4000), never 0 or 2;
    # argmax's lowest-index rule would give [0, 1, 0, 0]
    Q = np.array([[0.0, 5.0, 1.0, 5.0]])
    freq = frequencies(Q, 0, 0.0, 4000)
    assert freq[0] == freq[2] == 0
    assert abs(freq[1] - 0.5) < 0.03


def test_epsilon_one_is_uniform_over_all_actions():
    # exploring draws among all actions, the greedy one included (std 0.005 at n=8000)
    Q = np.array([[0.0, 9.0, 0.0, 0.0]])
    np.testing.assert_allclose(frequencies(Q, 0, 1.0, 8000), 0.25, atol=0.02)


def test_greedy_probability_is_one_minus_epsilon_plus_epsilon_over_n():
    # 1 - 0.2 + 0.2/4 = 0.85; the "explore among non-greedy actions" convention gives 0.80
    # (std 0.0025 at n=20000 tells them apart)
    Q = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.5, 0.2]])
    assert abs(frequencies(Q, 1, 0.2, 20_000)[1] - 0.85) < 0.01


def test_epsilon_greedy_follows_its_documented_random_stream():
    # u = rng.random(); explore if u < epsilon with rng.integers(n), else rng.choice(ties)
    Q = np.array([[3.0, 1.0, 3.0]])
    rng, mirror = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(200):
        got = epsilon_greedy(Q, 0, 0.4, rng)
        want = int(mirror.integers(3)) if mirror.random() < 0.4 else int(mirror.choice([0, 2]))
        assert got == want
    assert rng.random() == mirror.random()  # no hidden extra draws


def test_epsilon_greedy_returns_an_int_and_leaves_q_alone():
    Q = np.array([[1.0, 2.0]])
    action = epsilon_greedy(Q, 0, 0.5, np.random.default_rng(0))
    assert type(action) is int
    assert Q.tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize("epsilon", [-0.1, 1.5])
def test_epsilon_outside_unit_interval_is_rejected_by_name(epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_greedy(np.zeros((2, 2)), 0, epsilon, np.random.default_rng(0))


def test_epsilon_greedy_rejects_a_q_row():
    # a single row (n_actions,) is a common slip for Q: (n_states, n_actions)
    with pytest.raises(ValueError, match="Q"):
        epsilon_greedy(np.zeros(4), 0, 0.1, np.random.default_rng(0))


def test_epsilon_greedy_probs_is_the_formula_and_matches_the_sampler():
    # ties share the greedy mass; every action keeps epsilon / n_actions
    Q = np.array([[0.0, 5.0, 1.0, 5.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    pi = epsilon_greedy_probs(Q, 0.3)
    np.testing.assert_allclose(pi, [[0.075, 0.425, 0.075, 0.425], [0.775, 0.075, 0.075, 0.075],
                                    [0.25, 0.25, 0.25, 0.25]], rtol=0, atol=1e-15)
    for state in range(3):  # the sampler draws with these probabilities (5 sigma at n = 20000)
        np.testing.assert_allclose(frequencies(Q, state, 0.3, 20_000), pi[state], atol=0.016)
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_greedy_probs(Q, -0.1)


# --- q_learning_update ------------------------------------------------------------------

def test_update_bootstraps_from_the_best_next_action():
    # target = -1 + 0.9 * max(1, 3) = 1.7; delta = 1.7 - 2 = -0.3; Q = 2 + 0.5 * -0.3
    Q = np.array([[0.0, 2.0], [1.0, 3.0]])
    delta = q_learning_update(Q, 0, 1, -1.0, 1, False, alpha=0.5, gamma=0.9)
    assert delta == pytest.approx(-0.3, abs=1e-12)
    np.testing.assert_allclose(Q, [[0.0, 1.85], [1.0, 3.0]], atol=1e-12)


def test_terminal_transition_does_not_bootstrap():
    # terminated: target = r = -1 alone; delta = -3; Q = 2 + 0.5 * -3 = 0.5
    Q = np.array([[0.0, 2.0], [1.0, 3.0]])
    delta = q_learning_update(Q, 0, 1, -1.0, 1, True, alpha=0.5, gamma=0.9)
    assert delta == pytest.approx(-3.0, abs=1e-12)
    np.testing.assert_allclose(Q, [[0.0, 0.5], [1.0, 3.0]], atol=1e-12)


def test_self_loop_uses_the_value_before_the_update():
    # s' = s (walking into a wall): target = 0 + 1 * max(2, 0) = 2; Q[0, 1] = 0 + 0.5 * 2
    Q = np.array([[2.0, 0.0]])
    q_learning_update(Q, 0, 1, 0.0, 0, False, alpha=0.5, gamma=1.0)
    np.testing.assert_allclose(Q, [[2.0, 1.0]], atol=1e-12)


def test_alpha_one_gamma_zero_sets_q_to_the_reward():
    # a full step with no future: Q(s, a) = r, whatever it was
    Q = np.full((3, 2), 7.0)
    q_learning_update(Q, 2, 0, 4.0, 1, False, alpha=1.0, gamma=0.0)
    assert Q[2, 0] == 4.0 and (np.delete(Q.ravel(), 4) == 7.0).all()


@pytest.mark.parametrize("kwargs, name", [
    (dict(alpha=0.0), "alpha"), (dict(alpha=-0.1), "alpha"),
    (dict(gamma=1.01), "gamma"), (dict(gamma=-0.5), "gamma"),
])
def test_update_rejects_bad_hyperparameters_by_name(kwargs, name):
    args = dict(alpha=0.1, gamma=0.9) | kwargs
    with pytest.raises(ValueError, match=name):
        q_learning_update(np.zeros((2, 2)), 0, 0, 1.0, 1, False, **args)


def test_update_rejects_a_three_dimensional_q():
    with pytest.raises(ValueError, match=r"Q must have shape \(n_states, n_actions\)"):
        q_learning_update(np.zeros((2, 2, 2)), 0, 0, 1.0, 1, False, 0.1, 0.9)


# --- train_q_learning ---------------------------------------------------------------------

def one_state_config(**kwargs):
    return QLearningConfig(episodes=10, alpha=1.0, gamma=0.5, epsilon_start=0.0,
                           epsilon_end=0.0, progress=False, **kwargs)


def test_truncation_bootstraps_and_termination_does_not():
    # reward 1 per step, every episode one step long. Truncated (time limit): with
    # alpha=1, Q_k = 1 + 0.5 Q_{k-1}, after 10 episodes sum_{k<10} 0.5^k = 1.998046875.
    # Terminated: Q = 1 exactly.
    truncated = train_q_learning(TimeLimit(OneState(terminate=False), 1), one_state_config())
    terminated = train_q_learning(OneState(terminate=True), one_state_config())
    assert truncated.Q[0, 0] == pytest.approx(1.998046875, abs=1e-12)
    assert terminated.Q[0, 0] == 1.0
    assert truncated.lengths.tolist() == [1] * 10 and truncated.returns.tolist() == [1.0] * 10


def test_training_is_reproducible_from_the_seed():
    # all randomness comes from config.seed (action rng and the first env.reset)
    config = replace(CONFIGS["FrozenLake-v1"], episodes=300, progress=False, seed=3)
    a = train_q_learning(make_env("FrozenLake-v1"), config)
    b = train_q_learning(make_env("FrozenLake-v1"), config)
    c = train_q_learning(make_env("FrozenLake-v1"), replace(config, seed=4))
    assert np.array_equal(a.Q, b.Q) and np.array_equal(a.returns, b.returns)
    assert not np.array_equal(a.Q, c.Q)


def test_training_result_is_consistent_with_frozenlake():
    config = replace(CONFIGS["FrozenLake-v1"], episodes=500, progress=False)
    calls = []
    result = train_q_learning(make_env("FrozenLake-v1"), config,
                              callback=lambda episode, Q: calls.append(episode))
    assert result.Q.shape == (16, 4)
    assert set(np.unique(result.returns)) <= {0.0, 1.0}  # reward 1 only at the goal
    assert result.lengths.min() >= 1 and result.lengths.max() <= 100  # 100-step time limit
    np.testing.assert_allclose(result.epsilons, [config.epsilon_at(i) for i in range(500)])
    assert calls == list(range(500))  # the callback sees every episode, in order
    # holes (5, 7, 11, 12) and the goal (15) are terminal: never the s of an update
    assert (result.Q[[5, 7, 11, 12, 15]] == 0).all()
    assert result.Q[14].max() > 0  # next to the goal: learned something


@pytest.mark.parametrize("field, value", [("gamma", 1.5), ("alpha", 0.0), ("epsilon_end", -0.1)])
def test_training_checks_its_config_once_by_name(field, value):
    # the loop uses unchecked cores, so a bad config must fail before the first step
    config = replace(QLearningConfig(episodes=1, progress=False), **{field: value})
    with pytest.raises(ValueError, match=f"config.{field}"):
        train_q_learning(make_env("FrozenLake-v1"), config)


def test_epsilon_decays_linearly_then_stays():
    config = QLearningConfig(episodes=100, epsilon_start=1.0, epsilon_end=0.1, decay_fraction=0.5)
    got = [config.epsilon_at(i) for i in (0, 25, 50, 99)]
    np.testing.assert_allclose(got, [1.0, 0.55, 0.1, 0.1], atol=1e-12)


# --- greedy_policy and evaluate_policy ---------------------------------------------------

def test_greedy_policy_takes_the_argmax_with_ties_to_the_lowest_index():
    # row 1 ties actions 0 and 2: the policy table is deterministic, lowest index wins
    Q = np.array([[0.0, 1.0, 0.5], [2.0, 1.0, 2.0]])
    policy = greedy_policy(Q)
    assert policy.tolist() == [1, 0] and policy.shape == (2,)


def test_greedy_policy_rejects_a_q_row():
    with pytest.raises(ValueError, match="Q"):
        greedy_policy(np.zeros(4))


def test_known_path_always_reaches_the_goal_on_non_slippery_ice():
    # right, right, down, down, down, right avoids every hole of the 4x4 map
    env = gym.make("FrozenLake-v1", is_slippery=False)
    policy = np.zeros(16, dtype=int)
    policy[[0, 1, 2, 6, 10, 14]] = [2, 2, 1, 1, 1, 2]
    assert evaluate_policy(env, policy, episodes=5).tolist() == [1.0] * 5


def test_always_left_never_succeeds_on_slippery_ice():
    # pushing left from column 0 slips only up or down: the hole at (3, 0) or the time limit
    returns = evaluate_policy(make_env("FrozenLake-v1"), np.zeros(16, dtype=int), episodes=200)
    assert returns.shape == (200,) and (returns == 0).all()


def test_walking_along_the_cliff_edge_returns_minus_13():
    # up, 11 x right, down: the optimal path, 13 steps at -1
    policy = np.ones(48, dtype=int)  # right
    policy[36], policy[35] = 0, 2  # up from the start, down into the goal
    assert evaluate_policy(make_env("CliffWalking-v1"), policy, episodes=3).tolist() == [-13.0] * 3


def test_an_endless_policy_is_cut_by_the_time_limit():
    # "always south" never delivers: 200 steps (Taxi's limit) at -1 each
    assert evaluate_policy(make_env("Taxi-v4"), np.zeros(500, dtype=int), 2).tolist() == [-200.0] * 2
    # CliffWalking has no limit of its own; make_env adds 200 steps
    assert evaluate_policy(make_env("CliffWalking-v1"), np.zeros(48, dtype=int), 1)[0] == -200.0


def test_evaluation_is_seeded():
    # one seed -> one sequence of episodes; another seed -> others (random walk on the lake)
    policy = np.random.default_rng(0).integers(4, size=16)
    env = make_env("FrozenLake-v1")
    a, b = evaluate_policy(env, policy, 300, seed=1), evaluate_policy(env, policy, 300, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, evaluate_policy(env, policy, 300, seed=2))


def test_evaluate_policy_rejects_a_q_table_as_policy():
    with pytest.raises(ValueError, match="policy"):
        evaluate_policy(make_env("FrozenLake-v1"), np.zeros((16, 4)), 1)


def test_greedy_evaluator_scores_every_n_episodes():
    config = replace(CONFIGS["CliffWalking-v1"], episodes=60, progress=False)
    evaluator = GreedyEvaluator(make_env("CliffWalking-v1"), every=20, episodes=2)
    result = train_q_learning(make_env("CliffWalking-v1"), config, callback=evaluator)
    assert evaluator.episodes == [20, 40, 60]
    final = evaluate_policy(make_env("CliffWalking-v1"), greedy_policy(result.Q), 2, seed=10_000)
    assert evaluator.scores[-1] == final.mean()
    assert 0 < evaluator.train_seconds[0] <= evaluator.train_seconds[-1]


# --- behaviour: the course's targets ------------------------------------------------------

@pytest.mark.parametrize("env_id", list(CONFIGS))
def test_training_reaches_the_target(env_id):
    # one seed here (~15 s in all); benchmarks/q_learning.py checks three
    config = replace(CONFIGS[env_id], progress=False)
    result = train_q_learning(make_env(env_id), config)
    score = evaluate_policy(make_env(env_id), greedy_policy(result.Q), 1000, seed=10_000).mean()
    assert score >= TARGETS[env_id], f"{env_id}: greedy score {score:.3f} < {TARGETS[env_id]}"


# --- pictures -------------------------------------------------------------------------------

@pytest.mark.parametrize("env_id, arrows", [("FrozenLake-v1", 11), ("CliffWalking-v1", 37)])
def test_heatmap_draws_one_arrow_per_non_terminal_cell(env_id, arrows):
    # FrozenLake: 16 cells - 4 holes - goal; CliffWalking: 48 - 10 cliff - goal
    import matplotlib.pyplot as plt

    from rlllm_course.plots.tabular import q_heatmap
    env = make_env(env_id)
    fig, ax = plt.subplots()
    q_heatmap(ax, np.random.default_rng(0).normal(size=(env.observation_space.n, 4)), env)
    assert sum(1 for t in ax.texts if getattr(t, "arrow_patch", None)) == arrows
    plt.close(fig)


def test_heatmap_colour_range_can_be_shared():
    # two tables drawn with the same vmin, vmax get the same colour for the same value
    import matplotlib.pyplot as plt

    from rlllm_course.plots.tabular import q_heatmap
    env = make_env("FrozenLake-v1")
    fig, axes = plt.subplots(1, 2)
    ims = [q_heatmap(ax, scale * np.linspace(0, 1, 64).reshape(16, 4), env, vmin=0, vmax=1)
           for ax, scale in zip(axes, [0.5, 1.0])]
    assert all(im.norm.vmin == 0 and im.norm.vmax == 1 for im in ims)
    plt.close(fig)
