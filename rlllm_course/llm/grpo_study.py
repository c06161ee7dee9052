"""Measurements for the GRPO module (08): what a real batch of the tiny model looks like
to the loss.

- ``sample_batch``: one GRPO batch (G samples per prompt), with its rewards and lengths;
- ``equal_reward_fraction``: the share of groups whose G rewards are all equal
  (zero advantage everywhere in the group: no gradient from it);
- ``token_weights``: the weight d loss / d l_t that each aggregation gives to each
  token's per-token loss l_t (the length bias, read off directly);
- ``train_grpo_recorded``: ``grpo.train_grpo``, with every batch's rewards as tensors.
"""

import torch

from . import grpo
from .losses import AGGREGATIONS, group_advantages
from .rewards import accuracy_reward, format_reward
from .rollout import generate
from .tasks import TINY_TEMPLATE, make_prompt


@torch.no_grad()
def sample_batch(model, tokenizer, problems, group_size=8, seed=0, max_new_tokens=48,
                 temperature=1.0, template=TINY_TEMPLATE, format_weight=1.0):
    """Sample `group_size` completions for each of `problems` and score them as GRPO does.

    Returns a dict: ``rollout`` (``rollout.Rollout``, B = N * G rows), ``accuracy``,
    ``format``, ``rewards`` = accuracy + format_weight * format, ``lengths``
    (completion tokens, eos included), ``advantages`` (GRPO's, scale="group"),
    all (B,) float tensors, and ``problems`` (B,), each problem repeated G times.
    """
    torch.manual_seed(seed)
    rollout = generate(model, tokenizer, [make_prompt(p, template) for p in problems],
                       group_size=group_size, max_new_tokens=max_new_tokens, temperature=temperature)
    repeated = [p for p in problems for _ in range(group_size)]  # (B,)
    accuracy = accuracy_reward(rollout.completions, repeated)  # (B,)
    fmt = format_reward(rollout.completions)  # (B,)
    rewards = accuracy + format_weight * fmt  # (B,)
    return {"rollout": rollout, "problems": repeated, "accuracy": accuracy, "format": fmt,
            "rewards": rewards, "lengths": rollout.completion_mask.sum(-1).float(),
            "advantages": group_advantages(rewards, group_size)}


def equal_reward_fraction(rewards, group_size):
    """Share of groups whose rewards are all equal. rewards: (B,) = (N * G,). Returns a float."""
    grouped = rewards.view(-1, group_size)  # (N, G)
    return (grouped == grouped[:, :1]).all(dim=1).float().mean().item()


def token_weights(mask, aggregation, max_completion_length=None):
    """The weight w_t = d loss / d l_t of each token's per-token loss under `aggregation`.

    mask: (B, T) 0/1 completion mask. With |o_i| the length of row i:
    grpo: 1 / (B |o_i|); bnpo and dapo (num_items = the batch's tokens): 1 / sum_i |o_i|;
    dr_grpo: 1 / (B * max_completion_length) (default T). Returns (B, T) float64, 0 off the mask.
    At ratio = 1 the loss gradient on token t of row i is -A_i * w_t * grad log pi(o_t).
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    mask = mask.to(torch.float64)
    B, T = mask.shape
    if aggregation == "grpo":
        per_row = 1.0 / (B * mask.sum(-1, keepdim=True).clamp(min=1))  # (B, 1)
    elif aggregation in ("bnpo", "dapo"):
        per_row = 1.0 / mask.sum().clamp(min=1)  # scalar
    else:
        per_row = torch.tensor(1.0 / (B * (T if max_completion_length is None else max_completion_length)),
                               dtype=torch.float64)
    return per_row * mask  # (B, T)


def train_grpo_recorded(config, progress=True):
    """``grpo.train_grpo(config)`` with every step's batch rewards as tensors.

    Returns (model, tokenizer, history, rewards): rewards is a list with one (B,)
    tensor per step, in group order (G samples of each prompt side by side).
    """
    model, tokenizer, history = grpo.train_grpo(config, progress=progress)
    return model, tokenizer, history, [torch.tensor(h["rewards"]) for h in history]
