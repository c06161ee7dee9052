"""Partial rollouts in training: stale segments trained on vs excluded, module 11's runs.

Each run is R1-Zero (``r1_zero.r1_zero_config``) with its rollout phase cut by a
token budget (``partial_grpo.train_partial_grpo``): every trajectory generates at
most ``BUDGET`` tokens an iteration, the unfinished wait in the buffer, a group is
trained when its last member finishes. The two settings differ only in what the
loss sees of a response spanning several iterations: its last segment only
(``exclude_stale=True``: the start of a long answer, where the model decides to
re-check, never gets a gradient) or every segment, the stale ones weighted by
pi_theta / pi_behaviour against their sampler's log-probs. Held-out greedy pass@1
per level every ``EVAL_EVERY`` iterations, ``SEEDS`` seeds; the runs are shipped as
trimmed histories (scripts/build_kimi_runs.py --stages partial).
"""

import json
import shutil
from dataclasses import replace
from pathlib import Path

from ..llm.model import DATA_DIR
from .kimi_sampling import load_histories
from .partial_grpo import train_partial_grpo
from .r1_zero import CURVE_SEED, level_evaluator, r1_zero_config
from .tasks import levelled_eval_set

BUDGET = 16  # tokens per trajectory per iteration: most answers fit, a re-check takes 2-4 iterations
STEPS = 60  # iterations, R1-Zero's steps
SEEDS = (0, 1, 2)
EVAL_EVERY = 5
SETTINGS = {"excluded": True, "stale": False}  # name -> exclude_stale
RUNS_DIR = DATA_DIR / "kimi" / "partial"
KEPT = ("step", "tokens", "rows", "continued", "new", "buffered", "groups", "trained_tokens", "stale_share",
        "accuracy", "length", "seconds", "eval_seconds")


def partial_config(seed=0, **overrides):
    """The GRPO config of one run: R1-Zero's, for ``STEPS`` iterations."""
    return r1_zero_config(**{"steps": STEPS, "seed": seed, "eval_every": EVAL_EVERY, **overrides})


def run_path(setting, seed):
    return RUNS_DIR / f"{setting}-{seed}.json"


def train_partial_run(setting, seed=0, out=None, progress=True, budget=BUDGET, **overrides):
    """Train one run; return its trimmed history (and write it to `out`, a .json path, if given)."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {sorted(SETTINGS)}, got {setting!r}")
    config = partial_config(seed, **overrides)
    if out is not None:
        config = replace(config, checkpoint_dir=str(out) + ".checkpoint")
    _, _, history = train_partial_grpo(config, budget=budget, exclude_stale=SETTINGS[setting], progress=progress,
                                       evaluator=level_evaluator(levelled_eval_set(25, CURVE_SEED)))
    history = [{k: v for k, v in log.items() if k in KEPT or k.startswith("eval/")} for log in history]
    if out is not None:
        Path(out).write_text(json.dumps({"setting": setting, "seed": seed, "budget": budget,
                                         "history": history}) + "\n")
        shutil.rmtree(config.checkpoint_dir, ignore_errors=True)
    return history


def load_partial_runs(seeds=SEEDS):
    """The shipped runs: {setting: [trimmed history of each seed]}."""
    return load_histories(SETTINGS, seeds, run_path, "partial")
