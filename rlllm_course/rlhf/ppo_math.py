"""The per-token math of RLHF with PPO (lecture §4.1; Stiennon et al. 2020, InstructGPT,
Huang et al. 2022, "The N implementation details of RLHF with PPO").

The reward model scores a whole response once; PPO needs a reward, a value and an
advantage per token. Shapes: B responses (rows), T response tokens; ``mask`` (B, T)
0/1 is 1 on the tokens the policy chose, up to and INCLUDING the first eos, then 0
(``llm.rollout.completion_mask_from_ids``): a prefix of each row, at least one token.
A response cut at max_new_tokens has no eos; its mask runs to its last real token.

Conventions, written once:
- KL per token with d = ref_logp - logp: k1 = -d = logp - ref_logp, k3 = exp(d) - d - 1;
  under tokens sampled from the policy both average to KL(policy || ref)
  (``llm.losses.kl_k1`` / ``kl_k3``);
- the episode ends at each row's last real token: V after it is 0 (the eos is terminal;
  a truncated row is treated as ended too, as TRL does, not bootstrapped);
- rewards, advantages and returns are constants (detached) and 0 outside the mask;
- variances use Bessel's correction (TRL's ``masked_var(unbiased=True)``).
"""

import numpy as np
import torch

from ..checks import check_ndim, check_same_shape
from ..llm.losses import kl_k1, kl_k3, masked_mean, masked_sum
from ..pg import value_loss
from ..training import explained_variance

KL_ESTIMATORS = {"k1": kl_k1, "k3": kl_k3}


def _response_mask(mask, like, like_name):
    """Check a (B, T) response mask against `like`; return it as bool (B, T)."""
    check_same_shape("mask", mask, like_name, like)
    if not torch.all((mask == 0) | (mask == 1)):
        raise ValueError("mask must hold only 0 and 1")
    mask = mask.bool()
    empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"mask must have at least one 1 per row (a response has >= 1 token); rows {empty} are empty")
    if torch.any(mask[:, 1:] > mask[:, :-1]):
        raise ValueError("mask must be 1 on a prefix of each row (the response up to its first eos), then 0")
    return mask


def kl_shaped_rewards(scores, logp, ref_logp, mask, beta, kl_estimator="k1"):
    """Per-token rewards of RLHF: a KL penalty on every token, the score on the last one.

    scores: (B,) the reward model's score of each response; logp, ref_logp: (B, T)
    log-probs of the chosen tokens under the policy that sampled them and under the
    frozen reference; mask: (B, T) prefix mask (module docstring); beta >= 0.

        r_t = -beta * kl_t + [t = last real token] * score,    zero outside the mask,

    kl_t = logp_t - ref_logp_t (k1, the default of InstructGPT and TRL) or
    exp(d) - d - 1 with d = ref_logp_t - logp_t (k3); both estimate KL(policy || ref).
    So sum_t r_t = score - beta * sum_t kl_t. The score goes to the last 1 of the mask:
    the eos when there is one, the last token of a truncated row. (TRL's old
    PPOTrainer adds it one position later, at ``sequence_lengths + 1``, a known quirk;
    we keep it on a token the policy chose.) Inputs are constants: detached here.
    Returns (rewards (B, T), kl (B, T)), both 0 outside the mask.
    """
    check_ndim("logp", logp, 2, "(B, T)")
    check_same_shape("ref_logp", ref_logp, "logp", logp)
    mask = _response_mask(mask, logp, "logp")
    if tuple(scores.shape) != tuple(logp.shape[:1]):
        raise ValueError(f"scores must have shape (B,) = ({logp.shape[0]},), got {tuple(scores.shape)}")
    if np.ndim(beta) != 0 or not float(beta) >= 0:
        raise ValueError(f"beta must be a number >= 0, got {beta!r}")
    if kl_estimator not in KL_ESTIMATORS:
        raise ValueError(f"kl_estimator must be one of {tuple(KL_ESTIMATORS)}, got {kl_estimator!r}")
    logp, ref_logp = logp.detach(), ref_logp.detach()
    kl = torch.where(mask, KL_ESTIMATORS[kl_estimator](logp, ref_logp), 0.0)  # (B, T)
    rewards = -beta * kl  # (B, T)
    last = mask.sum(dim=1) - 1  # (B,) column of the last real token (prefix mask)
    rewards[torch.arange(len(last)), last] += scores.detach().to(rewards.dtype)
    return rewards, kl


def missing_eos_penalty(scores, completion_ids, eos_token_id, penalty):
    """Subtract `penalty` from the score of every response that never ends (TRL's option).

    scores: (B,); completion_ids: (B, T) token ids; eos_token_id: int; penalty >= 0.
        score_i - penalty * [no eos in row i]
    A row cut at max_new_tokens contains no eos. Returns a new (B,) tensor.
    """
    check_ndim("completion_ids", completion_ids, 2, "(B, T)")
    if tuple(scores.shape) != tuple(completion_ids.shape[:1]):
        raise ValueError(f"scores must have shape (B,) = ({completion_ids.shape[0]},), got {tuple(scores.shape)}")
    if np.ndim(penalty) != 0 or not float(penalty) >= 0:
        raise ValueError(f"penalty must be a number >= 0, got {penalty!r}")
    no_eos = ~(completion_ids == eos_token_id).any(dim=1)  # (B,)
    return scores - penalty * no_eos.to(scores.dtype)


