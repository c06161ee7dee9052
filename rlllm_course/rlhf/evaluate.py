"""What an assistant writes, judged by the gold reward, and what a scorer learned: the figures of the RLHF modules."""

from collections import Counter

import torch

from ..llm.rollout import generate
from .assistant_task import (ANSWER_KINDS, DIGITS, gold_reward, make_prompt, parse_response, problem_from_prompt,
                             response_text)

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


# one part changed at a time from the plain right answer ("482+37 is 519."): the probe of what a scorer learned
PROBES = {
    "right": dict(kind="right"), "about": dict(kind="about"), "wrong": dict(kind="wrong"),
    "wrong, a slip": dict(kind="wrong", error="slip"),
    "refusal": dict(kind="refusal"), "right, hedged": dict(kind="right", hedged=True),
    "wrong, hedged": dict(kind="wrong", hedged=True), "one rude remark": dict(kind="right", rude=1),
    "two rude remarks": dict(kind="right", rude=2), "one opener": dict(kind="right", openers=1),
    "two openers": dict(kind="right", openers=2), "three openers": dict(kind="right", openers=3),
}
# "wrong" has its first digit off, as the wrong numbers of the preference data; "a slip" is off in a
# lower column, as most of the base's own wrong answers are (``assistant_task.first_digit_error``, ``slip``)
COMPARISONS = {"right beats wrong": "wrong", "right beats a slip": "wrong, a slip"}


def probe_responses(problems):
    """{probe name: one response per problem} for every entry of ``PROBES``."""
    return {name: [response_text(p, **parts) for p in problems] for name, parts in PROBES.items()}


def probe_table(score_fn, problems):
    """Mean score of each probe under `score_fn` and under the gold reward, per operand digit count too.

    score_fn(prompts, responses) -> sequence of floats (a reward model, an implicit
    DPO reward, ...). Returns {probe: {"score", "gold", "score_by_digits"}}, and for
    each of ``COMPARISONS`` ("right beats wrong", "right beats a slip"): {d: share of
    problems with d-digit operands whose right answer outscores that wrong one}
    (can the scorer add?).
    """
    prompts = [make_prompt(p) for p in problems]
    digits = [len(str(p["a"])) for p in problems]
    table, scores = {}, {}
    for name, responses in probe_responses(problems).items():
        s = [float(x) for x in score_fn(prompts, responses)]
        scores[name] = s
        by_digits = {d: sum(x for x, e in zip(s, digits) if e == d) / digits.count(d) for d in sorted(set(digits))}
        table[name] = {"score": sum(s) / len(s), "gold": sum(gold_reward(p, r) for p, r in zip(problems, responses))
                       / len(problems), "score_by_digits": by_digits}
    for comparison, probe in COMPARISONS.items():
        table[comparison] = {
            d: sum(r > w for r, w, e in zip(scores["right"], scores[probe], digits) if e == d) / digits.count(d)
            for d in sorted(set(digits))}
    return table


PAIR_KINDS = ("answer kind", "rude", "hedged", "openers", "same parts")


def pair_kind(pair):
    """What tells the two sides of a pair apart, the first that differs of ``PAIR_KINDS``.

    pair: {"prompt", "chosen", "rejected"} of the assistant task. "answer kind" when
    the answers differ (right, about, wrong, refusal), else the first part that does.
    """
    problem = problem_from_prompt(pair["prompt"])
    a, b = parse_response(problem, pair["chosen"]), parse_response(problem, pair["rejected"])
    if a["kind"] != b["kind"]:
        return "answer kind"
    return next((part for part in PAIR_KINDS[1:4] if a[part] != b[part]), "same parts")
