"""Cost on paper, measured: a GRPO step's tokens/s and achieved FLOP/s on this CPU, then on GPUs.

    python benchmarks/cost.py [--repeats 2] [--prompts 8] [--max-new-tokens 48]

Part 1, measured in one run on one torch thread: random-weight tiny Llamas (``llm.model.new_model``:
4 layers, hidden 128 / 256 / 384) sample G = 4 / 8 / 16 completions for each of `--prompts`
addition prompts with the course's ``llm.rollout.generate``, then take one forward + backward +
AdamW step on them (``llm.grpo.grpo_update``, no reference model); both halves are timed by
``scale.throughput.measured_grpo_step``, the code ``rlllm-course gpu-grpo`` times a real model with.
Tokens are real tokens (the sum of the completion masks, never padding); the achieved FLOP/s are
``scale.cost``'s 2N (generation) and 6N (update) per real prompt and completion token over the
phase's seconds, set against a 1024 x 1024 fp32 matrix product timed in the same run on the same
thread. Throughput does not need trained weights; the median of `--repeats` steps after a warm-up.

Part 2, on paper (``scale.cost``): the FLOPs, memory and seconds of a GRPO step of Qwen2.5 0.5B,
1.5B, 3B and 7B (``scale.cost.QWEN2_5``) on H100s, at a uniform 40% of the
989 TFLOP/s dense bf16 peak and, as a what-if, at the two phases' utilisations measured in part 1,
beside the published runs below.

Published figures (read from the sources, not re-measured):
- TinyZero, https://github.com/Jiayi-Pan/TinyZero (README, scripts/train_tiny_zero.sh) and the
  announcement https://x.com/jiayi_pirate/status/1882839370505621655: Countdown, Qwen2.5-3B base,
  veRL PPO with a critic, 2 GPUs for 3B (one for <= 1.5B), 256 prompts a step, 1 response each,
  prompts <= 256 and responses <= 1024 tokens, 15 epochs configured; "< $30" to train. The GPU
  model, the steps actually run and the wall-clock hours are not in those sources (the run's logs are
  on wandb, not read here).
- SimpleRL-Zoo, https://github.com/hkust-nlp/simpleRL-reason (README; paper
  https://arxiv.org/abs/2503.18892): GRPO on 8K MATH problems, 1024 prompts x 8 responses a step,
  responses <= 8192 tokens; "the minimum hardware requirement for training Qwen-2.5-0.5B is a single
  H/A100-80G GPU" (no hours given for it); 7B and 14B on 2 x 8 H100-80G for about 100 steps in about
  15 hours; 32B on 8 x 8 H100-80G in 1.5 days. Their mean response length per step is not in the
  README, so part 2 shows 500, 1000 and 2000 tokens.
"""

import argparse
import statistics
from types import SimpleNamespace

import torch

from rlllm_course.llm.grpo import GRPOConfig
from rlllm_course.llm.model import new_model
from rlllm_course.llm.tasks import addition_problems, make_prompt
from rlllm_course.llm.tokenizer import build_tokenizer
from rlllm_course.scale import cost
from rlllm_course.scale.throughput import matmul_flops_per_second, measured_grpo_step

HIDDEN = (128, 256, 384)
GROUP_SIZES = (4, 8, 16)
H100_BF16 = 989e12  # dense bf16 FLOP/s, as in the README's cost paragraph


