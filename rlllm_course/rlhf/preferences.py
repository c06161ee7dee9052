"""Preference pairs for the RLHF track: a noisy labeller on the gold reward, and a loader for real sets.

A labeller who compares responses a and b of one prompt prefers a with the
Bradley-Terry probability of the gold rewards g (``assistant_task.gold_reward``):

    P(a > b) = sigmoid((g(a) - g(b)) / T)

The temperature T (``LABEL_TEMPERATURE``) is the labeller's noise. Two labellers
who judge the same pair independently agree with probability p^2 + (1 - p)^2,
p = P(a > b); T is set so that they agree on about 75% of the pairs, as human
labellers do on real preference data (InstructGPT reports 73%, Summarize from
Feedback 77%). The same p bounds what any reward model can reach: on held-out
pairs the best possible accuracy is the mean of max(p, 1 - p) (``label_ceiling``).

Pairs are dicts {"prompt", "chosen", "rejected"}, the schema of TRL and of
HH-RLHF once the prompt is split off (``load_preferences`` reads either from a
local folder with ``datasets``); the built ones also carry the gold rewards of both
sides ("gold_chosen", "gold_rejected"), which a real data set would not have.
"""

import math
import random
from pathlib import Path

from .assistant_task import assistant_problems, gold_reward, make_prompt, sample_response

LABEL_TEMPERATURE = 0.5  # two labellers agree on 75% of the pairs of ``preference_pairs`` (ceiling 82%)
PAIR_KEYS = ("prompt", "chosen", "rejected")


def preference_probability(gold_a, gold_b, temperature=LABEL_TEMPERATURE):
    """P(a is preferred to b) = sigmoid((gold_a - gold_b) / temperature)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (the labeller's noise), got {temperature!r}")
    return 1.0 / (1.0 + math.exp(-(gold_a - gold_b) / temperature))


def label_agreement(golds, temperature=LABEL_TEMPERATURE):
    """Expected share of pairs two independent labellers label alike: mean of p^2 + (1 - p)^2.

    golds: list of (gold_a, gold_b) per pair.
    """
    ps = [preference_probability(a, b, temperature) for a, b in golds]
    return sum(p * p + (1 - p) * (1 - p) for p in ps) / len(ps)


def label_ceiling(golds, temperature=LABEL_TEMPERATURE):
    """Best expected held-out pairwise accuracy of any reward model: mean of max(p, 1 - p)."""
    ps = [preference_probability(a, b, temperature) for a, b in golds]
    return sum(max(p, 1 - p) for p in ps) / len(ps)


def preference_pairs(n, seed, split="train", temperature=LABEL_TEMPERATURE):
    """`n` labelled pairs: two different sampled responses to one question, the labeller's pick first.

    Each pair: {"prompt", "chosen", "rejected", "gold_chosen", "gold_rejected"}; one
    question per pair (``assistant_problems(n, seed, split)``), reproducible from `seed`.
    """
    rng = random.Random(seed)
    pairs = []
    for problem in assistant_problems(n, seed, split):
        a, _ = sample_response(problem, rng)
        b = a
        while b == a:
            b, _ = sample_response(problem, rng)
        ga, gb = gold_reward(problem, a), gold_reward(problem, b)
        if rng.random() >= preference_probability(ga, gb, temperature):
            (a, ga), (b, gb) = (b, gb), (a, ga)
        pairs.append({"prompt": make_prompt(problem), "chosen": a, "rejected": b,
                      "gold_chosen": round(ga, 4), "gold_rejected": round(gb, 4)})
    return pairs


def split_prompt(chosen, rejected):
    """HH-RLHF's implicit prompt: (the shared beginning up to its last "Assistant:", the two rest).

    HH-RLHF stores whole dialogues ("\\n\\nHuman: ... \\n\\nAssistant: ...") in "chosen"
    and "rejected"; the prompt is what they share, cut after the last assistant cue
    inside it (TRL's ``extract_prompt`` does the same).
    """
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    cut = chosen.rfind("Assistant:", 0, shared)
    if cut < 0:
        raise ValueError("chosen and rejected share no 'Assistant:' cue to split a prompt at")
    cut += len("Assistant:")
    return chosen[:cut], chosen[cut:], rejected[cut:]


def load_preferences(path, split="train"):
    """A preference set from a local folder or file, through ``datasets``: a list of pair dicts.

    path: a folder holding ``<split>.jsonl`` (or ``.json`` / ``.parquet``), or one such
    file. Rows with "prompt", "chosen", "rejected" are taken as they are (TRL's schema,
    extra columns kept); rows with only "chosen" and "rejected" (HH-RLHF) get their
    prompt split off by ``split_prompt``.
    """
    from datasets import load_dataset  # imported here: the rest of the package does not need it

    path = Path(path)
    if path.is_dir():
        files = [f for ext in ("jsonl", "json", "parquet") for f in [path / f"{split}.{ext}"] if f.exists()]
        if not files:
            raise FileNotFoundError(f"{path} holds no {split}.jsonl, {split}.json or {split}.parquet")
        path = files[0]
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    kind = "parquet" if path.suffix == ".parquet" else "json"
    rows = load_dataset(kind, data_files=str(path), split="train")
    missing = {"chosen", "rejected"} - set(rows.column_names)
    if missing:
        raise ValueError(f"{path}: a preference set needs columns 'chosen' and 'rejected' "
                         f"(and 'prompt', or dialogues to split it from), missing {sorted(missing)}")
    pairs = []
    for row in rows:
        if "prompt" not in row:
            prompt, chosen, rejected = split_prompt(row["chosen"], row["rejected"])
            row = {**row, "prompt": prompt, "chosen": chosen, "rejected": rejected}
        pairs.append(dict(row))
    return pairs
