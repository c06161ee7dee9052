"""Benchmark: Kimi k1.5's systems and sampling claims on the reasoning base (module 11).

    python benchmarks/kimi.py                               # both parts (about 30 minutes)
    python benchmarks/kimi.py --parts partial --seeds 0 1 2
    python benchmarks/kimi.py --parts sampling --shipped    # read the shipped runs instead of training

- **partial**: per seed, the rollout phase over the same 1024 training problems with 64
  rows in flight, temperature 1, at most 96 tokens: synchronous full rollouts against
  partial rollouts with a per-iteration budget of 8, 16 and 32 tokens, run side by
  side; tokens per second and idle share (``partial_rollout_engine``). The reasoning
  base is the long-tailed setup: most answers are a few tokens, a few re-checks run
  to 30-60. Target: partial rollouts at budget 16 reach 1.5x the full rollouts' tokens
  per second on every seed. The seconds spent in prefills (forwards over more than one
  position: partial rollouts prefill every continued trajectory again) are printed beside.
- **long2short**: from the long-CoT model, per seed: model merging (Kimi's plain average,
  alpha 0.5; merging draws nothing, so it is one figure for every seed), shortest rejection sampling + SFT, DPO, long2short RL, and
  RL with the length reward alone (``kimi_long2short``); held-out greedy pass@1 and mean
  tokens on 100 problems per level against the long model's. Target: at least two
  methods cut tokens by >= 40% at <= 3 points of pass@1 lost, on every seed.
- **sampling**: uniform, curriculum and prioritized sampling (``kimi_sampling``), 40
  R1-Zero steps each; steps (and samples, 128 a step) until the hard level's held-out
  greedy pass@1 first reaches 60% and 80%, the final hard-level and all-level
  pass@1. Reported against uniform, whichever way it goes (no target).
Peak RSS at the end. Measure on an otherwise idle machine; exits non-zero when a target is missed.
"""

import argparse
import resource
import statistics
import sys
import time

import torch

from rlllm_course.llm.model import load_policy
from rlllm_course.reasoning import kimi_long2short as l2s
from rlllm_course.reasoning import kimi_sampling
from rlllm_course.reasoning.evaluate import MAX_NEW_TOKENS
from rlllm_course.reasoning.partial_rollout_engine import full_rollouts, partial_rollouts
from rlllm_course.reasoning.tasks import reasoning_problems

BUDGETS = (8, 16, 32)
ROWS, N_PROBLEMS, TARGET = 64, 1024, 1.5


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


