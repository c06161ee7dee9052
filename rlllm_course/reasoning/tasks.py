"""Addition at four difficulty levels, and the chains of thought the reasoning base read.

A problem is ``{"task": "addition", "question": "4785+3561", "answer": "8346",
"level": 4, "digits": 4}``: two operands of the same number of digits, 2 to 5
(``LEVELS``). It is checked by the same rule as module 08 (``llm.tasks.check_addition``)
and split train / held-out by the same hash (``llm.tasks.is_heldout``).

A worked solution adds column by column from the units, writing the carry:
``5+1=6,8+6=14,7+5+1=13,4+3+1=8`` (``write_cot``), where
- a *slip* forgets an incoming carry (``7+5=12``); the rest of the trace follows
  from the slipped sum, so the final answer is wrong;
- the *notation* of each column is Arabic digits or Chinese numerals written digit by
  digit (``七+五+一=一三``); a trace may switch notation between two columns.
``quick_sum`` is the classic mental shortcut that forgets every carry (4785+3561 ->
7246): the wrong first guess a re-check has to catch. The answer inside
``<answer>`` is always Arabic digits.
"""

import random

from ..llm.tasks import is_heldout

LEVELS = (2, 3, 4, 5)  # operand digits of the difficulty levels
CHINESE_DIGITS = "〇一二三四五六七八九"
REFLECTION_WORD = "wait"
TO_CHINESE = str.maketrans("0123456789", CHINESE_DIGITS)
TO_ARABIC = str.maketrans(CHINESE_DIGITS, "0123456789")


def columns(a, b):
    """The columns of a + b from the units: list of (x, y, carry_in), carries done right."""
    da, db = str(a)[::-1], str(b)[::-1]
    out, carry = [], 0
    for i in range(max(len(da), len(db))):
        x, y = int(da[i]) if i < len(da) else 0, int(db[i]) if i < len(db) else 0
        out.append((x, y, carry))
        carry = (x + y + carry) // 10
    return out


def step_text(x, y, carry, chinese=False):
    """One column written out: "7+5+1=13" (or "7+5=12" without a carry), optionally in Chinese."""
    text = f"{x}+{y}+{carry}={x + y + carry}" if carry else f"{x}+{y}={x + y}"
    return text.translate(TO_CHINESE) if chinese else text


def write_cot(a, b, slips=(), chinese=()):
    """The column-by-column chain of thought for a + b and the answer it implies.

    slips: column indices (0 = units) where an incoming carry is forgotten;
    chinese: column indices written in Chinese numerals. The carry out of each
    column follows from what the trace wrote there, right or not, as a person's would.
    Returns (cot: str, answer: str).
    """
    da, db = str(a)[::-1], str(b)[::-1]
    width = max(len(da), len(db))
    words, digits, carry = [], [], 0
    for i in range(width):
        x, y = int(da[i]) if i < len(da) else 0, int(db[i]) if i < len(db) else 0
        used = 0 if i in slips else carry
        words.append(step_text(x, y, used, i in chinese))
        s = x + y + used
        digits.append(str(s % 10) if i < width - 1 else str(s)[::-1])
        carry = s // 10
    return ",".join(words), "".join(digits)[::-1].lstrip("0") or "0"


def quick_sum(a, b):
    """a + b with every carry forgotten (each column's last digit, the leading one in full)."""
    return write_cot(a, b, slips=range(len(columns(a, b))))[1]


def reasoning_problem(a, b):
    """The problem a + b with its level (the operands' digits) and its correct trace."""
    digits = max(len(str(a)), len(str(b)))
    cot, answer = write_cot(a, b)
    return {"task": "addition", "question": f"{a}+{b}", "answer": str(a + b),
            "level": digits, "digits": digits, "think": cot}


def reasoning_problems(n, seed, split="train", levels=LEVELS):
    """`n` problems, levels drawn uniformly from `levels`, reproducible from `seed`.

    Operands of a level-d problem are uniform d-digit numbers. split: "train"
    or "eval" (the held-out hash bucket); an evaluation set has no duplicates.
    """
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    levels = tuple(levels)
    if not levels or any(not isinstance(d, int) or not 1 <= d <= 9 for d in levels):
        raise ValueError(f"levels must be operand digit counts in 1..9 (e.g. {LEVELS}), got {levels!r}")
    rng, out, seen, draws = random.Random(seed), [], set(), 0
    while len(out) < n:
        draws += 1
        if draws > 100 * n + 10_000:  # e.g. only 6 one-digit sums are held out: never loop for ever
            raise ValueError(f"found only {len(out)} distinct {split} questions of {levels} digits in "
                             f"{draws - 1} draws, asked for n={n}")
        d = rng.choice(levels)
        a, b = rng.randint(10 ** (d - 1), 10 ** d - 1), rng.randint(10 ** (d - 1), 10 ** d - 1)
        question = f"{a}+{b}"
        if is_heldout(question) != (split == "eval") or (split == "eval" and question in seen):
            continue
        seen.add(question)
        out.append(reasoning_problem(a, b))
    return out


def levelled_eval_set(n_per_level, seed=1234, levels=LEVELS):
    """A held-out set with exactly `n_per_level` problems of each level, level by level."""
    return [p for d in levels for p in reasoning_problems(n_per_level, seed + d, "eval", (d,))]
