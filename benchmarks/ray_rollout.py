"""Benchmark: the rollout phase with Ray workers against one process, on the tiny model (module 15).

    python benchmarks/ray_rollout.py [--workers 2] [--repeats 5]

The same `--prompts` prompts x 8 samples (default 64 x 8; 48 new tokens at most, temperature 1): sampled by one process on
one thread, and by `--workers` Ray actors (``scale.ray_rollout``), one thread each, the prompts split
between them; the weights are synced through the object store first (not timed in the rollout).
Samples per second, median of `--repeats` after a warm-up; the weight sync's seconds beside.
Target: 2 workers >= 1.5x one process on 2 cores. Measure on an otherwise idle machine; exits
non-zero when the target is missed.
"""

import argparse
import statistics
import sys
import time

import ray
import torch

from rlllm_course.llm.grpo import GRPOConfig
from rlllm_course.llm.model import load_policy
from rlllm_course.llm.rollout import generate
from rlllm_course.llm.tasks import addition_problems, make_prompt
from rlllm_course.scale import ray_rollout

TARGET = 1.5


def median_seconds(run, repeats):
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=64, help="prompts of the rollout phase, 8 samples each")
    args = parser.parse_args()
    config = GRPOConfig(prompts_per_step=args.prompts, group_size=8, max_new_tokens=48)
    prompts = [make_prompt(p) for p in addition_problems(config.prompts_per_step, seed=0)]
    samples = len(prompts) * config.group_size
    torch.set_num_threads(1)
    model, tokenizer = load_policy("tiny")

    def one_process():
        torch.manual_seed(0)
        generate(model, tokenizer, prompts, group_size=config.group_size, max_new_tokens=config.max_new_tokens)

    local = median_seconds(one_process, args.repeats)
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    workers = ray_rollout.make_workers(args.workers, "tiny")
    sync = ray_rollout.sync_weights(workers, model)  # the first one also waits for the actors to start
    sync = ray_rollout.sync_weights(workers, model)
    parallel = median_seconds(lambda: ray_rollout.parallel_rollout(workers, prompts, config, seed=0), args.repeats)
    ray.shutdown()
    ratio = local / parallel
    print(f"one process: {samples / local:.0f} samples/s ({local:.2f} s for {samples})")
    print(f"{args.workers} Ray workers: {samples / parallel:.0f} samples/s ({parallel:.2f} s), {ratio:.2f}x; "
          f"a weight sync through the object store {sync * 1000:.0f} ms")
    if ratio < TARGET:
        print(f"MISSED: {ratio:.2f}x < {TARGET}x")
    sys.exit(0 if ratio >= TARGET else 1)
