"""The R1 pipeline on the reasoning base: cold start, rejection sampling, distillation.

DeepSeek-R1 (lecture §3.1) wraps R1-Zero's RL in supervised steps:
1. **cold start**: SFT of the base on a few thousand readable long CoTs (here: a few
   hundred re-checks in one notation whose columns are all right, ``cold_start_data``);
2. reasoning RL from there (module 09's GRPO);
3. **rejection sampling**: sample N answers per prompt from the RL checkpoint, keep the
   right and readable ones (``rejection_filter``), SFT a fresh base on them;
4. **distillation**: the same SFT into a smaller student (``distillation_data``).
Every SFT here is ``llm.sft.train_sft``: cross-entropy on the response tokens only.
"""

import json
import random
from dataclasses import replace

import torch

from ..llm.model import DATA_DIR, load_policy
from ..llm.rewards import _check_list, accuracy_reward, consistency_reward, format_reward
from ..llm.rollout import generate
from ..llm.sft import SFTConfig, train_sft
from ..llm.tasks import make_prompt
from .evaluate import MAX_NEW_TOKENS
from .pretrain import ReasoningPretrainConfig, recheck
from .r1_zero import RUNS, r1_zero_config
from .tasks import reasoning_problems

COLD_START_SEED = 100  # the curated set's problems and first guesses
COLD_START_N = 300     # "a few hundred" curated CoTs (R1 used thousands, for a far larger model)
TEACHER_SEED = 200     # the prompts rejection sampling draws from
FIGURES_DIR = DATA_DIR / "r1-pipeline"  # shipped samples and multi-seed figures (scripts/build_r1_pipeline.py)


def cold_start_data(n, seed=COLD_START_SEED):
    """`n` curated cold-start examples: (problems, prompts, responses).

    Each response is a re-check in the form the base read in its worksheets --
    a first guess (the carry-forgetting quick sum half the time), "wait", the
    columns, the answer -- but curated as R1's cold-start data was: every column
    right and every column in Arabic digits (readable, one notation).
    """
    problems = reasoning_problems(n, seed=seed, split="train")
    curated = replace(ReasoningPretrainConfig(), check_slip_prob=0.0, notation_mix=(1.0, 0.0, 0.0))
    rng = random.Random(seed)
    responses = [recheck(p, rng, curated) for p in problems]
    return problems, [make_prompt(p) for p in problems], responses


def rejection_filter(completions, problems, min_consistency=1.0):
    """Which completions rejection sampling keeps: (N,) bool tensor.

    Kept: the format holds, the answer is right, and the CoT is readable (its
    language consistency, ``llm.rewards.consistency_reward``, at least
    `min_consistency`; 1.0 keeps only CoTs written entirely in the target notation).
    """
    _check_list("completions", completions)
    if len(problems) != len(completions):
        raise ValueError(f"problems must have one entry per completion ({len(completions)}), got {len(problems)}")
    if not 0.0 <= min_consistency <= 1.0:
        raise ValueError(f"min_consistency must be in [0, 1], got {min_consistency}")
    right = (format_reward(completions) == 1) & (accuracy_reward(completions, problems) == 1)
    return right & (consistency_reward(completions) >= min_consistency)


def distillation_data(problems, completions, keep, group_size, max_per_prompt=1, seed=0):
    """SFT pairs from a teacher's filtered samples: (prompts, responses, problems).

    problems: N problems; completions, keep: N * group_size samples and the
    filter's verdicts, prompt by prompt (``generate``'s order). Per problem: the
    kept completions, duplicates dropped (first occurrence kept), at most
    `max_per_prompt` of them drawn at random (seeded by `seed`); a problem with
    none kept is dropped. Responses are stripped of surrounding whitespace.
    """
    _check_list("completions", completions)
    keep = [bool(k) for k in keep]
    if len(completions) != len(problems) * group_size or len(keep) != len(completions):
        raise ValueError(f"completions and keep must hold group_size * len(problems) = "
                         f"{group_size * len(problems)} entries, got {len(completions)} and {len(keep)}")
    if max_per_prompt < 1:
        raise ValueError(f"max_per_prompt must be >= 1, got {max_per_prompt}")
    rng = random.Random(seed)
    prompts, responses, kept_problems = [], [], []
    for i, problem in enumerate(problems):
        group = slice(i * group_size, (i + 1) * group_size)
        unique = list(dict.fromkeys(c.strip() for c, k in zip(completions[group], keep[group]) if k))
        chosen = rng.sample(unique, min(max_per_prompt, len(unique)))
        prompts += [make_prompt(problem)] * len(chosen)
        responses += chosen
        kept_problems += [problem] * len(chosen)
    return prompts, responses, kept_problems


@torch.no_grad()
def rejection_sample(model, tokenizer, problems, n_samples=8, batch_prompts=16, min_consistency=1.0,
                     max_new_tokens=MAX_NEW_TOKENS):
    """Sample `n_samples` answers per problem and filter them: (completions, keep).

    Seed torch before calling for a reproducible sample. Returns the N * n_samples
    completions, prompt by prompt, and ``rejection_filter``'s verdict on each.
    """
    completions = []
    for start in range(0, len(problems), batch_prompts):
        chunk = problems[start:start + batch_prompts]
        out = generate(model, tokenizer, [make_prompt(p) for p in chunk], group_size=n_samples,
                       max_new_tokens=max_new_tokens)
        completions += out.completions
    repeated = [p for p in problems for _ in range(n_samples)]
    return completions, rejection_filter(completions, repeated, min_consistency)


def cold_start_config(seed=0, **overrides):
    """The cold-start SFT: two passes over the curated set, a small learning rate.

    The base already writes this form now and then, so a gentle nudge is enough;
    the learning rate is a tenth of the base's pretraining one.
    """
    return replace(SFTConfig(seed=seed, epochs=2.0, batch_size=32, lr=3e-4, warmup_steps=5), **overrides)


def cold_start(seed=0, n=COLD_START_N, progress=True, **overrides):
    """Stage 1: SFT of the reasoning base on ``cold_start_data(n)``; returns (model, tokenizer, history)."""
    model, tokenizer = load_policy("reasoning")
    _, prompts, responses = cold_start_data(n)
    history = train_sft(model, tokenizer, prompts, responses, cold_start_config(seed, **overrides),
                        progress=progress, desc="cold start")
    return model, tokenizer, history


def reasoning_rl_config(**overrides):
    """Stage 2: R1's reasoning RL from the cold start -- module 09's GRPO with the consistency reward.

    Half the steps of the R1-Zero run (the cold start is there to shorten it), at
    a smaller learning rate (``r1_zero.RUNS`` says why).
    """
    return r1_zero_config(**{**RUNS["r1-cold-start-rl"], **overrides})


def load_figures(name):
    """A shipped figures file of the pipeline (``teacher_samples``, ``seeds``, ``distillation``)."""
    path = FIGURES_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; build it with `python scripts/build_r1_pipeline.py`")
    return json.loads(path.read_text())
