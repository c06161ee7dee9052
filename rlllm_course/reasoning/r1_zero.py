"""R1-Zero on the reasoning base: GRPO with rule rewards only, and what to measure on the run.

The loop is module 08's (``llm.grpo.train_grpo``) with the reasoning base, problems
at every level and room for long answers. What is new is what we look at:
pass@1 per level, response length, the share of samples that re-check ("wait"),
and the share whose CoT mixes notations, step by step.
"""

import dataclasses
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..llm.grpo import GRPOConfig, TASKS, train_grpo
from ..llm.model import resolve_model_path
from .evaluate import MAX_NEW_TOKENS, evaluate_levels
from .reflection_study import FORMS, cot_form
from .rewards import has_reflection, notation
from .tasks import levelled_eval_set


def r1_zero_config(**overrides):
    """The course's R1-Zero run: GRPO from the reasoning base; keyword arguments override."""
    base = GRPOConfig(model="reasoning", task="reasoning", steps=60, prompts_per_step=16,
                      group_size=8, lr=5e-4, max_new_tokens=MAX_NEW_TOKENS, log_kl=False)
    return replace(base, **overrides)


# The reference runs shipped with the course (scripts/build_reasoning_runs.py): overrides of
# ``r1_zero_config``. R1's reasoning RL starts from the cold start (scripts/build_r1_pipeline.py
# builds "r1-cold-start" first) with half the steps and a smaller learning rate: the fine-tuned
# model is sharp, and at 5e-4 without a KL penalty its first column drifted to one digit and
# greedy pass@1 fell by ten points. "r1-zero-small" is R1-Zero on the small student, the RL
# side of the distillation comparison.
RUNS = {"r1-zero": {}, "r1-zero-consistency": {"consistency_weight": 1.0},
        "r1-cold-start-rl": {"model": "r1-cold-start", "steps": 30, "lr": 2e-4, "consistency_weight": 1.0},
        "r1-zero-small": {"model": "reasoning-small"}}
EVAL_SEED = 1234    # the held-out set of the final figures (100 problems per level)
CURVE_SEED = 1235   # the smaller held-out set evaluated during training (25 per level)


def load_run(name):
    """A shipped reference run: (history, run) -- its per-step log and its config and figures."""
    path = resolve_model_path(name)
    return json.loads((path / "history.json").read_text()), json.loads((path / "run.json").read_text())


def run_figures(model, tokenizer, n_eval=100, max_new_tokens=MAX_NEW_TOKENS):
    """A trained model's held-out figures per level, rounded for a run.json (seeded samples).

    Level keys are strings, as they read back from the JSON file.
    """
    torch.manual_seed(0)
    figures = evaluate_levels(model, tokenizer, levelled_eval_set(n_eval, EVAL_SEED), max_new_tokens=max_new_tokens)
    return {"per_level": n_eval, "seed": EVAL_SEED,
            "overall": {k: round(v, 4) for k, v in figures["overall"].items()},
            "levels": {str(d): {k: round(v, 4) for k, v in f.items()} for d, f in figures["levels"].items()}}


