"""R1-Zero on the reasoning base: GRPO with rule rewards only, and what to measure on the run.

The loop is module 08's (``llm.grpo.train_grpo``) with the reasoning base, problems
at every level and room for long answers. What is new is what we look at:
pass@1 per level, response length, the share of samples that re-check ("wait"),
and the share whose CoT mixes notations, step by step.
"""

import json
from dataclasses import replace

from ..llm.grpo import GRPOConfig, TASKS
from ..llm.model import resolve_model_path
from .evaluate import MAX_NEW_TOKENS, evaluate_levels
from .reflection_study import FORMS, cot_form
from .rewards import has_reflection, notation


def r1_zero_config(**overrides):
    """The course's R1-Zero run: GRPO from the reasoning base; keyword arguments override."""
    base = GRPOConfig(model="reasoning", task="reasoning", steps=60, prompts_per_step=16,
                      group_size=8, lr=5e-4, max_new_tokens=MAX_NEW_TOKENS, log_kl=False)
    return replace(base, **overrides)


# The reference runs shipped with the course (scripts/build_reasoning_runs.py).
RUNS = {"r1-zero": {}, "r1-zero-consistency": {"consistency_weight": 1.0}}


def load_run(name):
    """A shipped reference run: (history, run) -- its per-step log and its config and figures."""
    path = resolve_model_path(name)
    return json.loads((path / "history.json").read_text()), json.loads((path / "run.json").read_text())


def level_evaluator(problems, n_samples=0, k=8):
    """An ``evaluator`` for ``train_grpo``: greedy pass@1 overall and per level on `problems`.

    Returns f(model, tokenizer) -> {"pass@1", "length", "pass@1/level_d", ...} (flat floats).
    """
    def evaluator(model, tokenizer):
        figures = evaluate_levels(model, tokenizer, problems, n_samples=n_samples, k=k)
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
