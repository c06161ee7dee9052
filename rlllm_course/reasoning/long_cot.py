"""The long-CoT model of module 11: SFT of the reasoning base on traces that verify again and again.

Kimi k1.5 (arXiv 2501.12599, §2.2) warms its RL up with long-CoT supervised
fine-tuning: traces that plan, evaluate and reflect at length. Long CoTs are
accurate and wasteful: a model that has checked its sum once and checks it twice
more gains nothing from the second and third check, and pays for them in tokens.
That is the overthinking long2short (§2.4) removes. Here the long-CoT data are the
cold start's re-checks (``r1_pipeline.cold_start_data``: a first guess, "wait",
the columns, all right, in Arabic digits) with the columns written out
``checks`` times, 1, 2 or 3 (``CHECK_WEIGHTS``), each after another "wait":

    <think>7246 wait 5+1=6,8+6=14,7+5+1=13,4+3+1=8 wait 5+1=6,8+6=14,7+5+1=13,4+3+1=8</think><answer>8346</answer>

So the same prompt gets answers of very different lengths, as Kimi observed of
its long model, and the shortest correct one is as right as the longest.
"""

import random
from dataclasses import replace

from ..llm.model import load_policy
from ..llm.sft import SFTConfig, train_sft
from ..llm.tasks import make_prompt
from ..llm.tokenizer import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from .tasks import REFLECTION_WORD, quick_sum, reasoning_problems, write_cot

LONG_SEED = 300  # the long-CoT set's problems and draws
LONG_N = 16000  # a tiny model learns to repeat a check slowly: 2000 steps of 32
CHECKS = (1, 2, 3)
CHECK_WEIGHTS = (0.2, 0.4, 0.4)  # mostly two or three checks: the long model overthinks
MAX_NEW_TOKENS = 160  # a 5-digit sum checked three times (about 145 tokens) fits


def long_cot_response(problem, checks, first):
    """A re-check whose columns are written `checks` times: the response string.

    first: the first guess (any string of digits); the columns are always right.
    """
    if not isinstance(checks, int) or checks < 1:
        raise ValueError(f"checks must be an integer >= 1, got {checks!r}")
    a, b = map(int, problem["question"].split("+"))
    cot, answer = write_cot(a, b)
    thought = " ".join([first] + [f"{REFLECTION_WORD} {cot}"] * checks)
    return f"{THINK_OPEN}{thought}{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"


def long_cot_data(n=LONG_N, seed=LONG_SEED):
    """`n` long-CoT examples: (problems, prompts, responses, checks).

    The first guess is the carry-forgetting quick sum half the time (as in the
    cold start), the number of checks a draw from ``CHECK_WEIGHTS``.
    """
    problems = reasoning_problems(n, seed=seed, split="train")
    rng = random.Random(seed)
    responses, checks = [], []
    for p in problems:
        a, b = map(int, p["question"].split("+"))
        first = quick_sum(a, b) if rng.random() < 0.5 else p["answer"]
        k = rng.choices(CHECKS, weights=CHECK_WEIGHTS)[0]
        responses.append(long_cot_response(p, k, first))
        checks.append(k)
    return problems, [make_prompt(p) for p in problems], responses, checks


def long_cot_config(seed=0, **overrides):
    """The long-CoT SFT: four passes over ``long_cot_data``."""
    return replace(SFTConfig(seed=seed, epochs=4.0, batch_size=32, lr=1e-3, warmup_steps=5), **overrides)


def long_cot_sft(seed=0, n=LONG_N, start="reasoning", progress=True, **overrides):
    """SFT of `start` (a shipped model) on ``long_cot_data(n)``: (model, tokenizer, history)."""
    model, tokenizer = load_policy(start)
    _, prompts, responses, _ = long_cot_data(n)
    history = train_sft(model, tokenizer, prompts, responses, long_cot_config(seed, **overrides),
                        progress=progress, desc="long-CoT SFT")
    return model, tokenizer, history
