"""Where the re-checks come from: the forms of a CoT, and what a re-check buys.

The base read three kinds of response (``reasoning.pretrain``): no thought at all,
a thought that is only a guess (``<think>8346</think>``), and a re-check (a guess,
"wait", then the columns: ``<think>7246 wait 5+1=6,...,4+3+1=8</think>``). ``cot_form``
sorts a completion into these forms or "other", a form the base never read: if
RL *invents* a behaviour, it shows up there; if it *selects* one, the shares of
the existing forms move. ``recheck_profile`` measures the payoff that drives the
selection: how often a re-check catches a wrong guess, and the accuracy with and
without one.
"""

import re

from ..llm.rewards import extract_answer
from ..llm.tasks import check_addition
from .rewards import cot_words
from .tasks import REFLECTION_WORD, TO_ARABIC, columns

FORMS = ("none", "guess", "recheck", "other")
STEP = re.compile(r"^(\d)\+(\d)(?:\+(\d))?=(\d+)$")
NUMBER = re.compile(r"^\d+$")


def parse_step(word):
    """(x, y, carry, sum) of a column step in Arabic or Chinese numerals, or None."""
    found = STEP.match(word.translate(TO_ARABIC))
    if not found:
        return None
    x, y, c, s = found.groups()
    return int(x), int(y), int(c or 0), int(s)


def cot_form(completion):
    """ "none" (no think block), "guess" (a number), "recheck" (number, wait, column steps), or "other"."""
    if "<think>" not in completion:
        return "none"
    words = cot_words(completion)
    if len(words) == 1 and NUMBER.match(words[0]):
        return "guess"
    if (len(words) >= 3 and NUMBER.match(words[0]) and words[1] == REFLECTION_WORD
            and all(parse_step(w) for w in words[2:])):
        return "recheck"
    return "other"


def check_is_clean(completion, problem):
    """True when every column of a re-check is right (operands, the carry, the sum)."""
    a, b = map(int, problem["question"].split("+"))
    steps = [parse_step(w) for w in cot_words(completion)[2:]]
    return steps == [(x, y, c, x + y + c) for x, y, c in columns(a, b)]


def recheck_profile(completions, problems):
    """Shares of the CoT forms and what a re-check buys, over many completions.

    completions, problems: lists of equal length. Returns a dict:
    ``forms`` {form: share of all completions}; ``recheck_given_think`` (share of
    think blocks that re-check); ``wrong_guess`` (re-checks whose first guess is
    wrong); ``caught`` (re-checks with a wrong guess that still answer right);
    ``clean_check`` (re-checks whose columns are all right); ``accuracy_recheck``
    and ``accuracy_other`` (accuracy of re-checks and of everything else). A rate
    with nothing to count is NaN.
    """
    if len(completions) != len(problems):
        raise ValueError(f"problems must have one entry per completion ({len(completions)}), got {len(problems)}")
    counts = dict.fromkeys(FORMS, 0)
    wrong = caught = clean = right_recheck = right_other = 0
    for completion, problem in zip(completions, problems):
        form = cot_form(completion)
        counts[form] += 1
        answer = extract_answer(completion)
        right = answer is not None and check_addition(answer, problem)
        if form != "recheck":
            right_other += right
            continue
        right_recheck += right
        clean += check_is_clean(completion, problem)
        if cot_words(completion)[0].translate(TO_ARABIC) != problem["answer"]:
            wrong += 1
            caught += right

    def ratio(x, y):
        return x / y if y else float("nan")
    n, rc = len(completions), counts["recheck"]
    return {"forms": {f: ratio(c, n) for f, c in counts.items()},
            "recheck_given_think": ratio(rc, n - counts["none"]), "wrong_guess": ratio(wrong, rc),
            "caught": ratio(caught, wrong), "clean_check": ratio(clean, rc),
            "accuracy_recheck": ratio(right_recheck, rc), "accuracy_other": ratio(right_other, n - rc)}
