"""Reading a chain of thought: reflection, notation, and a rule reward that can be hacked.

R1-Zero's rewards are ``llm.rewards``' accuracy and format; R1 adds
``llm.rewards.consistency_reward`` (share of target-language words in the CoT).
Here are the detectors the course measures the runs with, and the naive checker
that shows why the accuracy rule must be strict.

Words of a CoT are split on whitespace and commas, as ``consistency_reward`` splits
them; the CoT is the text of the first ``<think>...</think>`` block.
"""

import re

import torch

from ..llm.rewards import THINK_PATTERN, _check_list
from .tasks import CHINESE_DIGITS, REFLECTION_WORD

_CHINESE = set(CHINESE_DIGITS)


def cot_words(completion):
    """The words of the first think block of `completion`, or [] when there is none."""
    found = THINK_PATTERN.search(completion)
    return [w for w in re.split(r"[\s,]+", found.group(1)) if w] if found else []


def has_reflection(completion):
    """True when the CoT re-checks itself: the word "wait" inside the think block.

    Outside the think block (in the answer, or with no think block) it does not count.
    """
    return REFLECTION_WORD in cot_words(completion)


def reflection_rate(completions):
    """Share of `completions` (list of str) whose CoT holds a reflection."""
    _check_list("completions", completions)
    return sum(map(has_reflection, completions)) / max(1, len(completions))


def word_notation(word):
    """ "chinese" if `word` holds a Chinese numeral, "arabic" if it holds a digit, else None."""
    if any(ch in _CHINESE for ch in word):
        return "chinese"
    if any(ch.isdigit() and ch.isascii() for ch in word):
        return "arabic"
    return None


def notation(completion):
    """The notation of the CoT: "arabic", "chinese", "mixed" (both), or "none" (no numerals)."""
    kinds = {word_notation(w) for w in cot_words(completion)} - {None}
    return "mixed" if len(kinds) == 2 else kinds.pop() if kinds else "none"


def substring_accuracy_reward(completions, problems):
    """A naive accuracy check, for study only: 1.0 when the answer appears anywhere in the text.

    The bug of many public R1 reproductions: a response that lists several
    numbers, or repeats the question's digits, is paid for the right one among
    them. The course's ``llm.rewards.accuracy_reward`` checks the whole content
    of the last answer block instead.
    """
    _check_list("completions", completions)
    if len(problems) != len(completions):
        raise ValueError(f"problems must have one entry per completion ({len(completions)}), "
                         f"got {len(problems)}")
    return torch.tensor([float(p["answer"] in c) for c, p in zip(completions, problems)])
