"""Tabular Q-learning (lecture §1): epsilon-greedy, the update, training, evaluation.

The Q table is a float array ``Q: (n_states, n_actions)`` indexed by gymnasium's
discrete observations and actions. Q-learning estimates the optimal action values
Q* (not the values of the epsilon-greedy policy that collects the data) from its
own experience, one transition at a time:

    Q(s, a) <- Q(s, a) + alpha * (r + gamma * (1 - terminated) * max_a' Q(s', a') - Q(s, a))

Pure functions first (they take an explicit numpy ``rng``), the training loop
on top, evaluation last. Pictures are in ``rlllm_course.plots.tabular``.
"""

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from .checks import check_ndim, check_positive, check_unit_interval


def _check_q(Q):
    check_ndim("Q", Q, 2, "(n_states, n_actions)")


def epsilon_greedy(Q, state, epsilon, rng):
    """Pick an action in `state`: random with probability epsilon, else greedy.

    Q: (n_states, n_actions) float, the current action values.
    state: int, the row of Q to act on.
    epsilon: exploration probability in [0, 1].
    rng: numpy Generator; every random number comes from it, in this order:
        1. u = rng.random(); explore when u < epsilon (so epsilon=0 never explores
           and epsilon=1 always does; u is drawn even then);
        2. explore: a = rng.integers(n_actions), uniform over *all* actions, the
           greedy ones included;
           exploit: a = rng.choice(greedy), uniform over the actions whose value
           equals max_a Q[state, a] exactly (ties broken at random: with argmax's
           lowest-index rule a fresh all-zero table would always try action 0).
    Returns the action as a Python int. P(greedy action a*) = 1 - epsilon +
    epsilon / n_actions when a* is the only maximum.
    Raises ValueError naming `epsilon` outside [0, 1] or `Q` when not 2-D.
    """
    _check_q(Q)
    check_unit_interval("epsilon", epsilon)
    return _epsilon_greedy(Q, state, epsilon, rng)


def _epsilon_greedy(Q, state, epsilon, rng):
    # unchecked core: the training loop checks its inputs once, not on every step
    if rng.random() < epsilon:
        return int(rng.integers(Q.shape[1]))
    greedy = np.flatnonzero(Q[state] == Q[state].max())  # (n_ties,)
    return int(rng.choice(greedy))


def epsilon_greedy_probs(Q, epsilon):
    """The action probabilities of `epsilon_greedy`, for every state at once.

        pi_eps(a | s) = (1 - epsilon) * [a in G(s)] / |G(s)| + epsilon / n_actions,

    G(s) the actions whose value equals max_a Q[s, a] (ties share the greedy mass).
    Q: (n_states, n_actions). epsilon: in [0, 1].
    Returns pi: (n_states, n_actions) float64, rows summing to 1; it can be passed to
    `rlllm_course.basics.exact_value` to get the value of the exploring policy.
    """
    _check_q(Q)
    check_unit_interval("epsilon", epsilon)
    Q = np.asarray(Q)
    greedy = (Q == Q.max(axis=1, keepdims=True)).astype(np.float64)  # (n_states, n_actions)
    return (1.0 - epsilon) * greedy / greedy.sum(axis=1, keepdims=True) + epsilon / Q.shape[1]


def q_learning_update(Q, state, action, reward, next_state, terminated, alpha, gamma):
    """One Q-learning step on the transition (s, a, r, s'); updates Q in place.

        delta = r + gamma * (1 - terminated) * max_a' Q(s', a') - Q(s, a)
        Q(s, a) <- Q(s, a) + alpha * delta

    Q: (n_states, n_actions) float, modified in place (only entry [state, action]).
    state, action, next_state: ints; reward: float.
    terminated: the episode ended *in* s' (hole, goal, drop-off): s' has no
        future, nothing is bootstrapped. Pass gymnasium's `terminated`, never
        `terminated or truncated`: a time-limit truncation stops the episode
        but not the task, so its s' still has value and we bootstrap from it.
    alpha: step size > 0; gamma: discount factor in [0, 1].
    Returns the TD error delta (float), before the step.
    Raises ValueError naming `alpha` (<= 0), `gamma` (outside [0, 1]) or `Q` (not 2-D).
    """
    _check_q(Q)
    check_positive("alpha", alpha)
    check_unit_interval("gamma", gamma)
    return _q_learning_update(Q, state, action, reward, next_state, terminated, alpha, gamma)


