"""long2short: a short-CoT model from a long-CoT one (Kimi k1.5 §2.4).

A long-CoT model is accurate but spends many tokens; Kimi k1.5 (arXiv 2501.12599,
§2.4) moves its skill into a model that answers in few, four ways:
- **model merging**: average the weights of the long-CoT and a short-CoT model
  (``average_state_dicts``, with the mixing weight alpha as a knob);
- **shortest rejection sampling**: sample n = 8 answers per problem and keep the
  shortest correct one as an SFT target (``shortest_correct``);
- **DPO**: the shortest correct answer as chosen, wrong answers and correct ones
  at least 1.5x longer as rejected (``dpo_pairs``, pairs for ``llm.losses.dpo_loss``);
- **long2short RL**: RL with the length penalty (``llm.rewards.length_penalty``) and
  a smaller maximum rollout length -- a trainer setting, nothing new here.

Samples come as ``rollout.generate`` returns them: N prompts x group_size samples,
prompt by prompt (rows g * group_size ... (g + 1) * group_size - 1 belong to prompt g).
Lengths are response tokens, as in the length penalty.
"""

import torch

from ..llm.rewards import _check_list


def average_state_dicts(long_sd, short_sd, alpha):
    """Model merging: theta = alpha * theta_long + (1 - alpha) * theta_short, key by key.

    long_sd, short_sd: state dicts of the same architecture (identical keys and
    shapes). alpha in [0, 1] is the weight of the *long* model: 1 gives the long
    model back, 0 the short one, 0.5 is Kimi's plain average. Floating tensors are
    interpolated; other tensors (integer buffers, masks) must be equal in both and
    are copied. Returns a new dict in long_sd's key order, of detached tensors;
    the inputs are not modified.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (the weight of the long model), got {alpha}")
    merged = {}
    for key, long_t in long_sd.items():
        if key not in short_sd:
            raise ValueError(f"state dicts must have identical keys: {key!r} is missing from short_sd")
        short_t = short_sd[key]
        if long_t.shape != short_t.shape or long_t.dtype != short_t.dtype:
            raise ValueError(f"state dicts must have identical shapes and dtypes: {key!r} is "
                             f"{tuple(long_t.shape)} {long_t.dtype} in long_sd, "
                             f"{tuple(short_t.shape)} {short_t.dtype} in short_sd")
        long_t, short_t = long_t.detach(), short_t.detach()
        if long_t.is_floating_point():
            # written out rather than torch.lerp: alpha = 1 and 0 give each model back bit for bit
            merged[key] = alpha * long_t + (1.0 - alpha) * short_t
        elif torch.equal(long_t, short_t):
            merged[key] = long_t.clone()
        else:
            raise ValueError(f"non-floating tensors cannot be averaged and must be equal: {key!r} differs")
    extra = [key for key in short_sd if key not in long_sd]
    if extra:
        raise ValueError(f"state dicts must have identical keys: {extra[0]!r} is missing from long_sd")
    return merged


def _check_groups(completions, correct, lengths, group_size):
    """Validate B = N * group_size samples; return correct, lengths as Python lists."""
    _check_list("completions", completions)
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be an integer >= 1, got {group_size!r}")
    correct, lengths = torch.as_tensor(correct), torch.as_tensor(lengths)
    B = len(completions)
    if B % group_size or correct.shape != (B,) or lengths.shape != (B,):
        raise ValueError(f"completions, correct and lengths must have B = N * group_size entries "
                         f"(group_size={group_size}), got {B}, {tuple(correct.shape)} and {tuple(lengths.shape)}")
    if not ((correct == 0) | (correct == 1)).all():
        raise ValueError("correct must hold 0/1 per sample")
    if B and lengths.min() < 0:
        raise ValueError("lengths must be >= 0 (response tokens)")
    return correct.bool().tolist(), lengths.tolist()


def shortest_correct(completions, correct, lengths, group_size):
    """Shortest rejection sampling: the shortest correct sample of each group.

    completions: B = N * group_size strings (Kimi: group_size n = 8); correct: (B,)
    0/1; lengths: (B,) response lengths. Returns a list of N entries, one per
    prompt: the index into the B samples of the group's shortest correct one (ties:
    the first), or None when no sample of the group is correct.
    ``completions[i]`` of the indices that are not None are the SFT targets.
    """
    correct, lengths = _check_groups(completions, correct, lengths, group_size)
    picks = []
    for start in range(0, len(completions), group_size):
        right = [i for i in range(start, start + group_size) if correct[i]]
        picks.append(min(right, key=lengths.__getitem__) if right else None)  # min keeps the first of ties
    return picks


def dpo_pairs(prompts, completions, correct, lengths, group_size, long_ratio=1.5):
    """Kimi's long2short DPO pairs: list of {"prompt", "chosen", "rejected"} dicts (TRL's schema).

    prompts: N strings, one per group; completions, correct, lengths: B = N *
    group_size samples as in ``shortest_correct``. Per group with a correct sample:

        chosen   = the shortest correct sample (c, ties: the first)
        rejected = every wrong sample longer than it (len_i > len_c), and every
                   correct one with len_i >= long_ratio * len_c

    ("longer responses are treated as negative samples, including both wrong longer
    responses and correct longer responses (1.5 times longer)": a short wrong answer
    is not rejected, so the pair never teaches the model that brevity is wrong);
    one pair per distinct rejected text (first occurrence kept, in sample order);
    a text equal to the chosen one is never rejected. A group without a correct
    sample gives no pair; correct samples shorter than long_ratio * len_c are
    neither chosen nor rejected. Texts are kept as sampled (no stripping): DPO
    scores the log-probs of exactly these tokens.
    """
    _check_list("prompts", prompts)
    if not long_ratio >= 1.0:
        raise ValueError(f"long_ratio must be >= 1 (a rejected correct answer is longer than the chosen one), "
                         f"got {long_ratio}")
    picks = shortest_correct(completions, correct, lengths, group_size)
    if len(prompts) != len(picks):
        raise ValueError(f"prompts must have one entry per group (N = {len(picks)}), got {len(prompts)}")
    correct, lengths = _check_groups(completions, correct, lengths, group_size)
    pairs = []
    for g, (prompt, c) in enumerate(zip(prompts, picks)):
        if c is None:
            continue
        group = range(g * group_size, (g + 1) * group_size)
        rejected = [completions[i] for i in group
                    if i != c and (lengths[i] > lengths[c] if not correct[i] else lengths[i] >= long_ratio * lengths[c])]
        for text in dict.fromkeys(rejected):
            if text != completions[c]:
                pairs.append({"prompt": prompt, "chosen": completions[c], "rejected": text})
    return pairs
