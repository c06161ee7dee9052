"""The exact policy gradient on a tiny MDP, and the run statistics of pg_study."""

import numpy as np
import torch

from rlllm_course import pg_study as ps

NEXT = np.array([[1, 2], [2, 0], [0, 1]])  # 3 states, 2 actions, deterministic


def test_enumerate_lists_every_action_sequence_once_with_its_states():
    states, actions = ps.enumerate_trajectories(NEXT, horizon=3, start=0)
    assert states.shape == actions.shape == (8, 3)  # 2**3 sequences
    assert len({tuple(a) for a in actions.tolist()}) == 8
    for s, a in zip(states.tolist(), actions.tolist()):
        assert s[0] == 0 and all(s[t + 1] == NEXT[s[t], a[t]] for t in range(2))


def test_probabilities_sum_to_one_and_objective_is_the_expected_return():
    torch.manual_seed(0)
    logits, rewards = torch.randn(3, 2), torch.randn(3, 2)
    states, actions = ps.enumerate_trajectories(NEXT, horizon=4)
    logp, r, prob = ps.trajectory_terms(logits, rewards, states, actions)
    assert torch.isclose(prob.sum(), torch.tensor(1.0), atol=1e-6)
    # a uniform policy: J is the plain average of the returns of all sequences
    J = ps.exact_objective(torch.zeros(3, 2), rewards, states, actions)
    assert torch.isclose(J, r.sum(-1).mean(), atol=1e-6)


def test_policy_gradient_theorem_holds_exactly():
    # grad J = E[sum_t grad log pi(a_t|s_t) R(tau)], the expectation an exact sum here
    torch.manual_seed(1)
    logits, rewards = torch.randn(3, 2, requires_grad=True), torch.randn(3, 2)
    states, actions = ps.enumerate_trajectories(NEXT, horizon=4)
    true, = torch.autograd.grad(ps.exact_objective(logits, rewards, states, actions), logits)
    logp, r, prob = ps.trajectory_terms(logits, rewards, states, actions)
    surrogate = (prob.detach() * (logp.sum(-1) * r.sum(-1))).sum()
    pg, = torch.autograd.grad(surrogate, logits)
    torch.testing.assert_close(pg, true, rtol=1e-5, atol=1e-6)


def test_update_sizes_and_steps_to_reach():
    history = {"step": [10, 30, 60], "episode/return": [1, 2, 3, 10, 10, 10],
               "episode/step": [5, 10, 20, 30, 45, 60]}
    np.testing.assert_array_equal(ps.update_sizes(history), [10, 20, 30])
    assert ps.steps_to_reach(history, 10, window=2) == 45  # episodes 4 and 5 average 10
    assert ps.steps_to_reach(history, 11, window=2) is None
    assert ps.steps_to_reach(history, 1, window=10) is None  # fewer episodes than the window
