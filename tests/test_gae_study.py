"""The GAE bias/variance study: CartPole physics, rollouts, branches, the estimates."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlllm_course import gae_study as gs
from rlllm_course.agents import ActorCritic
from rlllm_course.returns import gae


@pytest.fixture(scope="module")
def agent():
    torch.manual_seed(0)
    return ActorCritic(4, 2)


def test_cartpole_step_matches_gymnasium():
    # same physics as gymnasium, step for step, including the terminating step
    env = gym.make("CartPole-v1").unwrapped
    rng = np.random.default_rng(0)
    for _ in range(200):
        state = rng.uniform(-0.3, 0.3, size=4) * [8, 3, 0.7, 3]
        action = int(rng.integers(2))
        env.reset(seed=0)
        env.state = state.copy()
        obs, _, term, _, _ = env.step(action)
        nxt, terminated = gs.cartpole_step(state[None], np.array([action]))
        np.testing.assert_allclose(nxt[0], env.state, rtol=0, atol=1e-12)
        assert terminated[0] == term


def test_collect_rollout_shapes_and_episode_ends(agent):
    ro = gs.collect_rollout(agent, num_envs=3, num_steps=40, seed=1)
    assert ro["obs"].shape == (40, 3, 4) and ro["last_value"].shape == (3,)
    for key in ("actions", "rewards", "dones", "truncated", "values", "final_values"):
        assert ro[key].shape == (40, 3), key
    assert ro["dones"].any(), "a random policy drops the pole within 40 steps"
    assert not (ro["truncated"] & ~ro["dones"]).any()
    # values are V(s_t) of the observations actually stored
    with torch.no_grad():
        v = agent.get_value(torch.as_tensor(ro["obs"][5])).numpy()
    np.testing.assert_allclose(ro["values"][5], v, rtol=1e-6)


def test_branch_rollouts_first_action_and_falls(agent):
    states = np.array([[0.0, 0.0, 0.05, 0.0], [0.1, -0.2, -0.1, 0.3]])
    br = gs.branch_rollouts(agent, states, continuations=5, horizon=60, seed=0)
    assert br["obs"].shape == (61, 2, 2, 5, 4) and br["rewards"].shape == (60, 2, 2, 5)
    np.testing.assert_allclose(br["obs"][0, :, 0, 0], states, atol=1e-6)
    # the first action is fixed: every continuation of (s, a) has the same first next state
    assert np.ptp(br["obs"][1], axis=-2).max() == 0
    nxt, _ = gs.cartpole_step(states, np.array([1, 1]))
    np.testing.assert_allclose(br["obs"][1, :, 1, 0], nxt, atol=1e-6)
    # a fallen pole earns nothing more and stays done
    dead = ~br["alive"][:-1]  # already down before step t
    assert (br["rewards"][dead] == 0).all() and br["dones"][dead].all()
    assert np.isclose(br["probs"].sum(-1), 1).all()


def test_lambda_advantages_are_gae_on_each_continuation(agent):
    br = gs.branch_rollouts(agent, np.zeros((1, 4)), continuations=2, horizon=30, seed=1)
    adv = gs.lambda_advantages(br, agent.critic, 0.9, [0.0, 0.7])
    v = gs.critic_values(agent.critic, br["obs"]) * br["alive"]  # (31, 1, 2, 2)
    col = (slice(None), 0, 1, 1)
    want = gae(br["rewards"][col], v[:-1][col], br["dones"][col], v[-1][0, 1, 1], 0.9, 0.7)[0][0]
    assert adv.shape == (2, 1, 2, 2)
    assert adv[1, 0, 1, 1] == pytest.approx(want, abs=1e-9)


def test_bias_variance_limits(agent):
    # lam = 0 on deterministic physics: the TD residual given (s, a) is fixed, variance 0;
    # lam = 1 over a horizon where every pole falls: unbiased for Q(s, a) - V_hat(s)
    states = np.array([[0.0, 0.0, 0.05, 0.0], [0.0, 0.5, -0.05, 0.2]])
    br = gs.branch_rollouts(agent, states, continuations=20, horizon=200, seed=2)
    assert not br["alive"][-1].any(), "a random policy drops the pole within 200 steps"
    adv = gs.lambda_advantages(br, agent.critic, 0.95, [0.0, 1.0])
    baseline = gs.critic_values(agent.critic, states.astype(np.float32))
    stats = gs.bias_variance(br, adv, baseline, 0.95)
    assert stats["variance"][0] == pytest.approx(0, abs=1e-9)
    assert stats["bias2"][1] == pytest.approx(0, abs=1e-9)
    assert stats["variance"][1] > 0 and stats["bias2"][0] > 0 and stats["truth_var"] > 0
