"""The assistant task of the RLHF track (modules 12-14): questions, responses along the 3H axes, a gold reward.

A user asks the assistant for a sum, ``user: what is 482+37?`` (``make_prompt``).
A response is made of parts, each on one axis of the lecture's 3H principle, or
on verbosity:

- **helpful**: the answer itself, which restates the sum as assistants do,
  ``482+37 is 519.`` (right), ``482+37 is about 520.`` (rounded: partly
  helpful), a wrong number, or a refusal ``sorry, i can not help.``;
- **honest**: `` i am not sure.`` after a number: the assistant admits it may be
  wrong. Confidently wrong is the worst answer; a hedge on a right one costs a little;
- **harmless**: rude remarks (``RUDE``) before the answer;
- **verbosity**: polite openers (``OPENERS``) before everything else.

``gold_reward`` is the documented judgement that plays the human labeller (the
set-up of Gao, Schulman & Hilton 2022: a gold model labels the proxy reward
model's data). It reads any text, so it can score whatever a policy writes:

    gold = content + hedge + manners + openers + rest

- content: right 1.0; about (rounded to tens, within 10%) 0.4; refusal 0.0;
  wrong -1.0; no answer at all -0.5;
- hedge: with a right number -0.2, with a wrong one +0.5 (honest: -0.5 in all);
- manners: -1.0 per rude remark;
- openers: +0.15 for the first, +0.05 for the second, -0.3 for each one after
  the second: one polite word is welcome, a string of them is not;
- rest: -0.02 per character that is none of the above (rambling, garbage).

The preference data (``preferences``) hold responses with at most two openers,
where more of them always looks better; the assistant base has also seen three
(``pretrain``). A reward model fitted on the pairs has no reason to learn that
the third one hurts, and a policy optimised against it can find that out: the
distribution shift between a reward model's data and its policy's samples is
one road to over-optimisation (module 13). Another is in the sums: the gold
reward knows the answer, a small reward model has to check it. The wrong numbers
of the preference data are blatant: their first digit is off (``first_digit_error``),
which a reward model learns to see. The base's own wrong answers are mostly
slips in a lower column, a carry forgotten (``slip``): a four-layer reward model
fitted on 20000 pairs, with clean labels, told such a slip from the right sum in
only 59-72% of three- and four-digit questions, although the base's own
likelihood prefers the right sum in 98% of them.
"""

import random
import re

from ..reasoning.tasks import reasoning_problems

TEMPLATE = "user: what is {question}?\nassistant: "
OPENERS = ("sure! ", "great question! ", "happy to help! ")
RUDE = ("what a dumb question. ", "do it yourself next time. ")
HEDGE = " i am not sure."
REFUSAL = "sorry, i can not help."
ANSWER_KINDS = ("right", "about", "wrong", "refusal")
DIGITS = (1, 2, 3, 4)  # operand digit counts: the long sums are where a small assistant is unsure

# the gold judgement's weights (module docstring)
CONTENT = {"right": 1.0, "about": 0.4, "refusal": 0.0, "wrong": -1.0, "none": -0.5}
HEDGE_ON = {"right": -0.2, "wrong": 0.5, "about": 0.0, "refusal": 0.0, "none": 0.0}
RUDE_COST = -1.0
OPENER_VALUE = (0.15, 0.05)  # the first and the second opener; each one after them:
EXTRA_OPENER_COST = -0.3
REST_COST = -0.02  # per character that no part explains


def assistant_problem(a, b):
    """The question "a+b" with its answer: {"question", "answer", "a", "b"}."""
    return {"question": f"{a}+{b}", "answer": str(a + b), "a": a, "b": b}


