"""Advantages and losses for RL on language models (lecture §2.5-2.6, §4).

Shapes: B completions (rows), T completion tokens; for group methods the B rows
are N groups of ``group_size`` = G consecutive completions of the same prompt
(rows i*G .. i*G+G-1). ``mask``: (B, T) 0/1, 1 on the tokens the policy chose
(``rollout.Rollout.completion_mask``): prompt and padding are never in a loss.

Conventions, written once and used everywhere below:
- group std uses Bessel's correction (divide by G - 1), as TRL does, and eps is
  added to the std, outside the square root: A = (r - mean) / (std + eps);
- KL estimators are per token, with d = logp_ref - logp:
  k1 = -d = logp - logp_ref, k3 = exp(d) - d - 1 >= 0; under samples from the
  policy both have expectation KL(policy || ref), k3 with lower variance;
- a mean over an empty mask is 0, not NaN (the denominator is clamped to 1);
- advantages, old and reference log-probs are constants (pass them detached);
  the gradient flows through ``logp`` only.
"""

import torch
import torch.nn.functional as F

AGGREGATIONS = ("grpo", "bnpo", "dr_grpo", "dapo")


def masked_sum(x, mask, dim=None):
    """Sum of x where mask is 1: sum_t x_t * m_t. x, mask: same shape (or broadcastable)."""
    total = x * mask
    return total.sum() if dim is None else total.sum(dim)


def masked_mean(x, mask, dim=None):
    """Mean of x over the positions where mask is 1: sum(x * m) / max(sum(m), 1).

    dim=None averages over every masked entry of the tensor (each token weighs
    the same); dim=-1 gives one mean per row. An empty mask gives 0.
    """
    count = mask.sum() if dim is None else mask.sum(dim)
    return masked_sum(x, mask, dim) / count.clamp(min=1)


def _grouped(rewards, group_size):
    if rewards.ndim != 1:
        raise ValueError(f"rewards must have shape (B,) = (N * group_size,), got {tuple(rewards.shape)}")
    if not isinstance(group_size, int) or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"group_size must be a positive integer dividing B={rewards.numel()}, "
                         f"got {group_size!r}")
    return rewards.view(-1, group_size)  # (N, G)


def rloo_advantages(rewards, group_size):
    """REINFORCE leave-one-out advantages: each sample's baseline is the mean of the others.

    rewards: (B,) with B = N * G, groups of G consecutive rows; G >= 2.
    A_i = r_i - 1/(G-1) * sum_{j != i} r_j = G/(G-1) * (r_i - mean_j r_j).
    The baseline does not depend on r_i, so the gradient estimate stays unbiased.
    Returns (B,), summing to 0 within every group.
    """
    grouped = _grouped(rewards, group_size)  # (N, G)
    if group_size < 2:
        raise ValueError("group_size must be at least 2 for a leave-one-out baseline")
    baseline = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)  # (N, G)
    return (grouped - baseline).reshape(-1)  # (B,)


def moving_average_advantages(rewards, baseline, decay=0.9):
    """REINFORCE with a moving-average baseline: one running mean of past rewards.

    rewards: (B,) this batch's rewards (any grouping; every row gets the same baseline);
    baseline: float, the running mean b_{k-1} built from the batches before this one;
    decay: beta in [0, 1).
        A_i = r_i - b_{k-1},    then    b_k = beta * b_{k-1} + (1 - beta) * mean_i r_i.
    Convention: the baseline is used *before* it is updated, so it depends only on
    earlier batches, never on r_i: the gradient estimate stays unbiased. The caller
    chooses the start b_0 (0 in ``grpo.train_grpo``).
    Returns (advantages (B,), new_baseline: float).
    """
    if rewards.ndim != 1 or rewards.numel() == 0:
        raise ValueError(f"rewards must have shape (B,) with B >= 1, got {tuple(rewards.shape)}")
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay!r}")
    baseline = float(baseline)
    advantages = rewards - baseline  # (B,)
    new_baseline = decay * baseline + (1.0 - decay) * rewards.mean().item()
    return advantages, new_baseline