def masked_whiten(x, mask, shift_mean=True, eps=1e-8):
    """Standardize x with the mean and variance of its masked entries (TRL's ``masked_whiten``).

    x: (B, T) (any shape); mask: same shape, 0/1, any pattern, >= 2 entries set.
        mu = mean_m(x),  var = sum_m (x - mu)^2 / (n - 1)  (Bessel),  y = (x - mu) / sqrt(var + eps)
    eps inside the square root. shift_mean=False returns y + mu (rescaled, mean kept:
    how TRL whitens rewards). Entries outside the mask are returned as 0 (TRL leaves
    them whatever they become; its callers then fill them with 0). Gradients flow.
    """
    check_same_shape("mask", mask, "x", x)
    mask = mask.bool()
    n = int(mask.sum())
    if n < 2:
        raise ValueError(f"mask must select at least 2 entries for a Bessel-corrected variance, got {n}")
    x = torch.where(mask, x, 0.0)  # garbage (even inf) outside the mask stays out
    mean = masked_mean(x, mask)
    var = masked_sum((x - mean) ** 2, mask) / (n - 1)
    whitened = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(mask, whitened, 0.0)


def masked_gae(rewards, values, mask, gamma=1.0, lam=0.95):
    """GAE over each response's tokens, backwards from its last real token.

    rewards: (B, T) per-token rewards (``kl_shaped_rewards``); values: (B, T) V(s_t)
    from the critic at rollout time; mask: (B, T) prefix mask; gamma, lam in [0, 1].

        delta_t = r_t + gamma * V_{t+1} - V_t,    A_t = delta_t + gamma * lam * A_{t+1},
        returns_t = A_t + V_t,

    with V_{t+1} = 0 and A_{t+1} = 0 after the last real token: the episode ends there
    (the eos is terminal; a row truncated without eos is treated as ended too, as in
    TRL, rather than bootstrapped). Rewards and values outside the mask are ignored,
    so the recursion never runs through padding into the last real token's target.
    Returns (advantages (B, T), returns (B, T)), detached, 0 outside the mask.
    """
    check_ndim("rewards", rewards, 2, "(B, T)")
    check_same_shape("values", values, "rewards", rewards)
    mask = _response_mask(mask, rewards, "rewards")
    for name, value in (("gamma", gamma), ("lam", lam)):
        if np.ndim(value) != 0 or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    rewards = torch.where(mask, rewards.detach(), 0.0)  # (B, T)
    values = torch.where(mask, values.detach(), 0.0)  # (B, T)
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)  # (B, T) V_{t+1}
    # With a prefix mask, V_{t+1} is 0 past the last real token, and so are delta and A
    # on the padding: the running sum reaches the last real token as 0.
    deltas = rewards + gamma * next_values - values  # (B, T)
    advantages = torch.zeros_like(deltas)
    running = torch.zeros_like(deltas[:, 0])  # (B,)
    for t in reversed(range(deltas.shape[1])):  # A_t needs A_{t+1}: sweep backwards
        running = deltas[:, t] + gamma * lam * running
        advantages[:, t] = running
    advantages = torch.where(mask, advantages, 0.0)
    return advantages, torch.where(mask, advantages + values, 0.0)


def clipped_value_loss(values, old_values, returns, mask, clip_range):
    """PPO's clipped value loss over the response tokens of the batch.

    values: (B, T) V(s_t) with grad; old_values: (B, T) the critic's values at rollout
    time; returns: (B, T) targets (``masked_gae``); mask: (B, T) 0/1; clip_range > 0.

        V_clip = clip(V, V_old - clip_range, V_old + clip_range)
        loss = 0.5 * masked_mean( max((V - R)^2, (V_clip - R)^2) )

    a mean over all masked tokens of the batch (each token weighs the same, as in TRL).
    The math is ``pg.value_loss``'s clipped branch, applied to the masked tokens.
    old_values and returns are constants: the gradient flows through ``values`` only.
    Returns (loss, metrics): ``value/loss``; ``value/clip_frac``, the share of tokens
    where the clipped term is the larger (TRL's ``vf_clipfrac``, not |V - V_old| >
    clip_range); ``value/explained_variance`` of the returns by the values.
    """
    check_ndim("values", values, 2, "(B, T)")
    check_same_shape("old_values", old_values, "values", values)
    check_same_shape("returns", returns, "values", values)
    check_same_shape("mask", mask, "values", values)
    if np.ndim(clip_range) != 0 or not float(clip_range) > 0:
        raise ValueError(f"clip_range must be a number > 0, got {clip_range!r}")
    mask = mask.bool()
    if not mask.any():
        raise ValueError("mask must select at least one token")
    V, V_old, R = values[mask], old_values[mask].detach(), returns[mask].detach()  # (N,) masked tokens
    loss, _ = value_loss(V, R, old_values=V_old, clip_eps=clip_range)
    with torch.no_grad():
        clipped = V_old + (V - V_old).clamp(-clip_range, clip_range)  # (N,)
        clip_frac = ((clipped - R) ** 2 > (V - R) ** 2).float().mean()
        metrics = {"value/loss": loss.item(), "value/clip_frac": clip_frac.item(),
                   "value/explained_variance": explained_variance(V.detach().cpu(), R.cpu())}
    return loss, metrics