def _q_learning_update(Q, state, action, reward, next_state, terminated, alpha, gamma):
    # unchecked core, as _epsilon_greedy
    target = reward + gamma * (1.0 - float(terminated)) * Q[next_state].max()
    delta = float(target - Q[state, action])
    Q[state, action] += alpha * delta
    return delta


@dataclass
class QLearningConfig:
    """Hyperparameters of `train_q_learning`; the defaults run in seconds on a CPU."""

    episodes: int = 5_000
    alpha: float = 0.1  # step size of every update
    gamma: float = 0.99  # discount factor
    epsilon_start: float = 1.0  # explore everything at first ...
    epsilon_end: float = 0.05  # ... and a little at the end
    decay_fraction: float = 0.5  # share of the episodes over which epsilon decays linearly
    seed: int = 0  # seeds the action rng and the first env.reset
    progress: bool = True  # show a tqdm bar

    def epsilon_at(self, episode):
        """Epsilon of episode `episode` (0-based): linear from start to end, then flat."""
        decay_episodes = max(1, int(self.decay_fraction * self.episodes))
        frac = min(1.0, episode / decay_episodes)
        return self.epsilon_start + frac * (self.epsilon_end - self.epsilon_start)


@dataclass
class QLearningResult:
    """What `train_q_learning` returns. Arrays are indexed by episode."""

    Q: np.ndarray  # (n_states, n_actions) learned action values
    returns: np.ndarray  # (episodes,) undiscounted return of each training episode
    lengths: np.ndarray  # (episodes,) steps in each training episode
    epsilons: np.ndarray  # (episodes,) the epsilon each episode ran with


# Per-environment hyperparameters that reach the course's targets on every seed
# (benchmarks/q_learning.py): FrozenLake 4x4 slippery greedy success >= 0.70,
# CliffWalking return -13 (the optimal path), Taxi mean return >= 7.5.
CONFIGS = {
    "FrozenLake-v1": QLearningConfig(episodes=20_000, alpha=0.05, gamma=0.99),
    "CliffWalking-v1": QLearningConfig(episodes=500, alpha=0.5, gamma=1.0, epsilon_start=0.1,
                                       epsilon_end=0.1),
    "Taxi-v4": QLearningConfig(episodes=5_000, alpha=0.5, gamma=0.99),
}
TARGETS = {"FrozenLake-v1": 0.70, "CliffWalking-v1": -13.0, "Taxi-v4": 7.5}
# CliffWalking has no time limit of its own: a greedy policy that walks into a wall
# would never end an evaluation episode.
MAX_EPISODE_STEPS = {"CliffWalking-v1": 200}


def make_env(env_id, render_mode=None):
    """gymnasium.make(env_id) with the course's time limits (see MAX_EPISODE_STEPS)."""
    return gym.make(env_id, render_mode=render_mode,
                    max_episode_steps=MAX_EPISODE_STEPS.get(env_id))