def reinforce_loss(logp, advantages, mask):
    """REINFORCE on sequences: the whole completion is one action, its reward comes at the end.

    logp: (B, T) per-token log-probs log pi(a_t | s_t) of the sampled tokens (with grad);
    advantages: (B,) one per completion (constant: detached here); mask: (B, T) 0/1.
        loss = -1/B * sum_i A_i * sum_t m_it * logp_it,
    a sum over each sequence's tokens (log pi(y | x) = sum_t log pi(a_t | s_t)), then
    a mean over the B sequences. Its gradient is the REINFORCE estimate of -grad J.
    Returns (loss, metrics): ``reinforce/loss``, ``reinforce/seq_logp`` (mean log pi(y | x)).
    """
    if logp.ndim != 2:
        raise ValueError(f"logp must have shape (B, T), got {tuple(logp.shape)}")
    if mask.shape != logp.shape:
        raise ValueError(f"mask must have the shape of logp {tuple(logp.shape)}, got {tuple(mask.shape)}")
    if advantages.shape != logp.shape[:1]:
        raise ValueError(f"advantages must have shape (B,) = ({logp.shape[0]},), got {tuple(advantages.shape)}")
    seq_logp = masked_sum(logp, mask.to(logp.dtype), dim=-1)  # (B,) log pi(y_i | x_i)
    loss = -(advantages.detach() * seq_logp).mean()
    metrics = {"reinforce/loss": loss.item(), "reinforce/seq_logp": seq_logp.mean().item()}
    return loss, metrics


def group_advantages(rewards, group_size, scale="group", eps=1e-4):
    """GRPO's group-relative advantages (TRL's ``scale_rewards``).

    rewards: (B,) with B = N * G, groups of G consecutive rows.
    scale="group": A_i = (r_i - mean_g) / (std_g + eps), std_g with Bessel's
        correction over the G rewards of the group (the GRPO paper);
    scale="batch": the same mean_g, divided by (std + eps) of all B rewards;
    scale="none": A_i = r_i - mean_g (Dr. GRPO: no division by std).
    eps=1e-4 as in TRL, added to the std. A group whose rewards are all equal
    gets advantages 0 (it carries no signal), never NaN.
    Returns (B,).
    """
    grouped = _grouped(rewards, group_size)  # (N, G)
    centered = (grouped - grouped.mean(dim=1, keepdim=True)).reshape(-1)  # (B,)
    if scale == "none":
        return centered
    if scale == "group":
        std = grouped.std(dim=1, correction=1, keepdim=True) if group_size > 1 else torch.zeros_like(grouped)
        std = std.expand_as(grouped).reshape(-1)  # (B,)
    elif scale == "batch":
        std = rewards.std(correction=1) if rewards.numel() > 1 else torch.zeros(())
    else:
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    return centered / (std + eps)


def kl_k1(logp, ref_logp):
    """Per-token k1 estimator of KL(policy || ref): logp - ref_logp (unbiased, can be < 0)."""
    return logp - ref_logp


def kl_k2(logp, ref_logp):
    """Per-token k2 estimator of KL(policy || ref): (logp - ref_logp)^2 / 2 (Schulman, 2020).

    Always >= 0 and biased, but its gradient under samples from the policy is the
    gradient of KL(policy || ref), unlike k1's and k3's (verl's "k2" / "mse").
    """
    return 0.5 * (logp - ref_logp) ** 2


