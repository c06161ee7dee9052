"""long2short four ways from one long-CoT model (Kimi k1.5 §2.4): module 11's runs.

The long model (``LONG``, ``long_cot``) checks its sums one to three times; the
short model (``SHORT``, the R1 pipeline's cold start) checks once; both are SFTs of
the reasoning base, so their weights can be averaged. From the long model:
1. **model merging**: theta = alpha theta_long + (1 - alpha) theta_short (``ALPHAS``);
2. **shortest rejection sampling**: ``N_SAMPLES`` answers per training prompt, the
   shortest correct one kept, SFT of the long model on them;
3. **DPO**: the shortest correct answer chosen, wrong and >= 1.5x longer ones rejected
   (``long2short.dpo_pairs``), DPO of the long model;
4. **long2short RL**: GRPO from the long model with Kimi's length reward and a
   smaller rollout cap (``RL_MAX_NEW_TOKENS``); ``length_rl`` is the same run with
   the full cap, to tell the two apart.
Every model is measured the same way (``figures``): held-out greedy pass@1 and mean
greedy tokens, with room for the longest answer (``long_cot.MAX_NEW_TOKENS``).
"""

import json
from dataclasses import replace

import torch

from ..llm.dpo import DPOConfig, train_dpo
from ..llm.model import DATA_DIR, load_policy
from ..llm.rewards import accuracy_reward
from ..llm.rollout import generate
from ..llm.sft import SFTConfig, train_sft
from ..llm.tasks import make_prompt
from .long2short import average_state_dicts, dpo_pairs, shortest_correct
from .long_cot import MAX_NEW_TOKENS
from .evaluate import evaluate_levels
from .r1_zero import EVAL_SEED, r1_zero_config, train_run
from .tasks import levelled_eval_set, reasoning_problems

LONG, SHORT = "kimi-long", "r1-cold-start"
SAMPLE_SEED = 400  # the training prompts answers are sampled for
N_PROMPTS, N_SAMPLES = 256, 8  # Kimi samples each problem n = 8 times
ALPHAS = tuple(i / 10 for i in range(11))
RL_MAX_NEW_TOKENS = 64  # long2short RL's cap: a single check of a 5-digit sum fits, two do not
SEEDS = (0, 1, 2)
FIGURES_DIR = DATA_DIR / "kimi" / "long2short"
L2S_SFT = SFTConfig(epochs=2.0, batch_size=32, lr=3e-4, warmup_steps=5)
L2S_DPO = DPOConfig(epochs=2.0, batch_size=16, lr=1e-4, beta=0.1)  # at 3e-4 the long model fell to 16% pass@1


def figures(model, tokenizer, n_eval=100):
    """Held-out greedy pass@1 and mean tokens (eos included), overall and per level.

    Returns {"pass@1", "length", "levels": {"2": {"pass@1", "length"}, ...}} on
    `n_eval` problems per level of the final figures' set (``r1_zero.EVAL_SEED``).
    """
    # batches of 64: with answers this long, two batches of 64 rows decode faster than one of 128
    result = evaluate_levels(model, tokenizer, levelled_eval_set(n_eval, EVAL_SEED), n_samples=0,
                             max_new_tokens=MAX_NEW_TOKENS, batch_size=64)
    pick = lambda f: {"pass@1": round(f["pass@1"], 4), "length": round(f["length"], 2)}  # noqa: E731
    return {**pick(result["overall"]), "levels": {str(d): pick(f) for d, f in result["levels"].items()}}


def merged(alpha):
    """The long and short models averaged with weight `alpha` on the long one: (model, tokenizer)."""
    long, tokenizer = load_policy(LONG)
    short, _ = load_policy(SHORT)
    long.load_state_dict(average_state_dicts(long.state_dict(), short.state_dict(), alpha))
    return long, tokenizer


@torch.no_grad()
def long_samples(seed=0, n_prompts=N_PROMPTS, batch_prompts=8):
    """``N_SAMPLES`` answers of the long model to each of `n_prompts` training prompts.

    Returns {"problems", "prompts" (one per problem), "completions", "correct",
    "lengths" (tokens, eos included)}, samples prompt by prompt (groups of N_SAMPLES).
    """
    model, tokenizer = load_policy(LONG)
    problems = reasoning_problems(n_prompts, seed=SAMPLE_SEED + seed, split="train")
    prompts = [make_prompt(p) for p in problems]
    torch.manual_seed(seed)
    completions, lengths = [], []
    for start in range(0, len(problems), batch_prompts):
        out = generate(model, tokenizer, prompts[start:start + batch_prompts], group_size=N_SAMPLES,
                       max_new_tokens=MAX_NEW_TOKENS)
        completions += out.completions
        lengths += out.completion_mask.sum(-1).tolist()
    correct = accuracy_reward(completions, [p for p in problems for _ in range(N_SAMPLES)]).tolist()
    return {"problems": problems, "prompts": prompts, "completions": completions, "correct": correct,
            "lengths": lengths}


