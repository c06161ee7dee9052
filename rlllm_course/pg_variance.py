"""How noisy the REINFORCE gradient is at a fixed policy, per baseline (§2.2).

``fit_critic`` first fits the critic to the policy as it is (so the value
baseline is a fair one); ``policy_gradient_variance`` then measures the
variance of the gradient estimate with each baseline on the same episodes.
"""

import numpy as np
import torch

from .checks import check_positive
from .pg import BASELINES, batch_advantages, reinforce_loss, value_loss
from .training import explained_variance, make_envs, play_episodes


def policy_gradient_variance(agent, env_id="CartPole-v1", baselines=("none", "value"), n_batches=100,
                             batch_episodes=8, gamma=0.99, reward_to_go=True, seed=0):
    """Variance of the REINFORCE gradient estimate at a fixed policy, per baseline.

    Plays `n_batches` batches of `batch_episodes` episodes with `agent`'s policy
    and, on each batch, computes the gradient of ``reinforce_loss`` w.r.t. the
    actor's parameters once per baseline -- the same episodes for every
    baseline, so the comparison is paired. The estimate is the textbook
    (1/E) sum_episodes sum_t grad log pi * (Psi_t - b_t) (reduction="sum" over E
    episodes): the training loss's mean over all T steps divides by a T that
    depends on the actions, under which even an action-independent baseline
    shifts the expected gradient. The value baseline uses the agent's
    critic as it is: fit it to this policy first (``fit_critic``).
    Returns {baseline: total variance}, the total variance being
    sum_p Var_batches[g_p] over all actor parameters p (Bessel-corrected over
    batches), plus "mean_gradient": {baseline: (P,) array} to check that the
    baselines agree on the expected gradient, and "difference_noise":
    {baseline: float}, the size |mean_gradient[b] - mean_gradient[baselines[0]]|
    has from noise alone: sqrt(sum_p Var_batches[g_p(b) - g_p(baselines[0])] / n_batches)
    (paired differences; for two unbiased estimators the expected squared
    difference of the averages is exactly its square).
    No truncation bootstrapping: every baseline sees the same Monte Carlo Psi_t.
    """
    unknown = set(baselines) - set(BASELINES)
    if unknown:
        raise ValueError(f"baselines must be among {BASELINES}, got {sorted(unknown)}")
    check_positive("n_batches", n_batches)
    if n_batches < 2:
        raise ValueError(f"n_batches must be >= 2 to measure a variance, got {n_batches}")
    torch.manual_seed(seed)
    envs = make_envs(env_id, batch_episodes, seed)
    params = list(agent.actor.parameters())
    grads = {b: [] for b in baselines}
    for _ in range(n_batches):
        batch = play_episodes(agent.act, envs)
        for name in baselines:
            _, logp, weights, b, _ = batch_advantages(agent, batch, gamma, name, reward_to_go, False)
            loss, _ = reinforce_loss(logp, weights, b, reduction="sum")
            loss = loss / batch_episodes  # (1/E) sum over episodes: dividing by the random T would bias every baseline
            grads[name].append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]).numpy())
    grads = {name: np.stack(g) for name, g in grads.items()}  # (n_batches, P) each
    result = {name: float(g.var(axis=0, ddof=1).sum()) for name, g in grads.items()}
    result["mean_gradient"] = {name: g.mean(axis=0) for name, g in grads.items()}
    first = grads[baselines[0]]
    result["difference_noise"] = {name: float(np.sqrt((g - first).var(axis=0, ddof=1).sum() / n_batches))
                                  for name, g in grads.items()}
    return result


def fit_critic(agent, env_id="CartPole-v1", n_batches=50, batch_episodes=8, gamma=0.99, lr=1e-3, epochs=10,
               minibatch_size=256, seed=0):
    """Fit the critic to the reward-to-go of the agent's current (fixed) policy.

    Plays `n_batches` batches of `batch_episodes` episodes, pools them, and
    regresses V(s_t) on G_t with ``value_loss``: `epochs` passes of Adam over
    shuffled minibatches. The actor is untouched. Returns the explained
    variance of the fitted critic on one more batch, unseen in the fit.
    """
    torch.manual_seed(seed)
    envs = make_envs(env_id, batch_episodes, seed)
    pooled = [batch_advantages(agent, play_episodes(agent.act, envs), gamma, "value", True, False)
              for _ in range(n_batches + 1)]
    obs = torch.cat([p[0] for p in pooled[:-1]])  # (N, obs_dim)
    returns = torch.as_tensor(np.concatenate([p[4] for p in pooled[:-1]]), dtype=torch.float32)  # (N,)
    opt = torch.optim.Adam(agent.critic.parameters(), lr=lr)
    for _ in range(epochs):
        for mb in torch.randperm(len(obs)).split(minibatch_size):
            loss, _ = value_loss(agent.get_value(obs[mb]), returns[mb])
            opt.zero_grad()
            loss.backward()
            opt.step()
    held_obs, held_returns = pooled[-1][0], pooled[-1][4]
    with torch.no_grad():
        return explained_variance(agent.get_value(held_obs).numpy(), held_returns)