def kl_k3(logp, ref_logp):
    """Per-token k3 estimator of KL(policy || ref): exp(d) - d - 1 with d = ref_logp - logp.

    Always >= 0, unbiased under samples from the policy (E[exp(d)] = 1), and of
    lower variance than k1 (Schulman, 2020). logp, ref_logp: (B, T).
    """
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def policy_loss(logp, old_logp, advantages, mask, clip_eps=0.2, aggregation="grpo",
                ref_logp=None, beta=0.0, clip_eps_high=None, max_completion_length=None,
                num_items=None, kl_ratio_correction=False):
    """The clipped surrogate of PPO/GRPO on tokens, with an optional k3 KL penalty.

    logp: (B, T) log-probs of the chosen tokens under the current policy (with grad);
    old_logp: (B, T) under the policy that sampled them (constant);
    advantages: (B,) one per completion (broadcast to its tokens) or (B, T);
    mask: (B, T) 0/1 completion mask; ref_logp: (B, T) under the reference model,
    needed when beta > 0. Per token, with ratio = exp(logp - old_logp):

        l_t = -min(ratio * A, clip(ratio, 1 - clip_eps, 1 + clip_eps_high) * A) + beta * k3_t

    (clip_eps_high defaults to clip_eps; DAPO's clip-higher sets it larger).
    The tokens were sampled from the old policy, so the mean of k3 estimates
    KL(policy || ref) only while policy = old. ``kl_ratio_correction=True`` uses
    ratio * k3_t instead (TRL's ``use_bias_correction_kl``, on by default there;
    the ratio is not detached): its value is re-weighted to the current policy and,
    unlike plain k3, whose gradient is that of KL(ref || policy), its gradient is that
    of KL(policy || ref) (``kl_study`` checks both on a categorical).
    Aggregation over tokens, as in TRL's ``loss_type``:
    - "grpo": mean over each sequence's tokens, then mean over sequences
      (a long sequence's tokens weigh less: the length bias Dr. GRPO removes);
    - "bnpo": mean over all tokens of the batch;
    - "dr_grpo": sum over all tokens / (B * max_completion_length) (default T),
      a constant normalizer, so no length bias;
    - "dapo": sum over all tokens / num_items, the number of completion tokens
      in the whole generation batch (default: mask.sum(), then equal to "bnpo").
    Returns (loss, metrics): loss a scalar with grad; metrics floats
    ``policy/loss``, ``policy/clip_active_frac`` (share of the masked tokens whose
    clipped term is active: ratio < 1 - clip_eps with A < 0, or ratio > 1 + clip_eps_high
    with A > 0; not PPO's ``ppo/clip_frac``, which counts |ratio - 1| > clip_eps),
    ``policy/ratio``, ``policy/approx_kl`` (mean k3 of old vs new, estimating
    KL(old || new)) and, with ref_logp, ``policy/kl`` (mean k3 to the reference).
    old_logp, ref_logp and advantages are detached here: the gradient flows
    through logp only (in the surrogate and in the KL term).
    """
    if logp.ndim != 2:
        raise ValueError(f"logp must have shape (B, T), got {tuple(logp.shape)}")
    others = {"old_logp": old_logp, "mask": mask, "ref_logp": ref_logp}
    for name, value in others.items():
        if value is not None and value.shape != logp.shape:
            raise ValueError(f"{name} must have the shape of logp {tuple(logp.shape)}, got {tuple(value.shape)}")
    if advantages.shape not in (logp.shape[:1], logp.shape):
        raise ValueError(f"advantages must have shape (B,) or (B, T) = {tuple(logp.shape)}, "
                         f"got {tuple(advantages.shape)}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if beta and ref_logp is None:
        raise ValueError("ref_logp is needed when beta > 0")
    clip_eps_high = clip_eps if clip_eps_high is None else clip_eps_high
    mask = mask.to(logp.dtype)
    # Constants of the update: the gradient flows through logp only.
    old_logp, advantages = old_logp.detach(), advantages.detach()
    ref_logp = ref_logp.detach() if ref_logp is not None else None
    if advantages.ndim == 1:
        advantages = advantages[:, None]  # (B, 1), broadcast over tokens

    ratio = torch.exp(logp - old_logp)  # (B, T)
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps_high)
    per_token = -torch.min(ratio * advantages, clipped * advantages)  # (B, T)
    if ref_logp is not None:
        kl = kl_k3(logp, ref_logp)  # (B, T)
        if beta:
            per_token = per_token + beta * (kl * ratio if kl_ratio_correction else kl)

    if aggregation == "grpo":
        loss = masked_mean(per_token, mask, dim=-1).mean()
    elif aggregation == "bnpo":
        loss = masked_mean(per_token, mask)
    elif aggregation == "dr_grpo":
        length = logp.shape[1] if max_completion_length is None else max_completion_length
        loss = masked_sum(per_token, mask) / (logp.shape[0] * length)
    else:  # dapo
        count = mask.sum() if num_items is None else torch.as_tensor(num_items, dtype=logp.dtype)
        loss = masked_sum(per_token, mask) / count.clamp(min=1)

    with torch.no_grad():
        # Clipped: the ratio left the trust region in the direction the advantage pushes it.
        is_clipped = ((ratio < 1 - clip_eps) & (advantages < 0)) | ((ratio > 1 + clip_eps_high) & (advantages > 0))
        metrics = {
            "policy/loss": loss.item(),
            "policy/clip_active_frac": masked_mean(is_clipped.to(logp.dtype), mask).item(),
            "policy/ratio": masked_mean(ratio, mask).item(),
            "policy/approx_kl": masked_mean(kl_k3(old_logp, logp), mask).item(),
        }
        if ref_logp is not None:
            metrics["policy/kl"] = masked_mean(kl, mask).item()
    return loss, metrics


