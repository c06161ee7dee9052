"""Benchmark: the RLHF track's claims (modules 13 and 14) on the shipped runs, and their cost measured here.

    python benchmarks/rlhf.py                # both parts (about 2 minutes)
    python benchmarks/rlhf.py --parts runs   # the shipped runs only (seconds)

- **runs**: the shipped runs of ``rlhf.rlhf_runs`` (scripts/build_rlhf_runs.py), three seeds
  each, on 256 held-out questions: for every run its best held-out gold reward and the KL
  there, its final gold reward and proxy score, per seed and averaged; best-of-n on the
  same questions. Targets: the best PPO run raises the mean gold reward over the base by
  >= 0.1 at its best point, on every seed; the smallest beta is over-optimized (its mean
  final gold reward >= 0.1 below its best, and below the base); DPO's best gain over the
  base is >= 90% of the best PPO run's.
- **cost**: side by side in this process, one thread: PPO steps (32 prompts, four models),
  GRPO steps (8 prompts x 4, three models) and DPO steps (16 pairs, two models, after the
  reference's log-probs of its pairs) timed from the base; from them, the training time of
  the shipped runs. Target (the issue's): DPO reaches 90% of the best PPO run's gold gain
  (the first evaluation where the mean over seeds does) in <= 1/3 of the time that PPO run
  takes to its best evaluation. The whole runs' ratio (DPO 200 steps, PPO 50) is printed beside.
Exits non-zero when a target is missed. Measure on an otherwise idle machine.
"""

import argparse
import copy
import math
import resource
import sys
import time

import numpy as np
import torch

from rlllm_course.llm.dpo import train_dpo
from rlllm_course.llm.model import DATA_DIR, load_policy
from rlllm_course.rlhf import rlhf_ppo, rlhf_runs
from rlllm_course.rlhf.assistant_task import assistant_problems
from rlllm_course.rlhf.preferences import load_preferences
from rlllm_course.rlhf.reward_model import load_reward_model

PPO_NAMES = ("ppo-beta-0.01", "ppo-beta-0.05", "ppo-beta-0.2")


def eval_curve(result, start):
    """(KL, gold, score) at KL 0 (the base) and at each evaluation of one run."""
    evals = [log for log in result["history"] if "eval/gold" in log]
    kl = [log["eval/kl"] for log in evals] if result["name"] == "dpo" else rlhf_runs.kl_at_evals(result["history"])[1]
    return ([0.0] + list(kl), [start["gold"]] + [log["eval/gold"] for log in evals],
            [start["score"]] + [log["eval/score"] for log in evals])


def part_runs():
    runs, start, bon = rlhf_runs.load_runs(), rlhf_runs.load_start(), rlhf_runs.load_best_of_n()
    print(f"the base on {rlhf_runs.N_EVAL} held-out questions: gold {start['gold']:+.3f}, score {start['score']:+.3f}")
    i = int(np.argmax(bon["gold"]))
    print(f"best-of-n: best gold {bon['gold'][i]:+.3f} at n = {bon['n'][i]} (KL {bon['kl'][i]:.2f}); "
          f"at n = {bon['n'][-1]}: gold {bon['gold'][-1]:+.3f}, proxy {bon['proxy'][-1]:+.3f}")
    summary, failures = {}, []
    print(f"\n{'run':15s} {'best gold (seeds)':>28s} {'mean':>7s} {'KL there':>9s} {'final gold':>11s} {'final score':>12s}")
    for name, results in runs.items():
        curves = [eval_curve(r, start) for r in results]
        kl, gold, score = (np.mean([c[j] for c in curves], axis=0) for j in range(3))
        best = int(np.argmax(gold))
        per_seed = [max(c[1]) for c in curves]
        summary[name] = {"best": gold[best], "final": gold[-1], "per_seed": per_seed}
        print(f"{name:15s} {', '.join(f'{g:+.3f}' for g in per_seed):>28s} {gold[best]:+7.3f} {kl[best]:9.2f} "
              f"{gold[-1]:+11.3f} {score[-1]:+12.3f}")
    ppo_best = max(PPO_NAMES, key=lambda n: summary[n]["best"])
    gain = {n: summary[n]["best"] - start["gold"] for n in summary}
    print(f"\nbest PPO run: {ppo_best}, gain {gain[ppo_best]:+.3f}; DPO gain {gain['dpo']:+.3f} "
          f"({gain['dpo'] / gain[ppo_best]:.0%} of PPO's)")
    if gain[ppo_best] < 0.1 or min(summary[ppo_best]["per_seed"]) <= start["gold"]:
        failures.append(f"PPO's best gain {gain[ppo_best]:+.3f} < 0.1, or a seed never above the base")
    low = summary["ppo-beta-0.01"]
    if not (low["final"] <= low["best"] - 0.1 and low["final"] < start["gold"]):
        failures.append(f"beta 0.01 not over-optimized: best {low['best']:+.3f}, final {low['final']:+.3f}")
    if gain["dpo"] < 0.9 * gain[ppo_best]:
        failures.append(f"DPO's gain {gain['dpo']:+.3f} < 90% of PPO's {gain[ppo_best]:+.3f}")
    dpo_steps, dpo_gold = [0], [start["gold"]]
    curves = [eval_curve(r, start) for r in runs["dpo"]]
    dpo_gold = np.mean([c[1] for c in curves], axis=0)
    dpo_steps = [0] + [log["step"] + 1 for log in runs["dpo"][0]["history"] if "eval/gold" in log]
    ppo_curve = np.mean([eval_curve(r, start)[1] for r in runs[ppo_best]], axis=0)
    ppo_steps = [0] + [log["step"] + 1 for log in runs[ppo_best][0]["history"] if "eval/gold" in log]
    reach = next((s for s, g in zip(dpo_steps, dpo_gold) if g - start["gold"] >= 0.9 * gain[ppo_best]), None)
    SHIPPED.update(ppo_name=ppo_best, ppo_best_step=ppo_steps[int(np.argmax(ppo_curve))], dpo_reach_step=reach)
    print(f"DPO first reaches 90% of that gain after {reach} steps; {ppo_best} is at its best after "
          f"{SHIPPED['ppo_best_step']} steps")
    return failures


