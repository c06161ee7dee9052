"""Curriculum vs uniform vs prioritized sampling on the reasoning base: module 11's runs.

Each run is R1-Zero (``r1_zero.r1_zero_config``) with its problems drawn every step
from the same pool of training problems (``reasoning.sampling.ProblemSampler``):
- "uniform": every pool problem alike;
- "curriculum": every level for ``CURRICULUM_WARMUP`` steps, then the hard level only
  (Kimi k1.5's ablation: warm up on all the data, then train on the hard problems);
- "prioritized": problem i with probability proportional to 1 - s_i, its success
  rate so far.
What is compared is the hard level's held-out greedy pass@1 against steps (every
step draws the same number of samples, so steps count samples), over ``SEEDS``.
The runs are shipped as trimmed histories (``load_sampling_runs``, built by
scripts/build_kimi_runs.py); nothing here needs their weights.
"""

import json
import shutil
from dataclasses import replace
from pathlib import Path

from ..llm.grpo import TASKS, train_grpo
from ..llm.model import DATA_DIR
from .r1_zero import CURVE_SEED, level_evaluator, r1_zero_config
from .sampling import SuccessTracker
from .tasks import LEVELS, levelled_eval_set

STEPS = 40
CURRICULUM_WARMUP = 10  # the re-check appears around step 12 of R1-Zero: warm up until just before it
STRATEGIES = {"uniform": {"sampling": "uniform"},
              "curriculum": {"sampling": "curriculum", "curriculum_warmup": CURRICULUM_WARMUP},
              "prioritized": {"sampling": "prioritized"}}
SEEDS = (0, 1, 2)
EVAL_EVERY = 4
RUNS_DIR = DATA_DIR / "kimi" / "sampling"  # the shipped runs, one .json per strategy and seed
KEPT = ("step", "problems", "correct", "lengths", "accuracy", "length", "seconds")  # what a saved run keeps


def sampling_config(strategy, seed=0, **overrides):
    """The GRPO config of one run: R1-Zero for ``STEPS`` steps, problems drawn by `strategy`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {strategy!r}")
    return r1_zero_config(**{"steps": STEPS, "seed": seed, "eval_every": EVAL_EVERY, **STRATEGIES[strategy],
                             **overrides})


def trim(history):
    """The parts of a history the study reads: per-step ``KEPT`` keys and the ``eval/`` figures."""
    return [{k: v for k, v in log.items() if k in KEPT or k.startswith("eval/")} for log in history]


def train_sampling_run(strategy, seed=0, out=None, progress=True, **overrides):
    """Train one run; return its trimmed history (and write it to `out`, a .json path, if given)."""
    config = sampling_config(strategy, seed, **overrides)
    if out is not None:
        config = replace(config, checkpoint_dir=str(out) + ".checkpoint")
    _, _, history = train_grpo(config, progress=progress,
                               evaluator=level_evaluator(levelled_eval_set(25, CURVE_SEED)))
    history = trim(history)
    if out is not None:
        Path(out).write_text(json.dumps({"strategy": strategy, "seed": seed, "history": history}) + "\n")
        shutil.rmtree(config.checkpoint_dir, ignore_errors=True)
    return history


def run_path(strategy, seed):
    return RUNS_DIR / f"{strategy}-{seed}.json"


def load_histories(names, seeds, path_of, stage):
    """Shipped trimmed histories: {name: [history of each seed]}, from ``path_of(name, seed)``.

    stage: the ``scripts/build_kimi_runs.py`` stage that builds a missing file.
    """
    runs = {}
    for name in names:
        for seed in seeds:
            path = path_of(name, seed)
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing; build it with "
                                        f"`python scripts/build_kimi_runs.py --stages {stage}`")
            runs.setdefault(name, []).append(json.loads(path.read_text())["history"])
    return runs


def load_sampling_runs(seeds=SEEDS):
    """The shipped runs: {strategy: [trimmed history of each seed]} (scripts/build_kimi_runs.py)."""
    return load_histories(STRATEGIES, seeds, run_path, "sampling")


def pool(config):
    """The pool of training problems a run drew from (rebuilt from its config)."""
    return TASKS[config.task](config.pool_size, seed=config.seed, split="train")


def steps_to(history, threshold, key=f"eval/pass@1/level_{max(LEVELS)}"):
    """The first step (counted from 1) after which `key` reached `threshold`, or None if it never did."""
    for log in history:
        if key in log and log[key] >= threshold:
            return log["step"] + 1
    return None


def level_shares(history, config):
    """Per step, the share of drawn problems at each level: {level: list of floats}."""
    problems = pool(config)
    levels = sorted({p["level"] for p in problems})
    shares = {d: [] for d in levels}
    for log in history:
        drawn = [problems[i]["level"] for i in log["problems"]]
        for d in levels:
            shares[d].append(drawn.count(d) / len(drawn))
    return shares


def weights_after(history, config, step):
    """The prioritized sampler's weights after `step` steps, replayed from the logged samples: (pool,)."""
    tracker = SuccessTracker(config.pool_size)
    G = config.group_size
    for log in history[:step]:
        index = [i for i in log["problems"] for _ in range(G)]
        tracker.update(index, [int(c) for c in log["correct"]])
    return tracker.weights()
