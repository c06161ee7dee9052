"""How GAE's lambda trades bias for variance, measured on CartPole (lecture §2.3).

CartPole's physics are deterministic: the next state is a function of the state
and the action, and all the randomness of a trajectory comes from the policy's
sampled actions. So we can restart the cart from any state, and from a state s
and a first action a play many continuations with the policy. Their discounted
returns average to Q(s, a), with no critic involved. On the same continuations, an
estimator such as GAE(lambda) with an imperfect critic gives one value per
continuation: its mean minus the target is the bias, its spread the variance.

The target is Q(s, a) - V_hat(s): the true advantage with the critic V_hat as
the baseline. It differs from A(s, a) by a function of s only, which does not
change the policy gradient; against it, lam = 1 is unbiased whatever the
critic, and lam < 1 inherits the critic's errors at the states ahead.
"""

import numpy as np
import torch

from .checks import check_positive
from .ppo import make_vector_env
from .returns import gae

# CartPole-v1's constants (gymnasium.envs.classic_control.cartpole)
GRAVITY, MASSCART, MASSPOLE, HALF_LENGTH, FORCE_MAG, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
X_THRESHOLD, THETA_THRESHOLD = 2.4, 12 * 2 * np.pi / 360


def cartpole_step(states, actions):
    """CartPole-v1's physics for a batch: one Euler step of 0.02 s, as gymnasium does it.

    states: (B, 4) float (x, x_dot, theta, theta_dot); actions: (B,) in {0, 1}
    (push left, push right). Returns next_states (B, 4) float64 and
    terminated (B,) bool (cart beyond 2.4 or pole beyond 12 degrees). The
    reward is 1 for every step, the terminating one included.
    """
    x, x_dot, theta, theta_dot = np.asarray(states, dtype=np.float64).T  # (B,) each
    force = np.where(np.asarray(actions) == 1, FORCE_MAG, -FORCE_MAG)
    total_mass, polemass_length = MASSCART + MASSPOLE, MASSPOLE * HALF_LENGTH
    cos, sin = np.cos(theta), np.sin(theta)
    temp = (force + polemass_length * theta_dot ** 2 * sin) / total_mass
    theta_acc = (GRAVITY * sin - cos * temp) / (HALF_LENGTH * (4.0 / 3.0 - MASSPOLE * cos ** 2 / total_mass))
    x_acc = temp - polemass_length * theta_acc * cos / total_mass
    nxt = np.stack([x + TAU * x_dot, x_dot + TAU * x_acc, theta + TAU * theta_dot,
                    theta_dot + TAU * theta_acc], axis=1)  # (B, 4)
    terminated = (np.abs(nxt[:, 0]) > X_THRESHOLD) | (np.abs(nxt[:, 2]) > THETA_THRESHOLD)
    return nxt, terminated


@torch.no_grad()
def collect_rollout(agent, num_envs, num_steps, seed, env_id="CartPole-v1"):
    """num_steps steps in each of num_envs environments, as PPO collects a batch.

    Environments reset themselves when an episode ends, so episodes end
    anywhere in the (T, N) arrays and the last one of each column is
    unfinished. Returns numpy arrays, time first: obs (T, N, obs_dim),
    actions, rewards, dones (terminated or truncated), truncated, values
    V(s_t), final_values (V(final obs) where truncated, else 0) -- all (T, N) --
    and last_value (N,), V of the observation after the last step.
    """
    check_positive("num_envs", num_envs)
    check_positive("num_steps", num_steps)
    torch.manual_seed(seed)
    envs = make_vector_env(env_id, num_envs, seed)
    obs = torch.as_tensor(envs.reset(seed=seed)[0])  # (N, obs_dim)
    keys = ("obs", "actions", "rewards", "dones", "truncated", "values", "final_values")
    out = {key: [] for key in keys}
    for _ in range(num_steps):
        action, _, _, value = agent.get_action_and_value(obs)
        raw_obs, reward, term, trunc, info = envs.step(action.numpy())
        final_values = np.zeros(num_envs)
        if trunc.any():  # a time limit: bootstrap from the real final observation (autoreset replaced it)
            cut = np.flatnonzero(trunc & ~term)
            final_values[cut] = agent.get_value(torch.as_tensor(np.stack(info["final_obs"][cut]))).numpy()
        for key, x in zip(keys, (obs.numpy(), action.numpy(), reward, term | trunc, trunc & ~term,
                                 value.numpy(), final_values)):
            out[key].append(x)
        obs = torch.as_tensor(raw_obs)
    envs.close()
    rollout = {key: np.stack(x) for key, x in out.items()}  # (T, N, ...)
    rollout["last_value"] = agent.get_value(obs).numpy()  # (N,)
    return rollout