SHIPPED = {}  # what part_cost needs from part_runs


def timed_rlhf_steps(name, steps, policy, reference, rm, rm_tokenizer, tokenizer):
    config = rlhf_runs.run_config(name, steps=steps, eval_every=0)
    model = copy.deepcopy(policy)
    critic = rlhf_ppo.load_critic(config.reward_model) if config.advantage == "gae" else None
    optimizers = rlhf_ppo.make_optimizers(model, critic, config)
    problems = assistant_problems(steps * config.prompts_per_step, 0, "train")
    started = time.perf_counter()
    for step in range(steps):
        torch.manual_seed(step)
        batch = problems[step * config.prompts_per_step:(step + 1) * config.prompts_per_step]
        rlhf_ppo.rlhf_step(model, critic, reference, rm, tokenizer, rm_tokenizer, batch, optimizers, config)
    return (time.perf_counter() - started) / steps


def part_cost(steps=5, dpo_steps=40):
    torch.set_num_threads(1)
    policy, tokenizer = load_policy("assistant")
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    rm, rm_tokenizer = load_reward_model("assistant-rm")
    ppo = timed_rlhf_steps("ppo-beta-0.2", steps, policy, reference, rm, rm_tokenizer, tokenizer)
    grpo = timed_rlhf_steps("grpo", steps, policy, reference, rm, rm_tokenizer, tokenizer)
    config = rlhf_runs.dpo_config(0)
    pairs = [{k: p[k] for k in ("prompt", "chosen", "rejected")}
             for p in load_preferences(DATA_DIR / "assistant-preferences", "train")[:dpo_steps * config.batch_size]]
    started = time.perf_counter()
    train_dpo(copy.deepcopy(policy), tokenizer, pairs, config, ref_model=reference, progress=False)
    dpo = (time.perf_counter() - started) / dpo_steps  # the reference's pass over the pairs included
    ppo_run = ppo * rlhf_runs.STEPS
    dpo_run = dpo * math.ceil(rlhf_runs.DPO_PAIRS / config.batch_size)
    print(f"seconds a step, one thread: PPO {ppo:.2f}, GRPO {grpo:.2f} ({grpo / ppo:.2f}x PPO), DPO {dpo:.3f} "
          f"(the reference's pass over the pairs included)")
    print(f"whole shipped runs: PPO {rlhf_runs.STEPS} steps {ppo_run:.0f} s, DPO "
          f"{math.ceil(rlhf_runs.DPO_PAIRS / config.batch_size)} steps {dpo_run:.0f} s: ratio {dpo_run / ppo_run:.2f}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")
    if not SHIPPED:
        part_runs()
    if SHIPPED["dpo_reach_step"] is None:
        return ["DPO never reaches 90% of PPO's best gain"]
    to_reach, to_best = dpo * SHIPPED["dpo_reach_step"], ppo * SHIPPED["ppo_best_step"]
    print(f"DPO to 90% of PPO's best gain: {to_reach:.0f} s; {SHIPPED['ppo_name']} to its best: {to_best:.0f} s; "
          f"ratio {to_reach / to_best:.2f}")
    return [] if to_reach <= to_best / 3 else [f"DPO needs {to_reach / to_best:.2f} of PPO's time, > 1/3"]


PARTS = {"runs": part_runs, "cost": part_cost}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    args = parser.parse_args()
    failures = []
    for part in args.parts:
        print(f"== {part}")
        failures += PARTS[part]()
    for failure in failures:
        print("MISSED:", failure)
    sys.exit(1 if failures else 0)
