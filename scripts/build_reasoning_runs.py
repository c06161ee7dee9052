"""Train and ship the reasoning track's reference runs (a few minutes each on one core).

    python scripts/build_reasoning_runs.py                 # every run below
    python scripts/build_reasoning_runs.py --runs r1-zero  # one of them

- ``r1-zero``: GRPO from the reasoning base with accuracy + format (module 09);
- ``r1-zero-consistency``: the same with R1's language-consistency reward added.

Each is saved as a model folder under ``rlllm_course/data/`` (loadable by name with
``load_policy``) holding ``history.json`` (the run's per-step log, its sampled
completions included) and ``run.json`` (config, seconds, held-out figures per level).
An interrupted run resumes from its checkpoint.
"""

import argparse
import dataclasses
import json
import shutil
import time

import torch

from rlllm_course.llm.grpo import train_grpo
from rlllm_course.llm.model import DATA_DIR, SHIPPED_MODELS
from rlllm_course.reasoning.evaluate import evaluate_levels
from rlllm_course.reasoning.r1_zero import RUNS, level_evaluator, r1_zero_config
from rlllm_course.reasoning.tasks import levelled_eval_set

EVAL_SEED = 1234


def build(name, n_eval):
    out = SHIPPED_MODELS.get(name, DATA_DIR / name)
    config = r1_zero_config(**RUNS[name], checkpoint_dir=str(out / "checkpoint"))
    start = time.time()
    evaluator = level_evaluator(levelled_eval_set(25, EVAL_SEED + 1))  # a small set, for the curves
    config = dataclasses.replace(config, eval_every=5)
    model, tokenizer, history = train_grpo(config, evaluator=evaluator)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    figures = evaluate_levels(model, tokenizer, levelled_eval_set(n_eval, EVAL_SEED))
    run = {"config": dataclasses.asdict(dataclasses.replace(config, checkpoint_dir="")),
           "train_seconds": round(history[-1]["seconds"], 1), "build_seconds": round(time.time() - start, 1),
           "eval": {"per_level": n_eval, "seed": EVAL_SEED,
                    "overall": {k: round(v, 4) for k, v in figures["overall"].items()},
                    "levels": {d: {k: round(v, 4) for k, v in f.items()} for d, f in figures["levels"].items()}},
           "versions": {"torch": torch.__version__}}
    (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    (out / "history.json").write_text(json.dumps(
        [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in log.items()} for log in history]) + "\n")
    shutil.rmtree(out / "checkpoint", ignore_errors=True)
    print(name, json.dumps(run["eval"]["levels"]), f"{run['train_seconds']} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--n-eval", type=int, default=100, help="held-out problems per level")
    args = parser.parse_args()
    for name in args.runs:
        build(name, args.n_eval)


if __name__ == "__main__":
    main()