@torch.no_grad()
def branch_rollouts(agent, states, continuations, horizon, seed):
    """From every state, take each action, then follow the agent's policy.

    states: (S, 4) CartPole states. Plays continuations (M) continuations per
    state and first action, all in lockstep with ``cartpole_step``, for
    `horizon` (H) steps or until the pole falls; the 500-step time limit is
    ignored (we want the values of the discounted task, which has none).
    Returns a dict: obs (H + 1, S, 2, M, 4) float32, rewards and dones (H, S, 2, M)
    -- after the pole fell, rewards are 0 and dones stay set -- alive
    (H + 1, S, 2, M): the cart is still up at step t, and probs (S, 2) = pi(a|s).
    """
    states = np.asarray(states, dtype=np.float64)
    S, M = len(states), continuations
    torch.manual_seed(seed)
    state = np.repeat(states, 2 * M, axis=0)  # (S * 2 * M, 4), ordered (s, a, m)
    action = np.tile(np.repeat([0, 1], M), S)  # (S * 2 * M,): the first action is fixed
    alive = np.ones(len(state), dtype=bool)
    obs, rewards, dones, alives = [state.astype(np.float32)], [], [], [alive]
    for t in range(horizon):
        if t > 0:
            action = agent.distribution(torch.as_tensor(obs[-1])).sample().numpy()
        state, terminated = cartpole_step(state, action)
        rewards.append(alive.astype(np.float64))  # 1 for every step taken while the pole was up
        dones.append(~alive | terminated)
        alive = alive & ~terminated
        obs.append(state.astype(np.float32))
        alives.append(alive)
    probs = agent.distribution(torch.as_tensor(states, dtype=torch.float32)).probs.numpy()  # (S, 2)
    shape = (S, 2, M)
    return {"obs": np.stack(obs).reshape(horizon + 1, *shape, 4), "rewards": np.stack(rewards).reshape(horizon, *shape),
            "dones": np.stack(dones).reshape(horizon, *shape), "alive": np.stack(alives).reshape(horizon + 1, *shape),
            "probs": probs}


@torch.no_grad()
def critic_values(critic, obs, chunk=65_536):
    """V(obs) for an array of observations (..., obs_dim) -> (...), in chunks."""
    flat = torch.as_tensor(obs.reshape(-1, obs.shape[-1]))  # (B, obs_dim)
    # written into one preallocated array: a list of the chunks' outputs kept far more
    # memory alive than their size (over 1 GB for the study's 5M states)
    values = torch.empty(len(flat))  # (B,)
    for i in range(0, len(flat), chunk):
        values[i:i + chunk] = critic(flat[i:i + chunk]).squeeze(-1)
    return values.numpy().reshape(obs.shape[:-1])


def lambda_advantages(branches, critic, gamma, lams):
    """GAE(lam) at the first step of every continuation, for each lam: (L, S, 2, M).

    critic: a torch module obs (B, obs_dim) -> (B, 1), e.g. ``agent.critic``.
    Each continuation is one column of a (H, S * 2 * M) ``gae`` call, bootstrapped
    from V(obs[H]) where the pole is still up; values after a fall are 0.
    """
    values = critic_values(critic, branches["obs"]) * branches["alive"]  # (H + 1, S, 2, M)
    flat = lambda x: x.reshape(len(x), -1)  # (H, S * 2 * M)
    out = [gae(flat(branches["rewards"]), flat(values[:-1]), flat(branches["dones"]), values[-1].ravel(),
               gamma, lam)[0][0] for lam in lams]  # each (S * 2 * M,)
    return np.stack(out).reshape(len(lams), *values.shape[1:])  # (L, S, 2, M)


def bias_variance(branches, advantages, baseline, gamma):
    """Squared bias and variance of an advantage estimator, against the Monte Carlo truth.

    advantages: (..., S, 2, M) estimates on the continuations of ``branch_rollouts``.
    baseline: (S,) the critic's V_hat(s) at the branching states.
    Target: Q(s, a) - V_hat(s), the true advantage with the critic as the
    baseline (a function of s only, so the policy gradient is the same as with
    A(s, a)); equivalently, A_hat + V_hat(s) is judged as an estimate of Q(s, a).
    Truth: Q(s, a) = mean over the M continuations of sum_{t<H} gamma^t r_t (no critic).
    The bias is measured pairwise, D_m = A_hat_m + V_hat(s) - G_m on the same
    continuation, and bias^2 = mean(D)^2 - Var(D) / M: subtracting the noise of
    the mean makes it an unbiased estimate of the squared bias (it can dip below 0).
    Returns a dict of arrays of shape (...): "bias2" and "variance" (Bessel-
    corrected over continuations), both averaged over states and actions with
    weights pi(a|s) / S (the on-policy distribution of (s, a)), "mse" their
    sum, and "truth_var": the same average of Var(G) / M, the noise of the truth.
    """
    probs = branches["probs"]  # (S, 2)
    M = advantages.shape[-1]
    discounts = gamma ** np.arange(len(branches["rewards"]))  # (H,)
    G = np.tensordot(discounts, branches["rewards"], axes=1)  # (S, 2, M)
    D = advantages + np.asarray(baseline)[:, None, None] - G  # (..., S, 2, M)
    bias2 = D.mean(-1) ** 2 - D.var(-1, ddof=1) / M  # (..., S, 2)
    weights = probs / len(probs)  # (S, 2), sums to 1
    bias2 = (bias2 * weights).sum((-2, -1))
    variance = (advantages.var(-1, ddof=1) * weights).sum((-2, -1))
    truth_var = (G.var(-1, ddof=1) / M * weights).sum()
    return {"bias2": bias2, "variance": variance, "mse": bias2 + variance, "truth_var": truth_var}
