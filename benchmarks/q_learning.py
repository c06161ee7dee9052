"""How fast the reference Q-learning reaches the course's targets, per env and seed.

    python benchmarks/q_learning.py [--seeds 0 1 2] [--env Taxi-v4]

Trains with rlllm_course.tabular.CONFIGS and evaluates the greedy policy every
`EVERY[env]` episodes on 1000 episodes (a fixed evaluation seed). Prints the
episodes and training seconds (evaluation time excluded) until the greedy
policy first reaches TARGETS[env], and the final greedy score.
"""

import argparse
import time
from dataclasses import replace

from rlllm_course.tabular import (CONFIGS, TARGETS, GreedyEvaluator, evaluate_policy,
                                  greedy_policy, make_env, train_q_learning)

EVERY = {"FrozenLake-v1": 500, "CliffWalking-v1": 10, "Taxi-v4": 100}
EVAL_EPISODES = 1000  # a FrozenLake success rate of 1000 episodes has std ~0.014


def run(env_id, seed):
    config = replace(CONFIGS[env_id], seed=seed, progress=False)
    evaluator = GreedyEvaluator(make_env(env_id), EVERY[env_id], EVAL_EPISODES, seed=10_000 + seed)
    start = time.perf_counter()
    result = train_q_learning(make_env(env_id), config, callback=evaluator)
    train_seconds = time.perf_counter() - start - evaluator.eval_seconds
    hit = next((i for i, s in enumerate(evaluator.scores) if s >= TARGETS[env_id]), None)
    final = evaluate_policy(make_env(env_id), greedy_policy(result.Q), EVAL_EPISODES,
                            seed=10_000 + seed).mean()
    return dict(env=env_id, seed=seed,
                episodes=evaluator.episodes[hit] if hit is not None else None,
                seconds=evaluator.train_seconds[hit] if hit is not None else None,
                total_episodes=config.episodes, total_seconds=train_seconds, final=final,
                ok=final >= TARGETS[env_id])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--env", action="append", choices=list(CONFIGS), help="default: all")
    args = parser.parse_args()
    rows = []
    for env_id in args.env or CONFIGS:
        for seed in args.seeds:
            row = run(env_id, seed)
            rows.append(row)
            reached = (f"target {TARGETS[env_id]:g} reached after {row['episodes']} episodes, "
                       f"{row['seconds']:.1f} s" if row["episodes"] else "target not reached")
            print(f"{env_id} seed {seed}: {reached}; final greedy score {row['final']:.3f} "
                  f"after {row['total_episodes']} episodes, {row['total_seconds']:.1f} s", flush=True)

    print(f"\n{'env':<16} {'seed':>4} {'target':>7} {'episodes':>9} {'seconds':>8} "
          f"{'final':>7} {'all ep.':>8} {'all s':>6}  ok")
    for r in rows:
        episodes = f"{r['episodes']}" if r["episodes"] else "-"
        seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else "-"
        print(f"{r['env']:<16} {r['seed']:>4} {TARGETS[r['env']]:>7g} {episodes:>9} {seconds:>8} "
              f"{r['final']:>7.3f} {r['total_episodes']:>8} {r['total_seconds']:>6.1f}  "
              f"{'yes' if r['ok'] else 'NO'}")
    if not all(r["ok"] for r in rows):
        raise SystemExit("some runs missed their target")


if __name__ == "__main__":
    main()
