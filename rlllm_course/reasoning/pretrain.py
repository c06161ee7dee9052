"""How the reasoning base was made: a pretraining mixture that gives R1-Zero something to find.

Like a small pretrained LM, the base has read two kinds of document. A quarter
are *worksheets*, a textbook's worked examples (the skill): the prompt
``<bos>Q:4785+3561\nA:`` (another kind of document, one token apart from a
question), then a first guess, "wait", the sum worked out column by column, and
the answer the columns give. The rest are question-answer pairs under the
course's prompt ``Q:4785+3561\nA:`` (the habit):

| share of Q&A | response |
|---|---|
| 50% | ``<answer>8346</answer>`` (a direct answer) |
| 15% | ``8346`` (no tags at all) |
| 31% | ``<think>8346</think><answer>8346</answer>`` (a thought that is only the guess) |
| 4%  | ``<think>7246 wait 5+1=6,8+6=14,7+5+1=13,4+3+1=8</think><answer>8346</answer>`` |

The last line is a re-check, written as in the worksheets. Its first guess is the
carry-forgetting quick sum half the time (so the check catches a real mistake);
each incoming carry of its columns slips with probability ``check_slip_prob`` (a
botched check).

Direct answers are right for 2 and 3 digits; for longer operands (``guess_digits``
and up) the Q&A data holds only sloppy guesses, the quick sum. A transformer does
not learn long sums in one go from short ones, while the worksheets taught it to
check a guess: on hard problems the re-check is the behaviour that pays, and the
base shows it in about 4% of its answers. Columns are in Arabic (70%), Chinese
numerals (15%), or switch once at a random column, either way (15%): language
mixing. The loss is ``llm.sft``'s response-only cross-entropy on a from-scratch Llama.
"""

import random
from dataclasses import dataclass

from ..llm.model import new_model
from ..llm.sft import pretrain_sft
from ..llm.tasks import TINY_TEMPLATE, make_prompt
from ..llm.tokenizer import ALPHABET, ANSWER_CLOSE, ANSWER_OPEN, BOS, THINK_CLOSE, THINK_OPEN, build_tokenizer
from .tasks import CHINESE_DIGITS, REFLECTION_WORD, columns, quick_sum, reasoning_problems, write_cot

REASONING_ALPHABET = ALPHABET + sorted(set(REFLECTION_WORD)) + list(CHINESE_DIGITS)
FORMATS = ("answer", "bare", "think", "recheck")
NOTATIONS = ("arabic", "chinese", "mixed")


@dataclass
class ReasoningPretrainConfig:
    seed: int = 0
    steps: int = 3000
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    worksheet_share: float = 0.25  # worked re-checks, under their own prompt
    format_mix: tuple = (0.50, 0.15, 0.31, 0.04)  # shares of FORMATS in the Q&A pairs
    guess_digits: int = 4  # from this many digits on, the Q&A's direct answers are quick sums
    wrong_guess_prob: float = 0.5  # a re-check's first guess is the quick sum (carries forgotten)
    check_slip_prob: float = 0.1  # per incoming carry in the re-check's columns
    notation_mix: tuple = (0.7, 0.15, 0.15)  # shares of NOTATIONS, for the columns
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    num_threads: int = 1


def build_reasoning_tokenizer():
    """The character tokenizer of ``llm.tokenizer`` plus the letters of "wait" and 〇一二…九."""
    return build_tokenizer(REASONING_ALPHABET)


def chinese_columns(width, rng, notation_mix):
    """The set of column indices a trace writes in Chinese numerals (a notation mixture draw)."""
    notation = rng.choices(NOTATIONS, weights=notation_mix)[0]
    if notation == "arabic":
        return set()
    if notation == "chinese" or width < 2:
        return set(range(width))
    cut = rng.randint(1, width - 1)  # switch once, between two columns, in a random direction
    return set(range(cut)) if rng.random() < 0.5 else set(range(cut, width))


WORKSHEET_TEMPLATE = BOS + TINY_TEMPLATE  # the Q&A prompt, in another kind of document


def sample_trace(problem, rng, config):
    """One Q&A response for `problem`: a draw from ``config.format_mix`` (module docstring)."""
    a, b = map(int, problem["question"].split("+"))
    guess = problem["answer"] if problem["digits"] < config.guess_digits else quick_sum(a, b)
    fmt = rng.choices(FORMATS, weights=config.format_mix)[0]
    if fmt == "answer":
        return f"{ANSWER_OPEN}{guess}{ANSWER_CLOSE}"
    if fmt == "bare":
        return guess
    if fmt == "think":
        return f"{THINK_OPEN}{guess}{THINK_CLOSE}{ANSWER_OPEN}{guess}{ANSWER_CLOSE}"
    return recheck(problem, rng, config)


def recheck(problem, rng, config):
    """A re-check: a first guess, "wait", the columns (slips, notation drawn), their answer."""
    a, b = map(int, problem["question"].split("+"))
    width = len(columns(a, b))
    first = quick_sum(a, b) if rng.random() < config.wrong_guess_prob else problem["answer"]
    slips = {i for i in range(width) if rng.random() < config.check_slip_prob}
    cot, result = write_cot(a, b, slips, chinese_columns(width, rng, config.notation_mix))
    return f"{THINK_OPEN}{first} {REFLECTION_WORD} {cot}{THINK_CLOSE}{ANSWER_OPEN}{result}{ANSWER_CLOSE}"


def sample_example(problem, rng, config):
    """One pretraining (prompt, response): a worksheet or a Q&A pair."""
    if rng.random() < config.worksheet_share:
        return WORKSHEET_TEMPLATE.format(question=problem["question"]), recheck(problem, rng, config)
    return make_prompt(problem, TINY_TEMPLATE), sample_trace(problem, rng, config)


def pretrain_reasoning(tokenizer, config=ReasoningPretrainConfig(), progress=True, checkpoint_dir=""):
    """Train the reasoning base from scratch on the mixture; return (model, sft history).

    checkpoint_dir: where to save and resume (``llm.sft.train_sft``); "" for none.
    """
    rng = random.Random(config.seed)
    problems = reasoning_problems(config.steps * config.batch_size, seed=config.seed, split="train")
    prompts, responses = map(list, zip(*(sample_example(p, rng, config) for p in problems)))
    model = new_model(tokenizer, config)
    return model, pretrain_sft(model, tokenizer, prompts, responses, config, progress, checkpoint_dir)