def bradley_terry_loss(chosen, rejected, margin=0.0, center_coefficient=0.0):
    """Pairwise reward-model loss: -log sigmoid(r_chosen - r_rejected - margin), averaged.

    chosen, rejected: (B,) scalar rewards of the preferred and the other response.
    Under Bradley-Terry, P(chosen > rejected) = sigmoid(r_c - r_r); the loss is
    its negative log-likelihood. margin: scalar or (B,) (Llama 2's margin term).
    center_coefficient: weight of mean((r_c + r_r)^2), which pulls the rewards'
    mean towards zero: the Bradley-Terry loss sees only differences, so without it
    nothing fixes the level (TRL's ``center_rewards_coefficient``; Eisenstein et
    al. 2023 use 0.01).
    Returns (loss, metrics): ``rm/accuracy`` (share with r_c > r_r), ``rm/margin``
    (mean r_c - r_r).
    """
    if chosen.ndim != 1 or chosen.shape != rejected.shape:
        raise ValueError(f"chosen and rejected must both have shape (B,), got "
                         f"{tuple(chosen.shape)} and {tuple(rejected.shape)}")
    diff = chosen - rejected  # (B,)
    loss = -F.logsigmoid(diff - margin).mean()
    if center_coefficient:
        loss = loss + center_coefficient * ((chosen + rejected) ** 2).mean()
    metrics = {"rm/loss": loss.item(), "rm/accuracy": (diff > 0).float().mean().item(),
               "rm/margin": diff.mean().item()}
    return loss, metrics


def implicit_reward(policy_logps, ref_logps, beta=0.1):
    """DPO's implicit reward r(x, y) = beta * (log pi(y | x) - log pi_ref(y | x)) (Rafailov et al., 2023).

    policy_logps, ref_logps: (B,) sequence log-probs (sums over the response tokens);
    beta > 0. The optimal policy of the KL-regularised objective makes the true reward
    equal to this plus beta * log Z(x), a term of the prompt alone that any comparison of
    two responses to one prompt cancels. Gradients flow through policy_logps only.
    Returns (B,).
    """
    if policy_logps.ndim != 1 or policy_logps.shape != ref_logps.shape:
        raise ValueError(f"policy_logps and ref_logps must both have shape (B,), got {tuple(policy_logps.shape)} "
                         f"and {tuple(ref_logps.shape)}")
    if not float(beta) > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    return beta * (policy_logps - ref_logps.detach())


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1):
    """Direct Preference Optimization loss (Rafailov et al., 2023).

    All four: (B,) sequence log-probs log pi(y | x) (sums over the response tokens)
    of the chosen and rejected responses, under the policy and the frozen reference.
    Implicit reward r(y) = beta * (log pi(y) - log pi_ref(y)); the loss is the
    Bradley-Terry loss on it: -log sigmoid(r(y_c) - r(y_r)), averaged over B.
    Returns (loss, metrics): ``dpo/reward_chosen``, ``dpo/reward_rejected``,
    ``dpo/accuracy`` (share with r(y_c) > r(y_r)), ``dpo/margin``.
    """
    shapes = {tuple(t.shape) for t in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)}
    if len(shapes) != 1 or policy_chosen.ndim != 1:
        raise ValueError(f"the four log-prob tensors must all have shape (B,), got {sorted(shapes)}")
    reward_chosen = implicit_reward(policy_chosen, ref_chosen, beta)  # (B,)
    reward_rejected = implicit_reward(policy_rejected, ref_rejected, beta)  # (B,)
    diff = reward_chosen - reward_rejected  # (B,)
    loss = -F.logsigmoid(diff).mean()
    with torch.no_grad():
        metrics = {"dpo/loss": loss.item(), "dpo/reward_chosen": reward_chosen.mean().item(),
                   "dpo/reward_rejected": reward_rejected.mean().item(),
                   "dpo/accuracy": (diff > 0).float().mean().item(), "dpo/margin": diff.mean().item()}
    return loss, metrics
