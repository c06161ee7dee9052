"""long2short four ways from one long-CoT model (Kimi k1.5 §2.4): module 11's runs.

The long model (``LONG``, ``long_cot``) checks its sums one to three times; the
short model (``SHORT``, the R1 pipeline's cold start) checks once; both are SFTs of
the reasoning base, so their weights can be averaged. From the long model:
1. **model merging**: theta = alpha theta_long + (1 - alpha) theta_short (``ALPHAS``);
2. **shortest rejection sampling**: ``N_SAMPLES`` answers per training prompt, the
   shortest correct one kept, SFT of the long model on them;
3. **DPO**: the shortest correct answer chosen, wrong and >= 1.5x longer ones rejected
   (``long2short.dpo_pairs``), DPO of the long model with the chosen answers' NLL added (``L2S_DPO``);
4. **long2short RL**: GRPO from the long model with Kimi's length reward and a
   smaller rollout cap (``RL_MAX_NEW_TOKENS``); ``length_rl`` is the same run with
   the full cap, to tell the two apart.
Every model is measured the same way (``figures``): held-out greedy pass@1 and mean
greedy tokens, with room for the longest answer (``long_cot.MAX_NEW_TOKENS``).
"""

import json
from dataclasses import replace
from pathlib import Path

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
# A pair agrees up to the end of the first check, where the chosen answer closes its thought and the
# rejected one checks again: plain DPO (lr 1e-4, and 3e-5 less so) lowered both and left the long model at
# 2% pass@1 with short answers; the chosen answers' NLL (weight 1, RPO) keeps them likely.
L2S_DPO = DPOConfig(epochs=2.0, batch_size=16, lr=3e-5, beta=0.1, sft_weight=1.0)


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


def shortest_rs_sft(samples, seed=0, progress=True, checkpoint_dir=""):
    """Shortest rejection sampling: SFT of the long model on the shortest correct answer of each prompt."""
    picks = shortest_correct(samples["completions"], samples["correct"], samples["lengths"], N_SAMPLES)
    kept = [(samples["prompts"][g], samples["completions"][c]) for g, c in enumerate(picks) if c is not None]
    model, tokenizer = load_policy(LONG)
    train_sft(model, tokenizer, [p for p, _ in kept], [r for _, r in kept],
              replace(L2S_SFT, seed=seed, checkpoint_dir=checkpoint_dir), progress=progress, desc="shortest RS SFT")
    return model, tokenizer, len(kept)


def long2short_dpo(samples, seed=0, progress=True, checkpoint_dir=""):
    """DPO of the long model on Kimi's long2short pairs from `samples`."""
    pairs = dpo_pairs(samples["prompts"], samples["completions"], samples["correct"], samples["lengths"],
                      N_SAMPLES)
    model, tokenizer = load_policy(LONG)
    train_dpo(model, tokenizer, pairs, replace(L2S_DPO, seed=seed, checkpoint_dir=checkpoint_dir), progress=progress)
    return model, tokenizer, len(pairs)


def rl_config(seed=0, max_new_tokens=RL_MAX_NEW_TOKENS, **overrides):
    """long2short RL: GRPO from the long model with the length reward from the first step."""
    return r1_zero_config(**{"model": LONG, "seed": seed, "steps": 30, "lr": 2e-4, "length_weight": 1.0,
                             "max_new_tokens": max_new_tokens, **overrides})


def long2short_rl(seed=0, max_new_tokens=RL_MAX_NEW_TOKENS, progress=True, checkpoint_dir=""):
    """Train ``rl_config``; return (model, tokenizer, history) (held-out curves every 5 steps)."""
    model, tokenizer, history, _ = train_run(rl_config(seed, max_new_tokens, checkpoint_dir=checkpoint_dir),
                                             n_eval=0, progress=progress, eval_max_new_tokens=MAX_NEW_TOKENS)
    return model, tokenizer, history


def curve(history):
    """The held-out points of an RL run: [{"step", "pass@1", "length"}] every evaluation."""
    return [{"step": log["step"] + 1, "pass@1": log["eval/pass@1"], "length": log["eval/length"]}
            for log in history if "eval/pass@1" in log]


def seed_figures(seed, merging=False, progress=True, work_dir=None):
    """Everything of one seed: the four methods' ``figures`` and the samples they came from.

    merging: also the long and short models and the merging sweep over ``ALPHAS``
    (nothing there is drawn at random: once is enough, with seed 0).
    work_dir: a folder where every finished part is saved (``<part>.json``) and
    every training checkpoints; run again with it, an interrupted build resumes
    where it stopped.
    """
    work = Path(work_dir) if work_dir else None

    def part(name, compute):
        path = work / f"{name}.json" if work else None
        if path is not None and path.exists():
            return json.loads(path.read_text())
        value = compute(str(work / f"{name}-checkpoint") if work else "")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        return value

    def rl(cap):
        def compute(checkpoint_dir):
            model, tokenizer, history = long2short_rl(seed, cap, progress, checkpoint_dir)
            return {**figures(model, tokenizer), "curve": curve(history), "max_new_tokens": cap}
        return compute

    out = {"seed": seed}
    if merging:
        out["long"] = part("long", lambda _: figures(*load_policy(LONG)))
        out["short"] = part("short", lambda _: figures(*load_policy(SHORT)))
        out["merging"] = part("merging", lambda _: [{"alpha": a, **figures(*merged(a))} for a in ALPHAS])
    samples = part("samples", lambda _: long_samples(seed))

    def rs_sft(checkpoint_dir):
        model, tokenizer, kept = shortest_rs_sft(samples, seed, progress, checkpoint_dir)
        return {**figures(model, tokenizer), "examples": kept}

    def dpo(checkpoint_dir):
        model, tokenizer, pairs = long2short_dpo(samples, seed, progress, checkpoint_dir)
        return {**figures(model, tokenizer), "pairs": pairs}

    out["rs_sft"] = part("rs_sft", rs_sft)
    out["dpo"] = part("dpo", dpo)
    out["rl"] = part("rl", rl(RL_MAX_NEW_TOKENS))
    out["length_rl"] = part("length_rl", rl(MAX_NEW_TOKENS))
    out["samples"] = {k: samples[k] for k in ("completions", "correct", "lengths")}
    return out


def load_figures(seed):
    """The shipped figures of one seed (scripts/build_kimi_runs.py --stages long2short)."""
    path = FIGURES_DIR / f"seed-{seed}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; build it with "
                                f"`python scripts/build_kimi_runs.py --stages long2short`")
    return json.loads(path.read_text())
