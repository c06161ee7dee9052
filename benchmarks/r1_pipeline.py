"""Benchmark: the R1 pipeline's two claims, three seeds (module 10).

    python benchmarks/r1_pipeline.py                  # both parts, seeds 0 1 2 (about 35 minutes)
    python benchmarks/r1_pipeline.py --parts cold-start --seeds 0

- **cold start**: per seed, R1-Zero with the consistency reward (60 GRPO steps from the
  base) against cold start + the same RL (30 steps); held-out greedy pass@1 on 25
  problems per level every 5 steps. Reported: R1-Zero's final pass@1, the first step at
  which cold start + RL reaches it (0: the cold start alone), and both runs' seconds.
  Target: reached within half of R1-Zero's steps.
- **distillation**: per seed, the small student (217k parameters) trained by R1-Zero's
  RL, then fine-tuned on the shipped teacher samples for the same wall time
  (``pipeline_study.distillation_run``); greedy pass@1 on 100 held-out problems per level,
  both and their difference, and the mean over seeds. No target: R1's claim is reported,
  whichever way it goes.
Peak RSS at the end. Measure on an otherwise idle machine; exits non-zero when a target is missed.
"""

import argparse
import json
import resource
import statistics
import sys

import torch

from rlllm_course.reasoning import pipeline_study as study
from rlllm_course.reasoning.r1_zero import RUNS, r1_zero_config


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def cold_start_row(seed):
    curves = study.seed_curves(seed, progress=False)
    zero, cold = curves["r1-zero-consistency"], curves["r1-cold-start-rl"]
    target = zero[-1]["pass@1"]
    reached = next((p["step"] for p in cold if p["pass@1"] >= target), None)
    return {"seed": seed, "r1_zero_final": target, "r1_zero_steps": zero[-1]["step"],
            "r1_zero_seconds": zero[-1]["seconds"], "cold_start": cold[0]["pass@1"],
            "cold_rl_final": cold[-1]["pass@1"], "cold_rl_steps": cold[-1]["step"],
            "cold_rl_seconds": cold[-1]["seconds"], "steps_to_r1_zero_final": reached}


def distillation_row(seed):
    _, _, f = study.distillation_run(seed, progress=False)
    rl, distilled = f["rl"]["overall"]["pass@1"], f["distilled"]["overall"]["pass@1"]
    return {"seed": seed, "rl_pass@1": rl, "distilled_pass@1": distilled, "difference": round(distilled - rl, 4),
            "rl_hard": f["rl"]["levels"]["5"]["pass@1"], "distilled_hard": f["distilled"]["levels"]["5"]["pass@1"],
            "rl_mixed": f["rl"]["overall"]["mixed"], "distilled_mixed": f["distilled"]["overall"]["mixed"],
            "budget_seconds": f["budget_seconds"], "sft_seconds": f["sft_seconds"], "sft_steps": f["sft_steps"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parts", nargs="+", default=["cold-start", "distillation"],
                        choices=["cold-start", "distillation"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    failed = []
    if "cold-start" in args.parts:
        half = r1_zero_config(**RUNS["r1-zero-consistency"]).steps // 2
        for seed in args.seeds:
            row = cold_start_row(seed)
            print(json.dumps(row), flush=True)
            if row["steps_to_r1_zero_final"] is None or row["steps_to_r1_zero_final"] > half:
                failed.append(f"seed {seed}: cold start + RL did not reach R1-Zero's final pass@1 in {half} steps")
    if "distillation" in args.parts:
        rows = [distillation_row(seed) for seed in args.seeds]
        for row in rows:
            print(json.dumps(row), flush=True)
        diffs = [r["difference"] for r in rows]
        spread = statistics.stdev(diffs) if len(diffs) > 1 else float("nan")
        print(f"distilled - RL, greedy pass@1: mean {statistics.mean(diffs):+.3f}, std {spread:.3f} over {len(diffs)} seeds")
    print(f"peak RSS {peak_rss_gb():.2f} GB")
    print("targets missed:" if failed else "all targets met", failed or "")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
