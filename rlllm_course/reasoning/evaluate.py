"""Held-out figures per difficulty level: greedy pass@1, pass@k, length, reflection, mixing."""

from collections import defaultdict

import torch

from ..llm.rewards import accuracy_reward, format_reward
from ..llm.rollout import generate, pass_at_k
from ..llm.tasks import TINY_TEMPLATE, make_prompt
from .rewards import has_reflection, notation

MAX_NEW_TOKENS = 96  # a 5-digit CoT with two re-checks fits


def pass_at_1_by_level(correct, levels):
    """Mean of `correct` (0/1, one per problem) within each level: {level: pass@1}, levels sorted."""
    correct, levels = list(correct), list(levels)
    if len(correct) != len(levels):
        raise ValueError(f"correct and levels must have the same length, got {len(correct)} and {len(levels)}")
    by_level = defaultdict(list)
    for c, d in zip(correct, levels):
        by_level[d].append(float(c))
    return {d: sum(v) / len(v) for d, v in sorted(by_level.items())}


def completion_stats(completions, mask):
    """Per-completion figures: length (tokens, eos included), reflection, notation."""
    return {"length": mask.sum(-1).tolist(), "reflection": [has_reflection(c) for c in completions],
            "notation": [notation(c) for c in completions]}


@torch.no_grad()
def evaluate_levels(model, tokenizer, problems, n_samples=8, k=8, temperature=1.0,
                    max_new_tokens=MAX_NEW_TOKENS, batch_size=128, template=TINY_TEMPLATE):
    """Greedy and sampled figures on `problems`, overall and per level.

    Returns {"overall": {...}, "levels": {level: {...}}} where each {...} holds
    ``pass@1`` (greedy accuracy), ``format``, ``length`` (greedy tokens) and, with
    n_samples: ``pass@k``, ``sample_accuracy``, ``sample_length``, ``reflection``
    (share of samples that re-check) and ``mixed`` (share of samples whose CoT
    mixes notations). Seed torch before calling for reproducible samples.
    """
    was_training = model.training
    model.eval()
    rows = []  # one dict per problem
    for start in range(0, len(problems), batch_size):
        chunk = problems[start:start + batch_size]
        prompts = [make_prompt(p, template) for p in chunk]
        out = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, greedy=True)
        acc, fmt = accuracy_reward(out.completions, chunk), format_reward(out.completions)
        for i, p in enumerate(chunk):
            rows.append({"level": p["level"], "pass@1": acc[i].item(), "format": fmt[i].item(),
                         "length": out.completion_mask[i].sum().item()})
        if n_samples:
            group = max(1, batch_size // n_samples)
            for s in range(0, len(chunk), group):
                sub = chunk[s:s + group]
                out = generate(model, tokenizer, prompts[s:s + group], group_size=n_samples,
                               max_new_tokens=max_new_tokens, temperature=temperature)
                acc = accuracy_reward(out.completions, [p for p in sub for _ in range(n_samples)])
                stats = completion_stats(out.completions, out.completion_mask)
                for j in range(len(sub)):
                    sl = slice(j * n_samples, (j + 1) * n_samples)
                    row = rows[start + s + j]
                    row[f"pass@{k}"] = pass_at_k(n_samples, int(acc[sl].sum().item()), k)
                    row["sample_accuracy"] = acc[sl].mean().item()
                    row["sample_length"] = sum(stats["length"][sl]) / n_samples
                    row["reflection"] = sum(stats["reflection"][sl]) / n_samples
                    row["mixed"] = sum(n == "mixed" for n in stats["notation"][sl]) / n_samples
    model.train(was_training)

    def mean(group):
        return {key: sum(r[key] for r in group) / len(group) for key in group[0] if key != "level"}

    levels = sorted({r["level"] for r in rows})
    return {"overall": mean(rows), "levels": {d: mean([r for r in rows if r["level"] == d]) for d in levels}}
