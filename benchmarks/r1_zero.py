"""Benchmark: R1-Zero from the reasoning base, with and without R1's consistency reward.

    python benchmarks/r1_zero.py                      # 3 seeds, the full check
    python benchmarks/r1_zero.py --seeds 0 --steps 30 # a quick look

For each seed, GRPO with accuracy + format (R1-Zero), then the same run with the
language-consistency reward added (R1). Measured on the held-out levelled set
(100 problems per level): greedy pass@1 of the hardest level before and after,
sampled response length and reflection rate (share of samples that re-check)
before and after, the share of sampled CoTs that mix notations, the sampled
consistency, training seconds, peak RSS.
Also the training seconds until greedy pass@1 on 50 hardest-level problems (checked
every 5 steps) first reaches 60%. Measure on an otherwise idle machine.
Targets: hardest-level pass@1 <= 10% -> >= 60% within 300 s of GRPO; sampled
length >= 1.5x and reflection >= 5x the base's; with the consistency reward,
consistency >= 95%. Exits non-zero when a target is missed.
"""

import argparse
import dataclasses
import json
import resource
import sys

import torch

from rlllm_course.llm.grpo import train_grpo
from rlllm_course.llm.model import load_policy
from rlllm_course.llm.rewards import consistency_reward
from rlllm_course.llm.rollout import generate
from rlllm_course.llm.tasks import make_prompt
from rlllm_course.reasoning.evaluate import evaluate_levels
from rlllm_course.reasoning.r1_zero import level_evaluator, r1_zero_config
from rlllm_course.reasoning.rewards import notation
from rlllm_course.reasoning.tasks import LEVELS, levelled_eval_set

TARGETS = {"base_hard_pass@1_max": 0.10, "hard_pass@1_min": 0.60, "train_seconds_max": 300.0,
           "length_ratio_min": 1.5, "reflection_ratio_min": 5.0, "consistency_min": 0.95}
HARD = f"level_{LEVELS[-1]}"


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


@torch.no_grad()
def consistency(model, tokenizer, problems, n_samples=4):
    """Mean consistency and mixed-notation share of sampled completions that have a CoT."""
    torch.manual_seed(0)
    out = generate(model, tokenizer, [make_prompt(p) for p in problems], group_size=n_samples,
                   max_new_tokens=96)
    with_cot = [c for c in out.completions if "<think>" in c]
    if not with_cot:
        return float("nan"), float("nan")
    return (consistency_reward(with_cot).mean().item(),
            sum(notation(c) == "mixed" for c in with_cot) / len(with_cot))


def figures(model, tokenizer, problems):
    torch.manual_seed(0)
    f = evaluate_levels(model, tokenizer, problems)
    cons, mixed = consistency(model, tokenizer, problems)
    return {"hard_pass@1": f["levels"][int(HARD.split("_")[1])]["pass@1"], "pass@1": f["overall"]["pass@1"],
            "pass@8": f["overall"]["pass@8"], "sample_length": f["overall"]["sample_length"],
            "reflection": f["overall"]["reflection"], "consistency": cons, "mixed": mixed,
            "pass@1_by_level": {d: round(v["pass@1"], 3) for d, v in f["levels"].items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=r1_zero_config().steps)
    parser.add_argument("--consistency-weight", type=float, default=1.0)
    parser.add_argument("--n-eval", type=int, default=100, help="held-out problems per level")
    parser.add_argument("--out", default="", help="write the results as JSON to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    problems = levelled_eval_set(args.n_eval)
    base = figures(*load_policy("reasoning"), problems)
    print("base", json.dumps(base), flush=True)
    results, failed = {"base": base, "runs": []}, []
    for seed in args.seeds:
        for weight in (0.0, args.consistency_weight):
            config = r1_zero_config(seed=seed, steps=args.steps, consistency_weight=weight)
            config = dataclasses.replace(config, eval_every=5)
            hard_set = [p for p in problems if p["level"] == LEVELS[-1]][:50]
            model, tokenizer, history = train_grpo(config, evaluator=level_evaluator(hard_set))
            reached = next((h["seconds"] for h in history if h.get("eval/pass@1", 0.0) >= 0.6), None)
            row = {"seed": seed, "consistency_weight": weight, "steps": args.steps,
                   "train_seconds": round(history[-1]["seconds"], 1),
                   "seconds_to_hard_60": None if reached is None else round(reached, 1),
                   **figures(model, tokenizer, problems),
                   "peak_rss_gb": round(peak_rss_gb(), 3)}
            row["length_ratio"] = row["sample_length"] / base["sample_length"]
            row["reflection_ratio"] = row["reflection"] / max(base["reflection"], 1e-9)
            print(json.dumps(row), flush=True)
            results["runs"].append(row)
            checks = {"hard_pass@1_min": row["hard_pass@1"] >= TARGETS["hard_pass@1_min"],
                      "train_seconds_max": reached is not None and reached <= TARGETS["train_seconds_max"]}
            if weight == 0.0:
                checks.update(length_ratio_min=row["length_ratio"] >= TARGETS["length_ratio_min"],
                              reflection_ratio_min=row["reflection_ratio"] >= TARGETS["reflection_ratio_min"])
            else:
                checks["consistency_min"] = row["consistency"] >= TARGETS["consistency_min"]
            failed += [f"seed {seed} w={weight}: {k}" for k, ok in checks.items() if not ok]
    if base["hard_pass@1"] > TARGETS["base_hard_pass@1_max"]:
        failed.append("base_hard_pass@1_max")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    print("targets missed:" if failed else "all targets met", failed or "")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
