"""Benchmark: rollout throughput against the machine's own limit, on the tiny model, one thread.

    python benchmarks/rollout.py [--samples 32 128 512] [--repeats 5] [--profile]

The limit: a token's forward costs about 2 FLOPs per parameter (N = 1.05M on the tiny
model), so at the matrix-product speed G of this machine no sampler beats G / (2N)
tokens per second. G is measured in the same run, on one thread, twice: on the
products of one decode step at 128 rows (x (128, hidden) times each weight matrix of a
layer: the limit quoted), and on a 512 x 512 product (the machine's best, for reference).

Then ``generate`` at `--samples` rows (prompts x 8 samples, 48 new tokens at most,
temperature 1), the old path (HF's ``model.generate``) and the new one (``decode.py``)
run alternately, seeded alike; median of `--repeats` after a warm-up. Real tokens are
the completion tokens the rows keep (up to and including their eos); slot tokens are
rows x decode steps, what a loop that decodes every row to the end pays for.
The two paths must give the same completions; exits non-zero when they do not, or when
the new path's real tokens/s at 128 samples is below half the limit.
``--profile`` prints where a decode step's time goes (torch.profiler) in each path.
"""

import argparse
import statistics
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from rlllm_course.llm.decode import fast_generate_ids
from rlllm_course.llm.model import load_policy
from rlllm_course.llm.rollout import hf_generate_ids
from rlllm_course.llm.tasks import addition_problems, make_prompt

GROUP_SIZE, MAX_NEW_TOKENS, TARGET = 8, 48, 0.5


def gflops(a, weights, repeats=200):
    """GFLOP/s of ``a @ w.T`` over `weights` (the median of `repeats` passes)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for w in weights:
            torch.mm(a, w.T)
        times.append(time.perf_counter() - started)
    return sum(2 * a.shape[0] * w.shape[0] * w.shape[1] for w in weights) / statistics.median(times) / 1e9


def encode(tokenizer, n_samples):
    prompts = [make_prompt(p) for p in addition_problems(n_samples // GROUP_SIZE, seed=0)]
    enc = tokenizer([p for p in prompts for _ in range(GROUP_SIZE)], return_tensors="pt", padding=True,
                    add_special_tokens=False)
    return enc["input_ids"], enc["attention_mask"]


def run(path, model, tokenizer, ids, mask):
    torch.manual_seed(0)
    return path(model, ids, mask, MAX_NEW_TOKENS, tokenizer.eos_token_id, tokenizer.pad_token_id)


def compare(model, tokenizer, n_samples, repeats):
    """Median seconds of each path, alternating old and new, and whether their samples agree."""
    ids, mask = encode(tokenizer, n_samples)
    paths = {"old": hf_generate_ids, "new": fast_generate_ids}
    outputs = {name: run(path, model, tokenizer, ids, mask) for name, path in paths.items()}  # warm-up
    times = {name: [] for name in paths}
    for _ in range(repeats):
        for name, path in paths.items():
            started = time.perf_counter()
            run(path, model, tokenizer, ids, mask)
            times[name].append(time.perf_counter() - started)
    same = outputs["old"].shape == outputs["new"].shape and torch.equal(outputs["old"], outputs["new"])
    return {name: statistics.median(t) for name, t in times.items()}, outputs["old"], same


def profile_step(model, tokenizer, path, n_samples=128):
    ids, mask = encode(tokenizer, n_samples)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(path, model, tokenizer, ids, mask)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, tokenizer = load_policy("tiny")
    n_params = sum(p.numel() for p in model.parameters())
    layer = model.model.layers[0]
    weights = [m.weight.detach() for m in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                                           layer.self_attn.o_proj, layer.mlp.gate_proj, layer.mlp.up_proj)]
    step = gflops(torch.randn(128, model.config.hidden_size), weights)  # the products at hidden width
    step = 1 / ((1 - 1 / 7) / step + (1 / 7) / gflops(torch.randn(128, model.config.intermediate_size),
                                                     [layer.mlp.down_proj.weight.detach()]))  # + down
    square = gflops(torch.randn(512, 512), [torch.randn(512, 512)], repeats=20)
    limit = step * 1e9 / (2 * n_params)
    print(f"tiny model: N = {n_params / 1e6:.3f}M parameters; one thread: {step:.0f} GFLOP/s on a decode step's "
          f"products at 128 rows ({square:.0f} on 512 x 512)")
    print(f"limit: {limit / 1e3:.1f}k tokens/s = GFLOP/s / 2N ({square * 1e9 / (2 * n_params) / 1e3:.1f}k at 512 x 512)\n")
    print("| samples | path | seconds | real tokens/s | slot tokens/s | fraction of the limit | speed-up | same samples |")
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    for n_samples in args.samples:
        seconds, out, same = compare(model, tokenizer, n_samples, args.repeats)
        real = (out != tokenizer.pad_token_id).sum().item()  # completion tokens up to and including eos
        slots = out.numel()
        for name in ("old", "new"):
            s = seconds[name]
            print(f"| {n_samples} | {name} | {s:.3f} | {real / s / 1e3:.1f}k | {slots / s / 1e3:.1f}k | "
                  f"{real / s / limit:.0%} | {seconds['old'] / s:.2f}x | {'yes' if same else 'NO'} |")
        ok &= same and (n_samples != 128 or real / seconds["new"] >= TARGET * limit)
    if args.profile:
        for name, path in (("old (HF generate)", hf_generate_ids), ("new (decode.py)", fast_generate_ids)):
            print(f"\n{name}, 128 samples:")
            profile_step(model, tokenizer, path)
    if not ok:
        print(f"MISSED: samples differ, or real tokens/s < {TARGET:.0%} of the limit at 128 samples")
    sys.exit(0 if ok else 1)