def shortest_rs_sft(samples, seed=0, progress=True):
    """Shortest rejection sampling: SFT of the long model on the shortest correct answer of each prompt."""
    picks = shortest_correct(samples["completions"], samples["correct"], samples["lengths"], N_SAMPLES)
    kept = [(samples["prompts"][g], samples["completions"][c]) for g, c in enumerate(picks) if c is not None]
    model, tokenizer = load_policy(LONG)
    train_sft(model, tokenizer, [p for p, _ in kept], [r for _, r in kept], replace(L2S_SFT, seed=seed),
              progress=progress, desc="shortest RS SFT")
    return model, tokenizer, len(kept)


def long2short_dpo(samples, seed=0, progress=True):
    """DPO of the long model on Kimi's long2short pairs from `samples`."""
    pairs = dpo_pairs(samples["prompts"], samples["completions"], samples["correct"], samples["lengths"],
                      N_SAMPLES)
    model, tokenizer = load_policy(LONG)
    train_dpo(model, tokenizer, pairs, replace(L2S_DPO, seed=seed), progress=progress)
    return model, tokenizer, len(pairs)


def rl_config(seed=0, max_new_tokens=RL_MAX_NEW_TOKENS, **overrides):
    """long2short RL: GRPO from the long model with the length reward from the first step."""
    return r1_zero_config(**{"model": LONG, "seed": seed, "steps": 30, "lr": 2e-4, "length_weight": 1.0,
                             "max_new_tokens": max_new_tokens, **overrides})


def long2short_rl(seed=0, max_new_tokens=RL_MAX_NEW_TOKENS, progress=True, out=None):
    """Train ``rl_config``; return (model, tokenizer, history) (held-out curves every 5 steps)."""
    model, tokenizer, history, _ = train_run(rl_config(seed, max_new_tokens), out=out, n_eval=0, progress=progress,
                                             eval_max_new_tokens=MAX_NEW_TOKENS)
    return model, tokenizer, history


def curve(history):
    """The held-out points of an RL run: [{"step", "pass@1", "length"}] every evaluation."""
    return [{"step": log["step"] + 1, "pass@1": log["eval/pass@1"], "length": log["eval/length"]}
            for log in history if "eval/pass@1" in log]


def seed_figures(seed, merging=False, progress=True):
    """Everything of one seed: the four methods' ``figures`` and the samples they came from.

    merging: also the long and short models and the merging sweep over ``ALPHAS``
    (nothing there is drawn at random: once is enough, with seed 0).
    """
    out = {"seed": seed}
    if merging:
        out["long"] = figures(*load_policy(LONG))
        out["short"] = figures(*load_policy(SHORT))
        out["merging"] = [{"alpha": a, **figures(*merged(a))} for a in ALPHAS]
    samples = long_samples(seed)
    model, tokenizer, kept = shortest_rs_sft(samples, seed, progress)
    out["rs_sft"] = {**figures(model, tokenizer), "examples": kept}
    model, tokenizer, pairs = long2short_dpo(samples, seed, progress)
    out["dpo"] = {**figures(model, tokenizer), "pairs": pairs}
    for name, cap in (("rl", RL_MAX_NEW_TOKENS), ("length_rl", MAX_NEW_TOKENS)):
        model, tokenizer, history = long2short_rl(seed, cap, progress)
        out[name] = {**figures(model, tokenizer), "curve": curve(history), "max_new_tokens": cap}
    out["samples"] = {k: samples[k] for k in ("completions", "correct", "lengths")}
    return out


def load_figures(seed):
    """The shipped figures of one seed (scripts/build_kimi_runs.py --stages long2short)."""
    path = FIGURES_DIR / f"seed-{seed}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; build it with "
                                f"`python scripts/build_kimi_runs.py --stages long2short`")
    return json.loads(path.read_text())
