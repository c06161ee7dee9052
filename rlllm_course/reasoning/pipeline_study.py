"""The R1 pipeline's comparisons, run for a seed: what module 10 ships and its benchmark measures.

- ``seed_curves``: R1's reasoning RL from the cold start against R1-Zero with the same
  reward, held-out greedy pass@1 against RL steps (does the cold start shorten RL?);
- ``distillation_run``: the small student fine-tuned on the teacher's kept samples against
  the same student trained by RL for the same wall time (R1's Table 6 in small).
"""

import dataclasses
import math
import tempfile

from ..llm.model import load_policy
from ..llm.sft import SFTConfig, train_sft
from .r1_pipeline import cold_start, distillation_data, load_figures, rejection_filter
from .r1_zero import CURVE_SEED, RUNS, level_evaluator, r1_zero_config, run_figures, train_run
from .tasks import levelled_eval_set, reasoning_problems

# the student's SFT: the small model learns fastest at its pretraining learning rate
DISTILL_SFT = SFTConfig(batch_size=32, lr=3e-3, warmup_steps=20)
PER_PROMPT = 2  # kept samples per teacher prompt in the SFT data


def curve(history, start):
    """Held-out points of a run: `start` (the initial model's) at step 0, then each evaluation."""
    points = [dict(start, step=0, seconds=0.0)]
    for log in history:
        if "eval/pass@1" in log:
            points.append({"step": log["step"] + 1, "seconds": round(log["seconds"], 1),
                           **{k[5:]: round(v, 4) for k, v in log.items() if k.startswith("eval/")}})
    return points


def curve_evaluator():
    """The evaluator of the curves: greedy figures on 25 held-out problems per level."""
    return level_evaluator(levelled_eval_set(25, CURVE_SEED))


def seed_curves(seed, progress=True):
    """For one seed: the curves of R1-Zero + consistency and of cold start + reasoning RL.

    Returns {"r1-zero-consistency": points, "cold-start": point, "r1-cold-start-rl": points}.
    """
    evaluate = curve_evaluator()
    base, tokenizer = load_policy("reasoning")
    _, _, history, _ = train_run(r1_zero_config(**RUNS["r1-zero-consistency"], seed=seed), n_eval=0,
                                 progress=progress)
    out = {"r1-zero-consistency": curve(history, evaluate(base, tokenizer))}
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer, _ = cold_start(seed, progress=progress)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        out["cold-start"] = evaluate(model, tokenizer)
        config = r1_zero_config(**{**RUNS["r1-cold-start-rl"], "model": tmp, "seed": seed})
        _, _, history, _ = train_run(config, n_eval=0, progress=progress)
    out["r1-cold-start-rl"] = curve(history, out["cold-start"])
    return out


def distillation_pairs(seed=0):
    """The SFT pairs of rejection sampling and distillation, from the shipped teacher samples."""
    shipped = load_figures("teacher_samples")
    problems = reasoning_problems(shipped["n_prompts"], seed=shipped["seed"], split="train")
    repeated = [p for p in problems for _ in range(shipped["n_samples"])]
    keep = rejection_filter(shipped["completions"], repeated)
    return distillation_data(problems, shipped["completions"], keep, shipped["n_samples"],
                             max_per_prompt=PER_PROMPT, seed=seed)


def distillation_run(seed, rl_out=None, progress=True, n_eval=100, **rl_overrides):
    """The small student by RL, then by distillation for the same wall time.

    RL is R1-Zero's recipe on ``reasoning-small`` (``RUNS["r1-zero-small"]``); its
    training seconds (evaluations excluded) are the budget. The SFT steps that fit
    in it are measured here, from 20 timed steps. Returns (student, tokenizer, figures)
    with figures {"budget_seconds", "rl", "rl_seconds", "distilled", "sft_seconds",
    "sft_steps", "examples"} (``rl`` / ``distilled``: ``run_figures``); rl_out: where
    to save the RL student (None: not saved); n_eval: held-out problems per level;
    rl_overrides: changes to the RL config (fewer steps for a quick look, say).
    """
    config = r1_zero_config(**{**RUNS["r1-zero-small"], "seed": seed, **rl_overrides})
    _, tokenizer, history, rl = train_run(config, rl_out, n_eval, progress=progress)
    budget = history[-1]["seconds"] - history[-1]["eval_seconds"]
    prompts, responses, _ = distillation_pairs(seed)
    probe, _ = load_policy("reasoning-small")
    timing = train_sft(probe, tokenizer, prompts, responses,
                       dataclasses.replace(DISTILL_SFT, seed=seed, epochs=20 * DISTILL_SFT.batch_size / len(prompts)),
                       progress=False)
    steps = max(1, math.floor(budget * len(timing) / timing[-1]["seconds"]))
    config = dataclasses.replace(DISTILL_SFT, seed=seed, epochs=steps * DISTILL_SFT.batch_size / len(prompts))
    student, _ = load_policy("reasoning-small")
    sft = train_sft(student, tokenizer, prompts, responses, config, progress=progress, desc=f"distill seed {seed}")
    return student, tokenizer, {
        "budget_seconds": round(budget, 1), "rl": rl["eval"], "rl_seconds": round(budget, 1),
        "distilled": run_figures(student, tokenizer, n_eval), "sft_seconds": round(sft[-1]["seconds"], 1),
        "sft_steps": len(sft), "examples": len(prompts), "sft_config": dataclasses.asdict(config)}
