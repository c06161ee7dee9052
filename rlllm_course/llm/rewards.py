"""Rule-based rewards (lecture §3.1-3.2): R1-Zero's accuracy and format, R1's language
consistency, Kimi k1.5's length penalty.

A completion is the text the model wrote after the prompt, tags spelled out
("<think>...</think><answer>...</answer>"), with padding and the end-of-sequence
token removed (``rollout.generate`` returns them so). Rewards are sequence-level
scalars, one per completion, returned as a float32 tensor of shape (N,).

No learned reward model: R1-Zero uses rules so that the policy cannot exploit a
reward model's blind spots. Accuracy is checked only inside the answer tags
(the "specified format" of the paper), so an untagged correct number earns 0.
"""

import re

import torch

from .tasks import check_answer

_NO_TAG = r"(?:(?!</?think>|</?answer>).)*"  # any text that contains no tag
FORMAT_PATTERN = re.compile(rf"^\s*<think>{_NO_TAG}</think>\s*<answer>{_NO_TAG}</answer>\s*$", re.S)
ANSWER_PATTERN = re.compile(r"<answer>(.*?)</answer>", re.S)
THINK_PATTERN = re.compile(r"<think>(.*?)</think>", re.S)


def extract_answer(completion):
    """The text inside the last ``<answer>...</answer>`` of `completion` (str), or None."""
    found = ANSWER_PATTERN.findall(completion)
    return found[-1] if found else None


def format_reward(completions):
    """1.0 for each completion of the exact form ``<think>...</think><answer>...</answer>``.

    completions: list of N strings. Returns (N,) float32 of 0.0 / 1.0.
    Whitespace is allowed around and between the two blocks; nothing else is,
    and neither block may contain another tag (one think, then one answer).
    """
    _check_list("completions", completions)
    return torch.tensor([float(bool(FORMAT_PATTERN.match(c))) for c in completions])


def accuracy_reward(completions, problems):
    """1.0 for each completion whose last ``<answer>`` block holds a correct answer.

    completions: list of N strings; problems: list of N problem dicts (``tasks``),
    problems[i] is the one completions[i] answers (repeat each problem G times
    for G samples). The check is the task's rule (``tasks.check_answer``): exact
    integer for addition, a valid expression for Countdown.
    Returns (N,) float32 of 0.0 / 1.0. No answer tags: 0.0.
    """
    _check_list("completions", completions)
    if len(problems) != len(completions):
        raise ValueError(f"problems must have one entry per completion ({len(completions)}), "
                         f"got {len(problems)}")
    rewards = []
    for completion, problem in zip(completions, problems):
        answer = extract_answer(completion)
        rewards.append(float(answer is not None and check_answer(answer, problem)))
    return torch.tensor(rewards)


def length_penalty(lengths, correct, group_size):
    """Kimi k1.5's length reward, within each group of responses to the same prompt.

    lengths: (B,) response lengths (tokens); correct: (B,) 0/1 accuracy; B = N * G,
    groups of ``group_size`` = G consecutive rows. With min_len, max_len over the group:

        lambda_i = 0.5 - (len_i - min_len) / (max_len - min_len)
        reward_i = lambda_i if correct_i else min(0, lambda_i)

    so the shortest response gets +0.5 and the longest -0.5, and a wrong answer
    is never rewarded for being short. A group whose lengths are all equal gets
    0 (the formula is 0/0 there). Returns (B,) float32, to add to the reward
    (Kimi weights it and warms it up; that is the trainer's choice).
    """
    lengths = torch.as_tensor(lengths, dtype=torch.float32)
    correct = torch.as_tensor(correct, dtype=torch.float32)
    if lengths.ndim != 1 or lengths.shape != correct.shape or lengths.numel() % group_size:
        raise ValueError(f"lengths and correct must both have shape (B,) with B a multiple of "
                         f"group_size={group_size}, got {tuple(lengths.shape)} and {tuple(correct.shape)}")
    grouped = lengths.view(-1, group_size)  # (N, G)
    low, high = grouped.min(1, keepdim=True).values, grouped.max(1, keepdim=True).values  # (N, 1)
    span = high - low
    lam = torch.where(span > 0, 0.5 - (grouped - low) / span.clamp(min=1e-12), torch.zeros_like(grouped))
    lam = lam.reshape(-1)  # (B,)
    return torch.where(correct > 0, lam, lam.clamp(max=0.0))


def consistency_reward(completions, is_target_word=None):
    """DeepSeek-R1's language-consistency reward: share of target-language words in the CoT.

    completions: list of N strings. The chain of thought is the text of the
    first ``<think>...</think>`` block, split into words on whitespace and commas.
    is_target_word: predicate on a word (default: only ASCII characters, i.e. no
    drift into another script). Returns (N,) float32 in [0, 1]; a completion
    without a think block, or with an empty one, gets 0.
    """
    _check_list("completions", completions)
    is_target_word = is_target_word or (lambda word: word.isascii())
    rewards = []
    for completion in completions:
        found = THINK_PATTERN.search(completion)
        words = [w for w in re.split(r"[\s,]+", found.group(1)) if w] if found else []
        rewards.append(sum(map(is_target_word, words)) / len(words) if words else 0.0)
    return torch.tensor(rewards, dtype=torch.float32)


def _check_list(name, value):
    if isinstance(value, str) or not all(isinstance(c, str) for c in value):
        raise ValueError(f"{name} must be a list of strings (one per completion)")