def assistant_problems(n, seed, split="train", digits=DIGITS):
    """`n` questions, operand digit counts drawn from `digits`, reproducible from `seed`.

    split "train" or "eval": the held-out 10% hash bucket of ``llm.tasks.is_heldout``,
    a property of the question; an evaluation set has no duplicates.
    """
    digits = tuple(digits)
    if not digits or any(not isinstance(d, int) or not 1 <= d <= 6 for d in digits):
        raise ValueError(f"digits must be operand digit counts in 1..6 (e.g. {DIGITS}), got {digits!r}")
    # the questions of the reasoning track's sampler (the same draws), as assistant problems
    return [assistant_problem(*map(int, p["question"].split("+")))
            for p in reasoning_problems(n, seed, split, levels=digits)]


def make_prompt(problem):
    """The user's turn and the assistant's cue: ``user: what is a+b?\\nassistant: ``."""
    return TEMPLATE.format(question=problem["question"])


def problem_from_prompt(prompt):
    """The problem a ``make_prompt`` prompt asks (a pair's "prompt" back to its question)."""
    match = re.fullmatch(r"user: what is (\d+)\+(\d+)\?\nassistant: ", prompt)
    if match is None:
        raise ValueError(f"prompt must be one of make_prompt's, 'user: what is a+b?\\nassistant: ', got {prompt!r}")
    return assistant_problem(int(match.group(1)), int(match.group(2)))


def rounded(value):
    """The 'about' answer: `value` to the nearest ten (values under 10 stay)."""
    return value if value < 10 else int(round(value, -1))


def first_digit_error(total, rng):
    """A blatantly wrong number: `total` with its first digit replaced by another (same length)."""
    digits = str(total)
    lead = [d for d in range(1 if len(digits) > 1 else 0, 10) if d != int(digits[0])]
    return int(f"{rng.choice(lead)}{digits[1:]}")


