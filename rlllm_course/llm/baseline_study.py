"""How much noise a baseline removes: the REINFORCE gradient at a fixed policy, measured.

At a fixed policy (no update between batches), draw many independent batches of
N prompts x G completions and compute, on the *same* samples, the REINFORCE
gradient estimate for three choices of advantage:

- "none": A_i = r_i (no baseline);
- "moving_average": A_i = r_i - b, b a running mean of earlier batches' rewards
  (``losses.moving_average_advantages``), started at the mean reward of the pilot;
- "rloo": A_i = r_i - mean of the other G - 1 rewards of its prompt.

The estimate is g = grad of ``losses.reinforce_loss``:
g = -1/B * sum_i A_i * grad log pi(y_i | x_i), a vector over all D parameters.
Its total variance tr Cov[g] = E ||g - E g||^2 is estimated from K batches with
running sums, (sum_k ||g_k||^2 - K ||g_bar||^2) / (K - 1), so that no (K, D)
matrix is kept. A pilot of independent batches gives a direction u (the mean of
its RLOO gradients, normalized); each measured g_k is also projected on u, a
scalar whose spread across batches shows the noise and whose mean is the same
for every unbiased estimator.

``score_norms`` explains the result sample by sample: with independent samples,
tr Cov[g] = (E[A^2 ||s||^2] - ||E[A s]||^2) / B, where s = grad log pi(y | x) is
the score of one completion; how large ||s||^2 is depends on the reward.

``late_reward`` reads a training run (``grpo.train_grpo``'s history) at the end:
the mean reward of its last steps' samples with its standard error, to compare
runs with different group sizes at an equal number of sampled completions.
"""

import math

import torch
from tqdm.auto import tqdm

from .losses import moving_average_advantages, reinforce_loss, rloo_advantages
from .rewards import accuracy_reward, format_reward
from .rollout import generate, sequence_logprobs
from .tasks import TINY_TEMPLATE, make_prompt

ESTIMATORS = ("none", "moving_average", "rloo")


def _batch_gradients(model, tokenizer, problems, group_size, advantage_fns, template, max_new_tokens,
                     format_weight=1.0):
    """Sample one batch; return (rewards (B,), {name: flat gradient (D,)}) for each advantage fn."""
    prompts = [make_prompt(p, template) for p in problems]
    rollout = generate(model, tokenizer, prompts, group_size=group_size, max_new_tokens=max_new_tokens)
    repeated = [p for p in problems for _ in range(group_size)]  # (B,)
    rewards = accuracy_reward(rollout.completions, repeated) + format_weight * format_reward(rollout.completions)
    if not advantage_fns:
        return rewards, {}
    params = [p for p in model.parameters() if p.requires_grad]
    logp = sequence_logprobs(model, rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids,
                             rollout.completion_mask)  # (B, T)
    grads = {}
    for i, (name, fn) in enumerate(advantage_fns.items()):
        loss, _ = reinforce_loss(logp, fn(rewards), rollout.completion_mask)
        g = torch.autograd.grad(loss, params, retain_graph=i + 1 < len(advantage_fns))
        grads[name] = torch.cat([x.reshape(-1) for x in g])  # (D,)
    return rewards, grads


