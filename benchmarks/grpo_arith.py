"""Benchmark: GRPO on the tiny model turns a weak base into a reliable adder.

    python benchmarks/grpo_arith.py                 # 3 seeds, the full check
    python benchmarks/grpo_arith.py --seeds 0 --steps 20   # a quick look

For each seed: greedy pass@1 and format rate on 500 held-out addition problems
before and after GRPO, wall-clock time of the training, and the process's peak
resident memory. Targets: pass@1 from <= 15% to >= 70% within 3 minutes of
GRPO, format >= 98%, peak RSS <= 2 GB. Exits non-zero when a target is missed.
"""

import argparse
import json
import resource
import sys
import time

import torch

from rlllm_course.llm.evaluate import evaluate
from rlllm_course.llm.grpo import GRPOConfig, train_grpo
from rlllm_course.llm.model import load_policy
from rlllm_course.llm.tasks import addition_problems

TARGETS = {"base_pass@1_max": 0.15, "pass@1_min": 0.70, "format_min": 0.98,
           "train_seconds_max": 180.0, "peak_rss_gb_max": 2.0}


def peak_rss_gb():
    """Peak resident set size of this process so far, in GB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run_seed(seed, steps, n_eval, eval_seed):
    torch.set_num_threads(1)
    problems = addition_problems(n_eval, seed=eval_seed, split="eval")
    base_model, tokenizer = load_policy("tiny")
    before = evaluate(base_model, tokenizer, problems)
    start = time.time()
    model, tokenizer, history = train_grpo(GRPOConfig(seed=seed, steps=steps))
    seconds = time.time() - start
    after = evaluate(model, tokenizer, problems)
    return {"seed": seed, "steps": steps, "train_seconds": round(seconds, 1),
            "base": {k: round(v, 4) for k, v in before.items()},
            "after": {k: round(v, 4) for k, v in after.items()},
            "final_train_kl": round(history[-1].get("policy/kl", float("nan")), 4),
            "train_accuracy_every_10": [round(h["accuracy"], 3) for h in history[9::10]],
            "train_length_every_10": [round(h["length"], 1) for h in history[9::10]],
            "peak_rss_gb": round(peak_rss_gb(), 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=GRPOConfig.steps)
    parser.add_argument("--n-eval", type=int, default=500)
    parser.add_argument("--out", default="", help="write the results as JSON to this file")
    args = parser.parse_args()

    results = []
    for seed in args.seeds:
        results.append(run_seed(seed, args.steps, args.n_eval, GRPOConfig.eval_seed))
        print(json.dumps(results[-1]), flush=True)
    failures = []
    for r in results:
        checks = {
            "base pass@1": r["base"]["pass@1"] <= TARGETS["base_pass@1_max"],
            "pass@1": r["after"]["pass@1"] >= TARGETS["pass@1_min"],
            "format": r["after"]["format"] >= TARGETS["format_min"],
            "time": r["train_seconds"] <= TARGETS["train_seconds_max"],
            "memory": r["peak_rss_gb"] <= TARGETS["peak_rss_gb_max"],
        }
        failures += [f"seed {r['seed']}: {name}" for name, ok in checks.items() if not ok]
    summary = {"targets": TARGETS, "results": results, "failures": failures}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2)
    print("PASS" if not failures else "FAIL: " + ", ".join(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