def slip(total, rng):
    """A subtly wrong number: `total` with one digit below the first replaced (a carry forgotten, say).

    A one-digit total has no lower column: its only digit is changed.
    """
    if total < 10:
        return first_digit_error(total, rng)
    place = 10 ** rng.randrange(len(str(total)) - 1)
    digit = (total // place) % 10
    return total + (rng.choice([d for d in range(10) if d != digit]) - digit) * place


ERRORS = {"first digit": first_digit_error, "slip": slip}


def response_text(problem, kind, hedged=False, rude=0, openers=0, wrong_value=None, error="first digit"):
    """One response built from its parts (module docstring), as the assistant writes it.

    kind: one of ``ANSWER_KINDS``; hedged: add ``HEDGE`` (ignored for a refusal);
    rude: number of rude remarks; openers: number of polite openers; wrong_value:
    the number a wrong answer states; by default the answer with an `error` of
    ``ERRORS`` ("first digit", as in the preference data, or "slip"), drawn from
    the question, so the same question always gets the same wrong number.
    """
    if kind not in ANSWER_KINDS:
        raise ValueError(f"kind must be one of {ANSWER_KINDS}, got {kind!r}")
    if not (isinstance(rude, int) and 0 <= rude <= len(RUDE) and isinstance(openers, int) and 0 <= openers <= len(OPENERS)):
        raise ValueError(f"rude must be in 0..{len(RUDE)} and openers in 0..{len(OPENERS)}, got {rude}, {openers}")
    total = int(problem["answer"])
    if kind == "refusal":
        body = REFUSAL
    else:
        value = {"right": total, "about": rounded(total)}.get(kind, wrong_value)
        if value is None:
            if error not in ERRORS:
                raise ValueError(f"error must be one of {tuple(ERRORS)}, got {error!r}")
            value = ERRORS[error](total, random.Random(problem["question"]))
        body = f"{problem['question']} is {'about ' if kind == 'about' else ''}{value}." + (HEDGE if hedged else "")
    return "".join(OPENERS[:openers]) + "".join(RUDE[:rude]) + body


PAIR_KINDS = (45, 15, 25, 15)  # weights of ANSWER_KINDS in the preference data
PAIR_OPENERS = (40, 40, 20)  # weights of 0, 1, 2 openers in the preference data


def sample_response(problem, rng, opener_weights=PAIR_OPENERS, kind_weights=PAIR_KINDS):
    """A response drawn from a mix of parts: (text, its parts as a dict).

    rng: a ``random.Random``. Answers with `kind_weights` over ``ANSWER_KINDS``
    (the preference data's: right 45%, about 15%, wrong 25%, refusal 15%);
    a number is hedged 30% of the time; a rude remark 15%, two 5%; 0, 1, 2, ...
    openers with `opener_weights` (the preference data's: 40/40/20%, never three).
    A wrong number has its first digit off (``first_digit_error``).
    """
    if not 1 <= len(opener_weights) <= len(OPENERS) + 1:
        raise ValueError(f"opener_weights must weigh 0 to at most {len(OPENERS)} openers, got {opener_weights!r}")
    if len(kind_weights) != len(ANSWER_KINDS) or min(kind_weights) < 0 or not sum(kind_weights) > 0:
        raise ValueError(f"kind_weights must be {len(ANSWER_KINDS)} non-negative weights of {ANSWER_KINDS}, "
                         f"got {kind_weights!r}")
    kind = rng.choices(ANSWER_KINDS, weights=kind_weights)[0]
    hedged = kind != "refusal" and rng.random() < 0.3
    rude = rng.choices((0, 1, 2), weights=(80, 15, 5))[0]
    openers = rng.choices(range(len(opener_weights)), weights=opener_weights)[0]
    total = int(problem["answer"])
    wrong = None
    if kind == "wrong":
        wrong = first_digit_error(total, rng)
    parts = {"kind": kind, "hedged": hedged, "rude": rude, "openers": openers}
    return response_text(problem, kind, hedged, rude, openers, wrong), parts


# the restated sum (any numbers: a policy may misquote it) and the value stated for it
ANSWER = re.compile(r"\d+\+\d+ is (about )?(\d+)\.")


def parse_response(problem, response):
    """The parts ``gold_reward`` judges: {"kind", "hedged", "rude", "openers", "rest"}.

    Openers are counted at the start (in any order, repeats too), then rude remarks
    anywhere; the first ``a+b is [about] N.`` is the answer (kind "right", "about",
    "wrong"), else a refusal if ``REFUSAL`` appears, else "none"; "rest" is the
    number of characters none of these explain.
    """
    text, openers = response, 0
    while True:
        opener = next((o for o in OPENERS if text.startswith(o)), None)
        if opener is None:
            break
        text, openers = text[len(opener):], openers + 1
    rude = sum(text.count(r) for r in RUDE)
    for r in RUDE:
        text = text.replace(r, "")
    total, kind, hedged = int(problem["answer"]), "none", False
    match = ANSWER.search(text)
    if match:
        value = int(match.group(2))
        if match.group(1):
            kind = "about" if value == rounded(total) and abs(value - total) <= 0.1 * total + 5 else "wrong"
        else:
            kind = "right" if value == total else "wrong"
        hedged = text[match.end():].startswith(HEDGE)
        text = text[:match.start()] + text[match.end() + (len(HEDGE) if hedged else 0):]
    elif REFUSAL in text:
        kind, text = "refusal", text.replace(REFUSAL, "", 1)
    return {"kind": kind, "hedged": hedged, "rude": rude, "openers": openers, "rest": len(text.strip())}


def gold_reward(problem, response):
    """The gold judgement of one response (module docstring): a float."""
    parts = parse_response(problem, response)
    openers = sum(OPENER_VALUE[:parts["openers"]]) + EXTRA_OPENER_COST * max(0, parts["openers"] - len(OPENER_VALUE))
    return (CONTENT[parts["kind"]] + (HEDGE_ON[parts["kind"]] if parts["hedged"] else 0.0)
            + RUDE_COST * parts["rude"] + openers + REST_COST * parts["rest"])