def gradient_variance(model, tokenizer, problems, n_batches, prompts_per_batch=4, group_size=8,
                      n_pilot=4, decay=0.9, seed=0, template=TINY_TEMPLATE, max_new_tokens=48,
                      progress=True):
    """Measure the REINFORCE gradient's noise for each of ``ESTIMATORS`` at the fixed `model`.

    problems: at least (n_pilot + n_batches) * prompts_per_batch problem dicts;
    each batch uses fresh ones. The first n_pilot batches are the pilot: their
    mean RLOO gradient gives the unit direction u, and their mean reward starts
    the moving-average baseline; the next n_batches are measured.
    Returns a dict with, per estimator name:
      ``variance``: tr Cov[g], the summed variance of the D gradient coordinates;
      ``mean_norm2``: ||g_bar||^2, the squared norm of the mean estimate;
      ``projection``: (K,) tensor <g_k, u>;
    and ``rewards``: (K, B) the measured batches' rewards, ``baselines``: (K,)
    the moving-average baseline each measured batch used, ``dim``: D.
    """
    need = (n_pilot + n_batches) * prompts_per_batch
    if len(problems) < need or n_batches < 2 or n_pilot < 1:
        raise ValueError(f"need n_batches >= 2, n_pilot >= 1 and at least {need} problems, "
                         f"got {n_batches}, {n_pilot} and {len(problems)}")
    was_training = model.training
    model.eval()  # the same fixed policy for every batch (no dropout either way)
    G = group_size
    batches = [problems[k * prompts_per_batch:(k + 1) * prompts_per_batch] for k in range(n_pilot + n_batches)]
    torch.manual_seed(seed)
    pilot_rewards, u = [], 0.0
    for problems_k in tqdm(batches[:n_pilot], desc="pilot", disable=not progress):
        rewards, grads = _batch_gradients(model, tokenizer, problems_k, G, {"rloo": lambda r: rloo_advantages(r, G)},
                                          template, max_new_tokens)
        pilot_rewards.append(rewards)
        u = u + grads["rloo"]
    u = u / u.norm()  # (D,)
    baseline = torch.cat(pilot_rewards).mean().item()

    sums = {name: 0.0 for name in ESTIMATORS}
    sq_norms = {name: 0.0 for name in ESTIMATORS}
    projections = {name: [] for name in ESTIMATORS}
    all_rewards, baselines = [], []
    for problems_k in tqdm(batches[n_pilot:], desc="batches", disable=not progress):
        used = baseline
        fns = {"none": lambda r: r, "moving_average": lambda r: r - used, "rloo": lambda r: rloo_advantages(r, G)}
        rewards, grads = _batch_gradients(model, tokenizer, problems_k, G, fns, template, max_new_tokens)
        _, baseline = moving_average_advantages(rewards, baseline, decay)  # used before its update
        all_rewards.append(rewards)
        baselines.append(used)
        for name, g in grads.items():
            sums[name] = sums[name] + g
            sq_norms[name] += g.square().sum().item()
            projections[name].append(g @ u)
    model.train(was_training)
    K = n_batches
    result = {"rewards": torch.stack(all_rewards), "baselines": torch.tensor(baselines), "dim": u.numel()}
    for name in ESTIMATORS:
        mean = sums[name] / K  # (D,)
        result[name] = {"variance": (sq_norms[name] - K * mean.square().sum().item()) / (K - 1),
                        "mean_norm2": mean.square().sum().item(),
                        "projection": torch.stack(projections[name]).detach()}
    return result


def score_norms(model, tokenizer, problems, group_size=8, seed=0, template=TINY_TEMPLATE, max_new_tokens=48,
                progress=True):
    """Per completion: reward, ||grad log pi(y | x)||^2 over all parameters, and length.

    Samples `group_size` completions of each problem (one batch, seeded), then one
    backward pass per completion. Returns a dict of (B,) tensors: ``rewards``,
    ``sq_norms`` (squared norm of the score), ``lengths`` (completion tokens, eos included),
    ``seq_logp`` (log pi(y | x)).
    """
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    prompts = [make_prompt(p, template) for p in problems]
    rollout = generate(model, tokenizer, prompts, group_size=group_size, max_new_tokens=max_new_tokens)
    repeated = [p for p in problems for _ in range(group_size)]  # (B,)
    rewards = accuracy_reward(rollout.completions, repeated) + format_reward(rollout.completions)  # (B,)
    params = [p for p in model.parameters() if p.requires_grad]
    sq_norms, seq_logp = [], []
    for i in tqdm(range(len(repeated)), desc="scores", disable=not progress):
        row = slice(i, i + 1)
        logp = sequence_logprobs(model, rollout.prompt_ids[row], rollout.prompt_mask[row],
                                 rollout.completion_ids[row], rollout.completion_mask[row]).sum()
        grads = torch.autograd.grad(logp, params)
        sq_norms.append(sum(g.square().sum() for g in grads).item())
        seq_logp.append(logp.item())
    model.train(was_training)
    return {"rewards": rewards, "sq_norms": torch.tensor(sq_norms), "seq_logp": torch.tensor(seq_logp),
            "lengths": rollout.completion_mask.sum(-1).float()}


def late_reward(history, last=5):
    """Mean reward of the samples of a run's last `last` steps, with its standard error.

    history: list of per-step dicts with ``rewards`` (the step's B sample rewards),
    as logged by ``grpo.train_grpo``. Pools the last `last` steps' samples
    (n of them) and returns (mean, standard error, n), the standard error
    std / sqrt(n) with Bessel's correction, treating the samples as independent
    (the policy still moves over those steps, so read it as the noise of the
    sampling, not of the training run).
    """
    if not history or last < 1:
        raise ValueError(f"need a non-empty history and last >= 1, got {len(history)} steps and last={last}")
    rewards = [r for h in history[-last:] for r in h["rewards"]]
    n = len(rewards)
    mean = sum(rewards) / n
    var = sum((r - mean) ** 2 for r in rewards) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var / n), n