def train_run(config, out=None, n_eval=100, progress=True, eval_max_new_tokens=MAX_NEW_TOKENS):
    """Train one GRPO run with the level curves logged every 5 steps, and measure it.

    Returns (model, tokenizer, history, run) where run holds the config, the
    training seconds and ``run_figures`` (none with n_eval=0). With `out` (a folder) the model is saved
    there loadable by ``load_policy``, with ``history.json`` and ``run.json``
    (``load_run`` reads them back); an interrupted run resumes from its checkpoint.
    eval_max_new_tokens: the evaluations' cap, which may differ from the rollouts'
    ``config.max_new_tokens`` (long2short RL trains with a smaller one).
    """
    if out is not None:
        config = replace(config, checkpoint_dir=str(Path(out) / "checkpoint"))
    config = replace(config, eval_every=config.eval_every or 5)
    start = time.time()
    model, tokenizer, history = train_grpo(config, progress=progress,
                                           evaluator=level_evaluator(levelled_eval_set(25, CURVE_SEED),
                                                                     max_new_tokens=eval_max_new_tokens))
    run = {"config": dataclasses.asdict(replace(config, checkpoint_dir="")),
           "train_seconds": round(history[-1]["seconds"], 1),  # the curves' evaluations included
           "eval_seconds": round(history[-1]["eval_seconds"], 1), "build_seconds": round(time.time() - start, 1),
           "eval": run_figures(model, tokenizer, n_eval, eval_max_new_tokens) if n_eval else None, "versions": {"torch": torch.__version__}}
    if out is not None:
        out = Path(out)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
        (out / "history.json").write_text(json.dumps(
            [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in log.items()} for log in history]) + "\n")
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
    return model, tokenizer, history, run


def level_evaluator(problems, n_samples=0, k=8, max_new_tokens=MAX_NEW_TOKENS):
    """An ``evaluator`` for ``train_grpo``: greedy pass@1 overall and per level on `problems`.

    Returns f(model, tokenizer) -> {"pass@1", "length", "pass@1/level_d", ...} (flat floats).
    """
    def evaluator(model, tokenizer):
        figures = evaluate_levels(model, tokenizer, problems, n_samples=n_samples, k=k,
                                  max_new_tokens=max_new_tokens)
        flat = {key: value for key, value in figures["overall"].items()}
        for level, values in figures["levels"].items():
            flat.update({f"{key}/level_{level}": value for key, value in values.items()})
        return flat
    return evaluator


def training_curves(history, config):
    """Per-step figures of the training samples, overall and per level.

    history: ``train_grpo``'s list (with ``completions`` and ``correct``); config: its
    ``GRPOConfig`` (the problems of every step are rebuilt from it). Returns a dict
    of lists, one entry per step: ``step``, ``length`` (mean tokens), ``accuracy``,
    ``reflection`` (share of samples that re-check), ``mixed`` (share whose CoT mixes
    notations), the share of each CoT form (``form/none``, ``form/guess``, ...,
    ``reflection_study.FORMS``), and ``accuracy/level_d``, ``length/level_d``,
    ``reflection/level_d`` for every level d.
    """
    problems = TASKS[config.task](config.steps * config.prompts_per_step, seed=config.seed, split="train")
    G, n = config.group_size, config.prompts_per_step
    levels = sorted({p["level"] for p in problems})
    keys = ["step", "length", "accuracy", "reflection", "mixed"] + [f"form/{f}" for f in FORMS] + [
        f"{m}/level_{d}" for m in ("accuracy", "length", "reflection") for d in levels]
    curves = {k: [] for k in keys}

    def mean(values):
        return sum(values) / len(values) if values else float("nan")
    for log in history:
        step, texts = log["step"], log["completions"]
        row_levels = [p["level"] for p in problems[step * n:(step + 1) * n] for _ in range(G)]
        lengths = log["lengths"]
        reflect = [has_reflection(t) for t in texts]
        forms = [cot_form(t) for t in texts]
        curves["step"].append(step)
        curves["length"].append(log["length"])
        curves["accuracy"].append(log["accuracy"])
        curves["reflection"].append(mean(reflect))
        curves["mixed"].append(mean([notation(t) == "mixed" for t in texts]))
        for f in FORMS:
            curves[f"form/{f}"].append(mean([x == f for x in forms]))
        for d in levels:
            rows = [i for i, lv in enumerate(row_levels) if lv == d]
            curves[f"accuracy/level_{d}"].append(mean([log["correct"][i] for i in rows]))
            curves[f"length/level_{d}"].append(mean([lengths[i] for i in rows]))
            curves[f"reflection/level_{d}"].append(mean([reflect[i] for i in rows]))
    return curves
