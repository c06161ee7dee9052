"""The agent-environment loop, returns and values on small gymnasium tasks (lecture §1).

Conventions used across the course:
- An episode of T steps has observations ``obs[0..T]`` and actions, rewards
  ``actions[0..T-1]``, ``rewards[0..T-1]``: the agent sees ``obs[t]``, takes
  ``actions[t]``, then receives ``rewards[t]`` and sees ``obs[t+1]``.
  (Sutton & Barto call that reward r_{t+1}; here it shares the index of its action.)
- A tabular MDP (Markov decision process) is gymnasium's transition table ``P = env.unwrapped.P``:
  ``P[s][a]`` is a list of ``(prob, next_state, reward, terminated)``.
  A terminated transition ends the episode, so nothing after it is added to the return.
- A tabular policy ``pi`` is an (n_states, n_actions) table of probabilities pi(a|s).
"""

import numpy as np

from .checks import check_ndim, check_positive, check_unit_interval


def run_episode(env, policy, seed=None, render=False):
    """Play one episode of `policy` in `env`, from reset until terminated or truncated.

    env: a gymnasium environment (its TimeLimit wrapper bounds the length).
        ``render=True`` needs it made with ``render_mode="rgb_array"``.
    policy: callable ``policy(obs) -> action``, called exactly once per step, on
        the current observation (a random policy carries its own generator).
    seed: passed to ``env.reset(seed=seed)``; None continues the env's own stream.
    render: also return the frame ``env.render()`` after the reset and after every step.
    Returns a dict:
        "obs": (T+1, ...) array, obs[t] is seen before actions[t]; obs[T] is the last.
        "actions": (T,) array; "rewards": (T,) float64, rewards[t] follows actions[t].
        "terminated": bool, the episode reached a terminal state (a hole, the goal,
            the pole fell); "truncated": bool, it was cut by the time limit.
        "frames": list of T+1 arrays (H, W, 3) if render, else empty.
    """
    if not callable(policy):
        raise TypeError(f"policy must be a callable policy(obs) -> action, got {policy!r}")
    if render and env.render_mode != "rgb_array":
        raise ValueError(f'render=True needs env made with render_mode="rgb_array", got {env.render_mode!r}')
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards = [obs], [], []
    frames = [env.render()] if render else []
    terminated = truncated = False
    while not (terminated or truncated):
        action = policy(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        if render:
            frames.append(env.render())
    return {
        "obs": np.array(observations),
        "actions": np.array(actions),
        "rewards": np.array(rewards, dtype=np.float64),
        "terminated": bool(terminated),
        "truncated": bool(truncated),
        "frames": frames,
    }


def mc_value_estimate(episodes, n_states, gamma, first_visit=False):
    """Monte Carlo estimate of V(s): the average return observed from state s.

        V(s) ~ mean of G_t over the visits t with obs[t] = s,
        G_t = rewards[t] + gamma * G_{t+1} within each episode (G after the last step is 0).

    episodes: list of dicts with "obs" (T+1,) int states and "rewards" (T,), as
        returned by ``run_episode``. Visits are obs[0..T-1]; obs[T], where no
        action is taken, is not a visit. A truncated episode's return is used
        as it is (it is cut short, not bootstrapped).
    n_states: number of states; states are 0..n_states-1.
    gamma: discount factor in [0, 1].
    first_visit: False (every-visit MC) averages over all visits of s; True
        (first-visit MC) uses only the first visit of s in each episode.
    Returns V: (n_states,) float64; a state never visited gets 0 (so do terminal states).
    """
    check_unit_interval("gamma", gamma)
    if int(n_states) != n_states or n_states < 1:
        raise ValueError(f"n_states must be a positive integer, got {n_states!r}")
    totals = np.zeros(n_states)
    counts = np.zeros(n_states)
    for i, episode in enumerate(episodes):
        states, rewards = np.asarray(episode["obs"]), np.asarray(episode["rewards"], dtype=np.float64)
        if states.shape != (len(rewards) + 1,):
            raise ValueError(f"episodes[{i}]: obs must have shape (T+1,) for rewards of shape (T,), "
                             f"got {states.shape} and {rewards.shape}")
        G = 0.0
        for t in reversed(range(len(rewards))):  # G_t needs G_{t+1}: sweep backwards
            G = rewards[t] + gamma * G
            if first_visit and states[t] in states[:t]:
                continue  # an earlier visit of this state in this episode counts instead
            totals[states[t]] += G
            counts[states[t]] += 1
    return np.divide(totals, counts, out=np.zeros(n_states), where=counts > 0)


def mc_error_curve(episodes, V_true, gamma, sizes, max_blocks=10):
    """How the every-visit Monte Carlo error falls with the number of episodes n.

    For each n in `sizes`, the episodes are cut into disjoint blocks of n (at most
    `max_blocks` of them); each block gives an estimate, and its error is the root mean
    square over states, sqrt(mean_s (V_hat(s) - V_true(s))^2). Averaging over blocks
    smooths the curve without reusing an episode within one n.

    episodes: as for ``mc_value_estimate``; V_true: (n_states,) exact values.
    sizes: increasing block sizes, each at most len(episodes).
    Returns errors: (len(sizes),) float64.
    """
    V_true = np.asarray(V_true, dtype=np.float64)
    check_ndim("V_true", V_true, 1, "(n_states,)")
    if min(sizes) < 1 or max(sizes) > len(episodes):
        raise ValueError(f"sizes must lie in [1, len(episodes)] = [1, {len(episodes)}], got {list(sizes)}")
    errors = []
    for n in sizes:
        starts = range(0, min(max_blocks, len(episodes) // n) * n, n)
        rms = [np.sqrt(np.mean((mc_value_estimate(episodes[i:i + n], len(V_true), gamma) - V_true) ** 2))
               for i in starts]
        errors.append(np.mean(rms))
    return np.array(errors)


def q_from_v(P, V, gamma):
    """One Bellman backup: the action values of acting once, then following V.

        Q(s, a) = sum over (p, s', r, done) in P[s][a] of  p * (r + gamma * (1 - done) * V(s'))

    P: gymnasium transition table ``env.unwrapped.P`` (see the module docstring),
        n_states states 0..n_states-1, each with the same n_actions actions.
    V: (n_states,) state values.
    gamma: discount factor in [0, 1].
    Returns Q: (n_states, n_actions) float64. With V = V^pi this is Q^pi, and
    V^pi(s) = sum_a pi(a|s) Q^pi(s, a).
    """
    check_unit_interval("gamma", gamma)
    V = np.asarray(V, dtype=np.float64)
    check_ndim("V", V, 1, "(n_states,)")
    if len(V) != len(P):
        raise ValueError(f"V must have shape (n_states,) = ({len(P)},), got {V.shape}")
    Q = np.zeros((len(P), len(P[0])))
    for s in range(len(P)):
        for a in range(len(P[s])):
            Q[s, a] = sum(p * (r + gamma * (1.0 - done) * V[s_next]) for p, s_next, r, done in P[s][a])
    return Q


def _expected_tables(P):
    """Dense expected one-step tables of a gymnasium transition table.

    Returns (R, M): R (n_states, n_actions), the expected reward sum p r of one step;
    M (n_states, n_actions, n_states), M[s, a, s'] = sum p (1 - done) [next = s'],
    the probability of moving to s' without the episode ending.
    """
    n_states, n_actions = len(P), len(P[0])
    R = np.zeros((n_states, n_actions))
    M = np.zeros((n_states, n_actions, n_states))
    for s in range(n_states):
        for a in range(n_actions):
            for p, s_next, r, done in P[s][a]:  # an s' may be listed twice: the probabilities add
                R[s, a] += p * r
                M[s, a, s_next] += p * (1.0 - done)
    return R, M


def exact_value(P, pi, gamma):
    """V^pi exactly, by solving the Bellman equation V = r_pi + gamma * P_pi V.

    r_pi(s) = sum_a pi(a|s) sum p r, the expected reward of one step from s;
    P_pi(s, s') = sum_a pi(a|s) sum p (1 - done) [next = s'], terminal transitions
    dropped. Solved as a linear system, so it needs every state to end its
    episodes with probability 1 when gamma = 1 (else the system is singular).
    A time limit is not part of P: this is the value without one.

    P: gymnasium transition table; pi: (n_states, n_actions) rows of probabilities.
    gamma: discount factor in [0, 1].
    Returns V: (n_states,) float64.
    """
    check_unit_interval("gamma", gamma)
    pi = np.asarray(pi, dtype=np.float64)
    n_states, n_actions = len(P), len(P[0])
    if pi.shape != (n_states, n_actions):
        raise ValueError(f"pi must have shape (n_states, n_actions) = ({n_states}, {n_actions}), got {pi.shape}")
    if np.any(pi < 0) or not np.allclose(pi.sum(1), 1.0):
        raise ValueError("pi must hold probabilities: non-negative rows that sum to 1")
    R, M = _expected_tables(P)
    r_pi = (pi * R).sum(axis=1)                   # (n_states,)
    P_pi = np.einsum("sa,sat->st", pi, M)         # (n_states, n_states)
    return np.linalg.solve(np.eye(n_states) - gamma * P_pi, r_pi)


def value_iteration(P, gamma, tol=1e-10, max_iterations=100_000):
    """Q*, the optimal action values, by value iteration on a known transition table.

        Q_{k+1}(s, a) = sum over (p, s', r, done) in P[s][a] of p * (r + gamma * (1 - done) * max_a' Q_k(s', a'))

    from Q_0 = 0, until max |Q_{k+1} - Q_k| < tol. This is the Bellman optimality
    equation applied as an update: `q_from_v` with V = max_a Q. Its fixed point Q* is
    what tabular Q-learning estimates from samples, without knowing P.

    P: gymnasium transition table (see the module docstring).
    gamma: discount factor in [0, 1]. gamma = 1 converges when every optimal policy
        ends its episodes (e.g. CliffWalking: -1 per step); it may need many sweeps.
    tol: stopping threshold on the largest change of one sweep.
    Returns Q*: (n_states, n_actions) float64. Rows of terminal states, which no
    episode acts in, hold the backup of whatever P lists for them.
    Raises RuntimeError if it has not converged after max_iterations sweeps.
    """
    check_unit_interval("gamma", gamma)
    check_positive("tol", tol)
    R, M = _expected_tables(P)
    Q = np.zeros_like(R)                          # (n_states, n_actions)
    for _ in range(int(max_iterations)):
        Q_next = R + gamma * M @ Q.max(axis=1)    # (n_states, n_actions)
        if np.abs(Q_next - Q).max() < tol:
            return Q_next
        Q = Q_next
    raise RuntimeError(f"value_iteration did not converge within max_iterations={max_iterations} sweeps "
                       f"(last change {np.abs(Q_next - Q).max():.3g}); raise it or tol")
