"""Tasks with rule-checked answers: multi-digit addition and a small Countdown.

A problem is a dict ``{"question": str, "answer": str, ...}``:
- addition: ``question = "478+356"``, ``answer = "834"``;
- Countdown: ``question = "3,5,7>22"`` (use each number once with + - * / and
  parentheses to reach the target), ``numbers = [3, 5, 7]``, ``target = 22``;
  any correct expression is accepted, ``answer`` holds one of them.

Train / evaluation split: a problem belongs to the held-out evaluation split
when a hash of its question falls in a fixed 10% bucket (``is_heldout``). The
split is a property of the problem, not of the seed, so no training stream,
whatever its seed or length, ever contains an evaluation question.

Prompts (``make_prompt``): ``R1_ZERO_TEMPLATE`` is DeepSeek-R1-Zero's template
for a real instruction-following model; ``TINY_TEMPLATE`` is its character-level
shorthand for the tiny model, whose vocabulary has no letters beyond Q and A.
In both the model writes ``<think> ... </think><answer> ... </answer>`` itself.
"""

import ast
import random
import re
import zlib
from fractions import Fraction

R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the "
    "Assistant solves it. The assistant first thinks about the reasoning process in "
    "the mind and then provides the user with the answer. The reasoning process and "
    "answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> "
    "<answer> answer here </answer>. User: {question}. Assistant:"
)
TINY_TEMPLATE = "Q:{question}\nA:"
HELDOUT_BUCKETS = 10  # 1 in 10 questions is held out for evaluation


def make_prompt(problem, template=TINY_TEMPLATE):
    """The prompt string for `problem` (a dict with "question") under `template`."""
    return template.format(question=problem["question"])


def is_heldout(question):
    """True when `question` (str) belongs to the evaluation split (a fixed 10% by hash)."""
    return zlib.crc32(question.encode()) % HELDOUT_BUCKETS == 0


# ---------------------------------------------------------------- addition
def addition_problem(a, b):
    """The problem a + b, with both chains of thought used to pretrain the tiny model.

    ``think`` adds column by column from the units, carrying: "8+6=14,7+5+1=13,4+3+1=8".
    ``think_buggy`` makes the classic mistake of forgetting every carry:
    "8+6=14,7+5=12,4+3=7", and ``buggy_answer`` ("724") is what that trace
    implies (each column's last digit; the leading column written in full).
    Missing digits of the shorter number are written as 0.
    """
    da, db = str(a)[::-1], str(b)[::-1]
    width = max(len(da), len(db))
    steps, buggy_steps, digits, buggy_digits, carry = [], [], [], [], 0
    for i in range(width):
        x, y = int(da[i]) if i < len(da) else 0, int(db[i]) if i < len(db) else 0
        s = x + y + carry
        steps.append(f"{x}+{y}+{carry}={s}" if carry else f"{x}+{y}={s}")
        digits.append(str(s % 10) if i < width - 1 else str(s)[::-1])
        carry = s // 10
        buggy_steps.append(f"{x}+{y}={x + y}")
        buggy_digits.append(str((x + y) % 10) if i < width - 1 else str(x + y)[::-1])
    return {
        "task": "addition",
        "question": f"{a}+{b}",
        "answer": str(a + b),
        "think": ",".join(steps),
        "think_buggy": ",".join(buggy_steps),
        "buggy_answer": "".join(buggy_digits)[::-1].lstrip("0") or "0",
    }


def addition_problems(n, seed, split="train", low=10, high=999):
    """`n` addition problems a + b with a, b uniform in [low, high], reproducible from `seed`.

    split: "train" keeps only questions outside the held-out bucket, "eval" only
    those inside it. Problems may repeat within a training stream, never
    within the evaluation set (duplicates are skipped).
    """
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    rng, out, seen = random.Random(seed), [], set()
    want_heldout = split == "eval"
    while len(out) < n:
        a, b = rng.randint(low, high), rng.randint(low, high)
        question = f"{a}+{b}"
        if is_heldout(question) != want_heldout or (want_heldout and question in seen):
            continue
        seen.add(question)
        out.append(addition_problem(a, b))
    return out


def check_addition(answer_text, problem):
    """True when `answer_text` (the text between the answer tags) is the sum, as an integer."""
    text = answer_text.strip()
    return re.fullmatch(r"[0-9]+", text) is not None and int(text) == int(problem["answer"])


# ---------------------------------------------------------------- Countdown
def _solutions(numbers):
    """All (value, expression) pairs that use every number of `numbers` exactly once."""
    if len(numbers) == 1:
        return [(Fraction(numbers[0]), str(numbers[0]))]
    out = []
    # Every ordered split into two non-empty sides (both orders: - and / are not symmetric).
    for mask in range(1, 2 ** len(numbers) - 1):
        left = [n for j, n in enumerate(numbers) if mask >> j & 1]
        right = [n for j, n in enumerate(numbers) if not mask >> j & 1]
        for lv, le in _solutions(left):
            for rv, re_ in _solutions(right):
                out += [(lv + rv, f"({le}+{re_})"), (lv - rv, f"({le}-{re_})"),
                        (lv * rv, f"({le}*{re_})")]
                if rv != 0:
                    out.append((lv / rv, f"({le}/{re_})"))
    return out


def countdown_problems(n, seed, split="train", n_numbers=3, low=1, high=9, max_target=50):
    """`n` Countdown problems: `n_numbers` numbers in [low, high], a reachable target.

    The target is drawn uniformly among the positive integers <= `max_target`
    that some expression over the numbers reaches, so every problem is solvable;
    ``answer`` is the first expression found (outer parentheses kept).
    """
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    rng, out, seen = random.Random(seed), [], set()
    while len(out) < n:
        numbers = [rng.randint(low, high) for _ in range(n_numbers)]
        reachable = {}
        for value, expr in _solutions(numbers):
            if value.denominator == 1 and 0 < value <= max_target:
                reachable.setdefault(int(value), expr)
        if not reachable:  # possible with unusual low / high / max_target
            continue
        target = rng.choice(sorted(reachable))
        question = ",".join(map(str, numbers)) + f">{target}"
        if is_heldout(question) != (split == "eval") or (split == "eval" and question in seen):
            continue
        seen.add(question)
        out.append({"task": "countdown", "question": question, "answer": reachable[target],
                    "numbers": numbers, "target": target})
    return out


def _evaluate(node):
    """Exact value of an arithmetic AST of integers and + - * / (ValueError otherwise)."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in (ast.Add, ast.Sub, ast.Mult, ast.Div):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise ValueError("division by zero")
        return left / right
    raise ValueError("only integers, + - * / and parentheses are allowed")


def check_countdown(answer_text, problem):
    """True when `answer_text` is an expression using each number once that equals the target.

    Rules (as in TinyZero): only integers, + - * / and parentheses; the multiset
    of integers in the expression equals ``problem["numbers"]``; exact rational
    arithmetic, so 7/2*2 counts as 7.
    """
    text = answer_text.strip()
    if not text or len(text) > 100 or set(text) - set("0123456789+-*/() "):
        return False
    try:
        tree = ast.parse(text, mode="eval")
        used = sorted(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant))
        return used == sorted(problem["numbers"]) and _evaluate(tree) == problem["target"]
    except (SyntaxError, ValueError, RecursionError):
        return False


def check_answer(answer_text, problem):
    """Rule-based check of `answer_text` against `problem`, dispatching on ``problem["task"]``."""
    checkers = {"addition": check_addition, "countdown": check_countdown}
    return checkers[problem.get("task", "addition")](answer_text, problem)