class PrefillTimer:
    """Seconds the model spends in forwards over more than one position (the prefills of ``generate``)."""

    def __init__(self, model):
        self.seconds, self.started = 0.0, None
        model.register_forward_pre_hook(self.pre, with_kwargs=True)
        model.register_forward_hook(self.post, with_kwargs=True)

    def pre(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.started = time.perf_counter() if ids is not None and ids.shape[1] > 1 else None

    def post(self, module, args, kwargs, output):
        if self.started is not None:
            self.seconds += time.perf_counter() - self.started

    def take(self):
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def partial_part(seeds):
    model, tokenizer = load_policy("reasoning")
    prefill = PrefillTimer(model)
    problems = reasoning_problems(N_PROBLEMS, seed=7, split="train")
    ok = True
    print(f"partial rollouts: {N_PROBLEMS} problems, {ROWS} rows, max {MAX_NEW_TOKENS} tokens, temperature 1")
    print("seed | phase | tokens | seconds (of them prefill) | decode steps | tokens/s | idle | ratio to full")
    for seed in seeds:
        torch.manual_seed(seed)
        prefill.take()
        full = full_rollouts(model, tokenizer, problems, ROWS, MAX_NEW_TOKENS)
        print(f"{seed} | full | {full['tokens']} | {full['seconds']:.2f} ({prefill.take():.2f}) | "
              f"{full['decode_steps']} | {full['tokens_per_second']:.0f} | {full['idle']:.2f} | 1.00")
        for budget in BUDGETS:
            torch.manual_seed(seed)
            part = partial_rollouts(model, tokenizer, problems, ROWS, budget, MAX_NEW_TOKENS)
            ratio = part["tokens_per_second"] / full["tokens_per_second"]
            print(f"{seed} | partial, budget {budget} | {part['tokens']} | {part['seconds']:.2f} "
                  f"({prefill.take():.2f}) | {part['decode_steps']} | {part['tokens_per_second']:.0f} | "
                  f"{part['idle']:.2f} | {ratio:.2f}")
            if budget == 16 and ratio < TARGET:
                ok = False
    print(f"target: partial (budget 16) >= {TARGET}x full tokens/s on every seed: {'met' if ok else 'MISSED'}")
    return ok


def sampling_part(seeds, shipped):
    runs = (kimi_sampling.load_sampling_runs(seeds) if shipped else
            {s: [kimi_sampling.train_sampling_run(s, seed, progress=False) for seed in seeds]
             for s in kimi_sampling.STRATEGIES})
    per_step = 16 * 8  # prompts_per_step * group_size of kimi_sampling.sampling_config
    hard = "eval/pass@1/level_5"
    print("strategy | seed | steps to 60% (samples) | steps to 80% | final level 5 | final all levels")
    means = {}
    for strategy, histories in runs.items():
        reach = []
        for seed, history in zip(seeds, histories):
            at60, at80 = kimi_sampling.steps_to(history, 0.6), kimi_sampling.steps_to(history, 0.8)
            last = [log for log in history if hard in log][-1]
            reach.append(at60 if at60 is not None else float("inf"))
            print(f"{strategy} | {seed} | {at60} ({at60 * per_step if at60 else '-'}) | {at80} | "
                  f"{last[hard]:.2f} | {last['eval/pass@1']:.2f}")
        means[strategy] = statistics.mean(reach)
    for strategy, mean in means.items():
        print(f"{strategy}: mean steps to 60% on level 5 = {mean:.1f} ({mean * per_step:.0f} samples), "
              f"{mean / means['uniform']:.2f}x uniform's")


def long2short_part(seeds, shipped):
    figures = {seed: l2s.load_figures(seed) if shipped else l2s.seed_figures(seed, merging=seed == seeds[0],
                                                                             progress=False)
               for seed in seeds}
    base = figures[seeds[0]] if "merging" in figures[seeds[0]] else l2s.load_figures(0)
    long, merging = base["long"], base["merging"]
    half = next(m for m in merging if m["alpha"] == 0.5)  # Kimi merges by the plain average
    print(f"long model: pass@1 {long['pass@1']:.3f}, {long['length']:.1f} tokens; "
          f"short model: {base['short']['pass@1']:.3f}, {base['short']['length']:.1f} tokens")
    print("seed | method | pass@1 | tokens | token cut | pass@1 change (points) | meets both")
    ok = True
    for seed in seeds:
        rows = {"merging (alpha 0.5)": half,
                **{name: figures[seed][key] for name, key in (("shortest RS + SFT", "rs_sft"), ("DPO", "dpo"),
                                                              ("long2short RL", "rl"),
                                                              ("length reward only", "length_rl"))}}
        hits = 0
        for name, f in rows.items():
            cut, change = 1 - f["length"] / long["length"], 100 * (f["pass@1"] - long["pass@1"])
            meets = cut >= 0.40 and change >= -3
            hits += meets and name != "length reward only"
            print(f"{seed} | {name} | {f['pass@1']:.3f} | {f['length']:.1f} | {cut:.0%} | {change:+.1f} | "
                  f"{'yes' if meets else 'no'}")
        ok &= hits >= 2
    print(f"target: >= 2 of the four methods cut >= 40% of tokens at <= 3 points lost, every seed: "
          f"{'met' if ok else 'MISSED'}")
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=["partial", "long2short", "sampling"],
                        default=["partial", "long2short", "sampling"])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(kimi_sampling.SEEDS))
    parser.add_argument("--shipped", action="store_true", help="long2short, sampling: read the shipped runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ok = True
    if "partial" in args.parts:
        ok &= partial_part(args.seeds)
    if "long2short" in args.parts:
        ok &= long2short_part(args.seeds, args.shipped)
    if "sampling" in args.parts:
        sampling_part(args.seeds, args.shipped)
    print(f"peak RSS {peak_rss_gb():.2f} GB")
    sys.exit(0 if ok else 1)