def train_q_learning(env, config, callback=None):
    """Train a Q table with epsilon-greedy Q-learning on a discrete gymnasium env.

    env: gymnasium env with Discrete observation and action spaces.
    config: QLearningConfig. Q starts at zeros: (n_states, n_actions).
    callback: optional callback(episode, Q), called after each episode (the
        benchmark evaluates the greedy policy there).
    Convention (so that a run is reproducible from config.seed alone):
    rng = np.random.default_rng(config.seed) draws every action through
    `epsilon_greedy` (its unchecked core here: inputs are checked once, up
    front); the first episode starts with env.reset(seed=config.seed),
    later ones with env.reset(); episode i runs with config.epsilon_at(i); each
    transition is learned with `q_learning_update` (terminated, not truncated,
    stops the bootstrap); an episode ends on terminated or truncated.
    Returns QLearningResult(Q, returns, lengths, epsilons).
    """
    check_positive("config.episodes", config.episodes)
    check_positive("config.alpha", config.alpha)
    check_unit_interval("config.gamma", config.gamma)
    check_unit_interval("config.epsilon_start", config.epsilon_start)
    check_unit_interval("config.epsilon_end", config.epsilon_end)
    n_states, n_actions = env.observation_space.n, env.action_space.n
    rng = np.random.default_rng(config.seed)
    Q = np.zeros((n_states, n_actions))
    returns = np.zeros(config.episodes)
    lengths = np.zeros(config.episodes, dtype=np.int64)
    epsilons = np.array([config.epsilon_at(i) for i in range(config.episodes)])
    for episode in tqdm(range(config.episodes), desc="Q-learning", disable=not config.progress):
        state, _ = env.reset(seed=config.seed if episode == 0 else None)
        done = False
        while not done:
            action = _epsilon_greedy(Q, state, epsilons[episode], rng)
            next_state, reward, terminated, truncated, _ = env.step(action)
            _q_learning_update(Q, state, action, reward, next_state, terminated,
                               config.alpha, config.gamma)
            returns[episode] += reward
            lengths[episode] += 1
            state, done = next_state, terminated or truncated
        if callback is not None:
            callback(episode, Q)
    return QLearningResult(Q, returns, lengths, epsilons)


def greedy_policy(Q):
    """The greedy policy of a Q table: pi(s) = argmax_a Q(s, a).

    Q: (n_states, n_actions). Returns (n_states,) int64 actions.
    Ties go to the lowest action index (np.argmax): the policy is a fixed
    table, the same on every call; after training, ties remain only in states
    never updated (terminal states), where the action does not matter.
    """
    _check_q(Q)
    return np.argmax(Q, axis=1)  # (n_states,)


def evaluate_policy(env, policy, episodes=1000, seed=0):
    """Run a fixed policy table for `episodes` episodes; return their returns.

    policy: (n_states,) int, the action taken in each state (no exploration).
    Seeding: env.reset(seed=seed) for the first episode, env.reset() after,
    so that one seed gives one sequence of episodes.
    Returns (episodes,) float64 undiscounted returns. On FrozenLake (reward 1
    at the goal, 0 otherwise) their mean is the success rate.
    """
    check_ndim("policy", policy, 1, "(n_states,)")
    check_positive("episodes", episodes)
    returns = np.zeros(episodes)
    for episode in range(episodes):
        state, _ = env.reset(seed=seed if episode == 0 else None)
        done = False
        while not done:
            state, reward, terminated, truncated, _ = env.step(int(policy[state]))
            returns[episode] += reward
            done = terminated or truncated
    return returns


class GreedyEvaluator:
    """A `train_q_learning` callback: every `every` episodes, evaluate the greedy policy.

    Records, at each evaluation, the number of training episodes done, the mean
    return of `greedy_policy(Q)` over `episodes` episodes of `env` (a separate
    env, so that the training env's random stream is untouched) and the training
    seconds so far: wall time since the evaluator was made, minus the time spent
    evaluating. Make it right before training.
    """

    def __init__(self, env, every, episodes=100, seed=10_000):
        self.env, self.every, self.n_episodes, self.seed = env, every, episodes, seed
        self.episodes, self.scores, self.train_seconds = [], [], []
        self._start, self.eval_seconds = time.perf_counter(), 0.0

    def __call__(self, episode, Q):
        if (episode + 1) % self.every:
            return
        tic = time.perf_counter()
        self.train_seconds.append(tic - self._start - self.eval_seconds)
        # the same evaluation episodes every time: score changes come from Q alone
        returns = evaluate_policy(self.env, greedy_policy(Q), self.n_episodes, self.seed)
        self.episodes.append(episode + 1)
        self.scores.append(float(returns.mean()))
        self.eval_seconds += time.perf_counter() - tic
