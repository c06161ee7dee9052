"""What an assistant writes, judged by the gold reward: the figures every RLHF module reports."""

from collections import Counter

import torch

from ..llm.rollout import generate
from .assistant_task import ANSWER_KINDS, DIGITS, gold_reward, make_prompt, parse_response

MAX_NEW_TOKENS = 128  # the longest response of the data is about 110 characters


@torch.no_grad()
def gold_figures(model, tokenizer, problems, n_samples=1, greedy=False, temperature=1.0, batch_size=128,
                 max_new_tokens=MAX_NEW_TOKENS):
    """Mean gold reward and the share of each part of `n_samples` responses per problem.

    Returns {"gold", "kinds" ({kind: share}, ANSWER_KINDS and "none"), "hedged", "rude",
    "openers" (mean counts per response), "rest" (mean stray characters), "length" (tokens,
    eos included), "right_by_digits" ({d: share of responses with the right number}),
    "completions"}. Seed torch first for a reproducible sample (greedy: one per problem).
    """
    rows = [p for p in problems for _ in range(1 if greedy else n_samples)]
    completions, lengths = [], []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        out = generate(model, tokenizer, [make_prompt(p) for p in chunk], greedy=greedy, temperature=temperature,
                       max_new_tokens=max_new_tokens)
        completions += out.completions
        lengths += out.completion_mask.sum(-1).tolist()
    parts = [parse_response(p, c) for p, c in zip(rows, completions)]
    kinds = Counter(q["kind"] for q in parts)
    n = len(rows)
    by_digits = {}
    for d in DIGITS:
        idx = [i for i, p in enumerate(rows) if len(str(p["a"])) == d]
        if idx:
            by_digits[d] = sum(parts[i]["kind"] == "right" for i in idx) / len(idx)
    return {"gold": sum(gold_reward(p, c) for p, c in zip(rows, completions)) / n,
            "kinds": {k: kinds.get(k, 0) / n for k in ANSWER_KINDS + ("none",)},
            "hedged": sum(q["hedged"] for q in parts) / n, "rude": sum(q["rude"] for q in parts) / n,
            "openers": sum(q["openers"] for q in parts) / n, "rest": sum(q["rest"] for q in parts) / n,
            "length": sum(lengths) / n, "right_by_digits": by_digits, "completions": completions}