def measure(hidden, group_size, args, tokenizer):
    """Median generation and update throughput of `args.repeats` steps (after one warm-up) of one size."""
    size = SimpleNamespace(seed=0, hidden_size=hidden, num_layers=4, num_heads=4, intermediate_size=4 * hidden)
    model = new_model(tokenizer, size)
    n_params = sum(p.numel() for p in model.parameters())
    config = GRPOConfig(group_size=group_size, max_new_tokens=args.max_new_tokens, log_kl=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    problems = addition_problems(args.prompts * (args.repeats + 1), seed=0)
    runs = []
    for i in range(args.repeats + 1):
        batch = problems[i * args.prompts:(i + 1) * args.prompts]
        torch.manual_seed(i)
        _, measured = measured_grpo_step(model, None, optimizer, batch, [make_prompt(p) for p in batch], tokenizer,
                                         config)
        runs.append(measured)
    runs = runs[1:]  # the first step warms up
    flops = [m.achieved_flops_per_second(n_params) for m in runs]
    return {"n": n_params, "rows": args.prompts * group_size,
            "tokens": statistics.median(m.generated_tokens for m in runs),
            "gen": statistics.median(m.generated_per_second for m in runs),
            "train": statistics.median(m.trained_per_second for m in runs),
            "gen_flops": statistics.median(f[0] for f in flops), "train_flops": statistics.median(f[1] for f in flops)}


def step_seconds(step, peak, gen_util, train_util):
    """Seconds of a ``cost.StepCost`` with generation at `gen_util` and the rest at `train_util` of `peak`."""
    return cost.seconds(step.generation, peak, gen_util) + cost.seconds(step.logprobs + step.update, peak, train_util)


def on_paper(gen_util, train_util):
    print("\nPart 2: a GRPO step on paper (scale.cost), H100 at 989 TFLOP/s dense bf16")
    print("  the course's verl_grpo.sh batch: 128 prompts x 8, prompt 256 + response 512 tokens, one update, "
          "a reference; memory = 16 B/param + 2 B/param reference + the rollout's bf16 KV cache")
    print(f"  {'model':>5} {'PFLOP/step':>10} {'memory GiB':>10} {'80 GiB GPUs':>11} {'1 H100 @40%':>12} "
          f"{'1 H100 @measured':>17}")
    for name, (n, layers, kv_heads, head_dim) in cost.QWEN2_5.items():
        step = cost.grpo_step_flops(n, 128, 8, 256, 512)
        memory = cost.training_memory_bytes(n, kv_tokens=128 * 8 * 768, n_layers=layers, n_kv_heads=kv_heads,
                                            head_dim=head_dim)
        gpus = -(-memory // (80 * 2 ** 30))  # at least, with ZeRO-3 sharding and no activations
        print(f"  {name:>5} {step.total / 1e15:10.1f} {memory / 2 ** 30:10.0f} {gpus:11.0f} "
              f"{cost.seconds(step.total, H100_BF16):10.0f} s {step_seconds(step, H100_BF16, gen_util, train_util):15.0f} s")

    print("\n  SimpleRL-Zoo's 7B step: 1024 prompts x 8, prompt ~200 tokens (assumed), one update, a reference,"
          " on 16 H100")
    print("  published: ~100 steps in ~15 h on 2 x 8 H100 = ~540 s a step")
    n = cost.QWEN2_5["7B"][0]
    for response in (500, 1000, 2000):
        step = cost.grpo_step_flops(n, 1024, 8, 200, response)
        at40 = cost.seconds(step.total, 16 * H100_BF16)
        implied = step.total / (540 * 16 * H100_BF16)
        print(f"  mean response {response:>4}: {step.total / 1e18:5.2f} EFLOP, {at40:5.0f} s at 40%, "
              f"{step_seconds(step, 16 * H100_BF16, gen_util, train_util):6.0f} s at the measured utilisations; "
              f"540 s means {implied:.0%} of peak")

    print("\n  TinyZero's 3B step: 256 prompts x 1 (PPO: a critic as large as the actor), prompt <= 256, "
          "response <= 1024, on 2 GPUs")
    n = cost.QWEN2_5["3B"][0]
    for response in (256, 1024):
        step = cost.grpo_step_flops(n, 256, 1, 256, response)
        tokens = 256 * (256 + response)
        critic = cost.forward_flops(n, tokens) + cost.training_flops(n, tokens)  # values, then its update
        total = step.total + critic
        print(f"  response {response:>4}: {total / 1e15:5.1f} PFLOP, {cost.seconds(total, 2 * H100_BF16):4.1f} s "
              f"on 2 H100-class GPUs at 40%; published: no step time or hours, only '< $30' in all")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per size, after a warm-up")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = build_tokenizer()
    peak = matmul_flops_per_second(size=1024, repeats=5)
    print(f"Part 1: one torch thread; 1024 x 1024 fp32 matmul: {peak / 1e9:.1f} GFLOP/s")
    print(f"  {'hidden':>6} {'N':>8} {'G':>3} {'rows':>4} {'tokens':>6} | {'gen tok/s':>9} {'GFLOP/s':>7} "
          f"{'of mm':>6} | {'train tok/s':>11} {'GFLOP/s':>7} {'of mm':>6}")
    results = []
    for hidden in HIDDEN:
        for group_size in GROUP_SIZES:
            r = measure(hidden, group_size, args, tokenizer)
            results.append(r)
            print(f"  {hidden:>6} {r['n']:>8,} {group_size:>3} {r['rows']:>4} {r['tokens']:>6.0f} | "
                  f"{r['gen']:>9.0f} {r['gen_flops'] / 1e9:>7.2f} {r['gen_flops'] / peak:>6.1%} | "
                  f"{r['train']:>11.0f} {r['train_flops'] / 1e9:>7.2f} {r['train_flops'] / peak:>6.1%}", flush=True)
    largest = results[-1]  # the largest model at the largest G: the biggest matrix products
    gen_util, train_util = largest["gen_flops"] / peak, largest["train_flops"] / peak
    print(f"  hidden {HIDDEN[-1]}, G = {GROUP_SIZES[-1]}: generation at {gen_util:.1%} and the update at "
          f"{train_util:.1%} of the matmul")
    on_paper(gen_util, train_util)
